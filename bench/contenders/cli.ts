import { spawn } from "node:child_process";
import { join } from "node:path";
import { diffCpu, readCpu } from "../proc.js";
import { ROOT, type Stack } from "../settings.js";
import type { BatchRun } from "./run.js";

const SCRIPT = join(ROOT, "bench/contenders/cli-baseline.sh");

/** Contender 2: the shell loop; its CPU is everything the script and its nomad CLIs used. */
export async function runCli(stack: Stack, job: string, meta: Record<string, string>, ids: string[], pollSeconds: number, concurrency: number): Promise<BatchRun> {
  const before = readCpu("self");
  const start = Date.now();
  const out = await runScript(stack, [job, String(pollSeconds), String(concurrency)], meta, `${ids.join("\n")}\n`);
  const wallMs = Date.now() - start;
  const lines = out.trim().split("\n").filter(Boolean).map((l) => l.split(" "));
  const batchLatencies = lines.map(([, , done]) => Number(done) - start);
  const serviceLatencies = lines.map(([, dispatched, done]) => Number(done) - Number(dispatched));
  const failures = ids.length - lines.filter(([, , , code]) => code === "0").length;
  return { actions: ids.length, wallMs, batchLatencies, serviceLatencies, childLatencies: serviceLatencies, failures, cpu: diffCpu(before, readCpu("self")) };
}

function runScript(stack: Stack, args: string[], meta: Record<string, string>, input: string): Promise<string> {
  const env = {
    ...process.env,
    NOMAD_ADDR: stack.NOMAD_ADDR,
    NOMAD_TOKEN: stack.NOMAD_TOKEN,
    NOMAD_NAMESPACE: stack.NOMAD_NAMESPACE,
    NOMAD_BIN: stack.NOMAD_BIN,
    BENCH_META: Object.entries(meta).map(([k, v]) => `${k}=${v}`).join(" "),
  };
  return new Promise((resolve, reject) => {
    const child = spawn(SCRIPT, args, { env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`cli-baseline.sh exited ${code}: ${err.trim().slice(0, 500)}`))));
    child.stdin.end(input);
  });
}
