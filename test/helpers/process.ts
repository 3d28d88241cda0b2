// The dispatcher CLI as a real child process (for kill -9 and replica tests).
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { dispatcherEnv } from "./stack.js";

const cli = new URL("../../dist/dispatcher.mjs", import.meta.url).pathname;

export interface CliProcess {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `dispatcher <args>` against the dev stack; stdout and stderr appended to `logFile`. */
export function spawnDispatcher(args: string[], env: Record<string, string>, logFile: string): CliProcess {
  const out = createWriteStream(logFile, { flags: "a" });
  const child = spawn(process.execPath, [cli, ...args], {
    env: { ...process.env, ...dispatcherEnv(env.DISPATCHER_OPS_REMOTE ?? ""), LOG_LEVEL: "info", DISPATCHER_LISTEN: "127.0.0.1:0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.pipe(out, { end: false });
  child.stderr!.pipe(out, { end: false });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { child, exited };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns true or `ms` pass; false on time-out. */
export async function waitUntil(check: () => Promise<boolean>, ms: number, everyMs = 1000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await sleep(everyMs);
  }
  return check();
}
