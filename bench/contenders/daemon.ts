// Contender "dispatcher": `dispatcher run` (dist/dispatcher.mjs in a child process), as operators
// deploy it, woken by a signed push webhook once a batch's commit has landed. Its poll is an hour
// away, so only the webhook starts a batch. CPU is read from /proc over each batch
// (the process and every descendant: git; the ops remote's side apart), peak RSS from VmHWM.
import { spawn } from "node:child_process";
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { diffCpu, readCpu, readRss } from "../proc.js";
import { actionToml, commitFiles } from "../opsrepo.js";
import { readRemoteMs, remoteSideEnv } from "../remote.js";
import { batchOf, benchNodeArgs, keepLog, dispatcherEnv, type DispatcherSetup } from "./dispatcher.js";
import { parseLines, type LogLine } from "../loglines.js";
import type { BatchRun } from "./run.js";

/** BENCH_DISPATCHER_MJS: another build's bundle (as bench/usage.ts: two builds measured in turns, A B A B) */
const cli = () => process.env.BENCH_DISPATCHER_MJS ?? new URL("../../dispatcher.mjs", import.meta.url).pathname;

/** how long a batch may take before the bench gives up on it */
const BATCH_BOUND_MS = 15 * 60_000;
/** after the last result is pushed the ledger is marked recorded: waited for before CPU is read */
const SETTLE_AFTER_PUSH_MS = 1000;

export interface Daemon {
  /** `secrets`: what each action asks for (a token minted, wrapped, recorded and revoked each) */
  runBatch(ids: string[], formula: string, secrets?: readonly string[]): Promise<BatchRun>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** the batch's git processes by command (BENCH_LOG_DIR), for the notes */
function commandsSince(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...after].map(([c, n]) => [c, n - (before.get(c) ?? 0)]).filter(([, n]) => (n as number) > 0));
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts `dispatcher run` and resolves once its first pass is done (counted in /metrics). */
export async function startDaemon(setup: DispatcherSetup, name: string): Promise<Daemon> {
  const secretFile = join(setup.stack.dir, `${name}-webhook-secret`);
  const secret = randomBytes(32).toString("hex");
  await writeFile(secretFile, secret, { mode: 0o600 });
  const url = `http://127.0.0.1:${await freePort()}`;
  const gitFile = join(setup.stack.dir, `${name}.git-count`);
  const remoteFile = join(setup.stack.dir, `${name}.remote-cpu`);
  const child = spawn(process.execPath, [...benchNodeArgs(), cli(), "run"], {
    env: { ...dispatcherEnv(setup), ...setup.git?.env(gitFile), ...remoteSideEnv(remoteFile), DISPATCHER_LISTEN: url.slice("http://".length), DISPATCHER_WEBHOOK_SECRET_FILE: secretFile, DISPATCHER_POLL_SECONDS: "3600" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  // log lines parsed once, as they come: a batch of 2,000 writes several MB
  let text = "";
  /** the last of stderr as written (the doctor's checks are not JSON), for an error */
  let tail = "";
  const lines: LogLine[] = [];
  child.stderr.on("data", (d: Buffer) => {
    text += d.toString();
    tail = (tail + d.toString()).slice(-3000);
    const end = text.lastIndexOf("\n") + 1;
    lines.push(...parseLines(text.slice(0, end)));
    text = text.slice(end);
  });
  let exited: number | null | undefined;
  child.on("close", (code) => (exited = code));
  // a bench that fails midway leaves no dispatcher behind on the stack
  const kill = () => child.kill("SIGKILL");
  process.once("exit", kill);
  const pid = child.pid!;
  const fail = (what: string) => new Error(`dispatcher run (${name}) ${what}: ${tail.trim()}`);

  const firstPass = Date.now() + 60_000;
  for (;;) {
    if (exited !== undefined) throw fail(`exited ${exited} before its first pass`);
    if (Date.now() > firstPass) throw fail("made no pass within 60 s");
    const metrics = await fetch(`${url}/metrics`).then((r) => r.text(), () => "");
    if (/^dispatcher_pass_duration_seconds_count\{outcome="ok"\} [1-9]/m.test(metrics)) break;
    await pause(100);
  }

  return {
    async runBatch(ids, formula, secrets = []) {
      const files = Object.fromEntries(ids.map((id) => [`vault/actions/${id}.toml`, actionToml(id, formula, secrets)]));
      const tip = await commitFiles(setup.remote, files, `bench: ${ids.length} actions`);
      const from = lines.length;
      const cpu = readCpu(pid);
      const remote = readRemoteMs(remoteFile);
      const git = setup.git?.count(gitFile);
      const gitBefore = setup.git?.commands(gitFile);
      const start = Date.now();
      // as GitHub sends it: the branch and the commit it now points at
      const body = JSON.stringify({ ref: "refs/heads/main", after: tip });
      const hook = await fetch(`${url}/hooks/push`, {
        method: "POST",
        body,
        headers: { "Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": randomUUID(), "X-Hub-Signature-256": `sha256=${createHmac("sha256", secret).update(body).digest("hex")}` },
      });
      if (hook.status !== 202) throw fail(`answered the webhook with HTTP ${hook.status} (${await hook.text()})`);
      const waiting = new Set(ids);
      for (let seen = from, until = start + BATCH_BOUND_MS; waiting.size > 0; ) {
        if (exited !== undefined) throw fail(`exited ${exited} during a batch`);
        if (Date.now() > until) throw fail(`had ${waiting.size} of ${ids.length} results unpushed after ${BATCH_BOUND_MS / 60_000} min`);
        await pause(50);
        for (; seen < lines.length; seen++) if (lines[seen]!.msg === "results pushed") for (const id of lines[seen]!.results ?? []) waiting.delete(id);
      }
      await pause(SETTLE_AFTER_PUSH_MS);
      const used = diffCpu(cpu, readCpu(pid));
      if (gitBefore) await keepLog(`${name}-git`, JSON.stringify(commandsSince(gitBefore, setup.git!.commands(gitFile))));
      const run = await batchOf(setup.remote, ids, lines.slice(from), start);
      return { ...run, cpu: used, remoteMs: readRemoteMs(remoteFile) - remote, peakRssMiB: readRss(pid).peakMiB, gitProcesses: git === undefined ? undefined : setup.git!.count(gitFile) - git };
    },
    async stop() {
      process.off("exit", kill);
      if (exited !== undefined) return;
      const closed = new Promise((r) => child.once("close", r));
      child.kill("SIGTERM");
      await closed;
      await keepLog(name, lines.map((l) => JSON.stringify(l)).join("\n"));
    },
  };
}
