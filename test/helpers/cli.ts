// The real `dispatcher` CLI (dist/, built by the integration setup) run as a subprocess against
// the dev stack, with its output kept and, for streaming commands, timestamped per chunk.
import { spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dispatcherEnv } from "./stack.js";

const cliPath = new URL("../../dist/dispatcher.mjs", import.meta.url).pathname;

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout chunks with the time they arrived */
  chunks: { at: number; text: string }[];
  exitedAt: number;
}

/** Env for the CLI on the dev stack and `remote`, with its own workdir; `extra` overrides. */
export async function cliEnv(remote: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const workdir = join(await mkdtemp(join(tmpdir(), "dispatcher-cli-")), "ops");
  return {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "",
    ...dispatcherEnv(remote),
    DISPATCHER_WORKDIR: workdir,
    // tests run several dispatchers at once: each serves on a port of its own
    DISPATCHER_LISTEN: "127.0.0.1:0",
    ...extra,
  };
}

export function runCli(args: string[], env: Record<string, string>): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    const chunks: CliRun["chunks"] = [];
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => chunks.push({ at: Date.now(), text }));
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({ code: code ?? -1, stdout: chunks.map((c) => c.text).join(""), stderr, chunks, exitedAt: Date.now() }),
    );
  });
}
