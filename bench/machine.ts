import { execFileSync } from "node:child_process";
import { availableParallelism, cpus, release, totalmem } from "node:os";
import type { BenchNomad } from "./nomad.js";
import type { Stack } from "./settings.js";

export interface Machine {
  date: string;
  nproc: number;
  memoryGiB: number;
  cpu: string;
  kernel: string;
  nomad: string;
  bao: string;
  node: string;
  git: string;
}

export async function describeMachine(stack: Stack, nomad: BenchNomad): Promise<Machine> {
  const firstLine = (cmd: string, args: string[]) => execFileSync(cmd, args).toString().split("\n")[0]!.trim();
  return {
    date: new Date().toISOString(),
    nproc: availableParallelism(),
    memoryGiB: totalmem() / 2 ** 30,
    cpu: cpus()[0]?.model ?? "unknown",
    kernel: release(),
    nomad: await nomad.agentVersion(),
    bao: firstLine(stack.BAO_BIN, ["version"]),
    node: process.version,
    git: firstLine("git", ["--version"]),
  };
}
