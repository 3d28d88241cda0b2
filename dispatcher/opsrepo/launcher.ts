// git started by a small long-lived shell instead of by node itself. Node (libuv) starts a process
// with fork(): its cost grows with node's memory (the page tables are copied), about 2.5 ms of CPU
// at a daemon's 90 MB against 0.1 ms for a 2 MB shell (bench/README.md, "The dispatcher's own
// CPU"). The shell runs each command as `git` with its arguments, each single-quoted (no word of
// ours is ever read as shell syntax), in the clone, with the environment buildEnv() gave it at its
// start, stdout and stderr into files of a private directory, and reports the exit code.
// Used for the call made once per pushed result (the push); an environment that changed since the
// shell started runs the call the usual way (tryGit), so what git sees never differs.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GitError } from "../errors.js";
import { buildEnv, holdOpen, redactUrls, tryGit, type GitRun } from "./exec.js";

/** a word as the shell reads it back exactly: single quotes, each quote closed, escaped, reopened */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

function sameEnv(a: NodeJS.ProcessEnv, b: NodeJS.ProcessEnv): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

interface Shell {
  child: ChildProcess;
  env: NodeJS.ProcessEnv;
  dir: string;
  waiting: Map<number, (code: number) => void>;
}

/** one shell per process, whichever clone asks (each call names its directory) */
let shell: Shell | undefined;
let seq = 0;

function start(env: NodeJS.ProcessEnv): Shell {
  const dir = mkdtempSync(join(tmpdir(), "dispatcher-git-"));
  const child = spawn("/bin/sh", ["-s"], { env, stdio: ["pipe", "pipe", "ignore"] });
  // idle, it keeps no process alive (a `once` ends); its pipes are referenced while a call waits
  child.unref();
  holdOpen(child, false);
  const s: Shell = { child, env, dir, waiting: new Map() };
  let pending = "";
  child.stdout!.on("data", (d: Buffer) => {
    pending += d.toString("latin1");
    for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
      const [id, code] = pending.slice(0, nl).split(" ");
      pending = pending.slice(nl + 1);
      if (code === undefined || !/^\d+$/.test(code)) continue;
      const done = s.waiting.get(Number(id));
      s.waiting.delete(Number(id));
      done?.(Number(code));
      if (s.waiting.size === 0) holdOpen(child, false);
    }
  });
  const gone = () => {
    if (shell === s) shell = undefined;
    for (const done of s.waiting.values()) done(-1);
    s.waiting.clear();
    rmSync(dir, { recursive: true, force: true });
  };
  child.on("error", gone);
  child.on("close", gone);
  child.stdin!.on("error", () => undefined); // a shell that died: its close fails the calls
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  process.once("exit", cleanup);
  child.once("close", () => process.off("exit", cleanup));
  return s;
}

/** As tryGit (a non-zero exit resolves with its code; only a failure to run at all rejects), started by the shell. */
export async function launchGit(cwd: string, args: string[]): Promise<GitRun> {
  const env = buildEnv();
  if (shell && !sameEnv(shell.env, env)) {
    // the environment moved under us: this call goes the usual way, exactly as git would see it
    return tryGit(cwd, args);
  }
  const s = (shell ??= start(env));
  // a daemon idle for days may find its directory cleaned out of the temporary directory
  if (!existsSync(s.dir)) mkdirSync(s.dir, { recursive: true, mode: 0o700 });
  const id = ++seq;
  const out = join(s.dir, `${id}.out`);
  const err = join(s.dir, `${id}.err`);
  const code = await new Promise<number>((resolve) => {
    s.waiting.set(id, resolve);
    holdOpen(s.child, true);
    // `jobs` lets the shell reap the commands that ended (their CPU stays counted as ours)
    s.child.stdin!.write(`jobs >/dev/null; { ( cd ${shellQuote(cwd)} && exec git ${args.map(shellQuote).join(" ")} ) >${shellQuote(out)} 2>${shellQuote(err)} </dev/null; echo "${id} $?"; } &\n`);
  });
  if (code < 0) throw new GitError(redactUrls(`cannot run git ${args[0]} in ${cwd}: the shell starting git exited`));
  const stdout = readFileSync(out);
  const stderr = readFileSync(err, "utf8");
  unlinkSync(out);
  unlinkSync(err);
  return { code, stdout, stderr: redactUrls(stderr) };
}

/** the directory the current shell writes its calls' output to (tests) */
export function launcherDir(): string | undefined {
  return shell?.dir;
}
