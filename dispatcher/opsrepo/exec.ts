// The git subprocess: argv only (no shell; launcher.ts starts the hot ones from a shell, each word
// quoted), a fixed environment, output as bytes.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { GitError } from "../errors.js";

export interface GitRun {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Action files and results are small, but a whole-tree listing of a big ops repo is not. */
const MAX_OUTPUT = 256 * 1024 * 1024;

/** Set inside git hooks; they would point our git at another repository. */
const REPO_LOCATING_ENV = [
  "GIT_DIR",
  "GIT_WORK_TREE",
  "GIT_INDEX_FILE",
  "GIT_OBJECT_DIRECTORY",
  "GIT_ALTERNATE_OBJECT_DIRECTORIES",
  "GIT_COMMON_DIR",
  "GIT_PREFIX",
];

/** The engines' credentials and addresses: git and its hooks never need them. */
const ENGINE_ENV = /^(NOMAD_|VAULT_|BAO_)|_TOKEN$/;

export function buildEnv(from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  // no credential prompt can hang a daemon; C locale keeps messages stable for matching
  const env: NodeJS.ProcessEnv = { ...from, GIT_TERMINAL_PROMPT: "0", LC_ALL: "C" };
  for (const name of Object.keys(env)) if (REPO_LOCATING_ENV.includes(name) || ENGINE_ENV.test(name)) delete env[name];
  return env;
}

/** git's pathspec for everything in the tree but `dir` (the code an action runs: all outside the actions folder) */
export function outsideSpec(dir: string): string[] {
  return [":/", `:(top,exclude)${dir.replace(/\/+$/, "")}/`];
}

/** Hides credentials embedded in URLs (https://user:token@host) in anything we log or throw. */
export function redactUrls(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^@/\s]+@/gi, "$1***@");
}

/** git's words for a refused credential (it has no exit code for it): what `auth` means for a remote */
const AUTH_REFUSED = /Permission denied \(publickey|Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|Authentication failed|could not read Username|The requested URL returned error: 40[13]/;

/** A failed remote operation: `auth` when the remote refused the credential, else an outage. */
export function remoteFailure(message: string, stderr: string): GitError {
  return new GitError(message, undefined, AUTH_REFUSED.test(stderr) ? "auth" : "infra");
}

export interface SshCredential {
  /** private key file of the deploy key */
  key: string;
  /** known_hosts file pinning the remote's host key */
  knownHosts: string;
}

/** core.sshCommand for a deploy key: only that key, no agent, the host key pinned, never a prompt. */
export function sshCommandFor(c: SshCredential): string {
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  return `ssh -i ${q(c.key)} -o IdentitiesOnly=yes -o IdentityAgent=none -o UserKnownHostsFile=${q(c.knownHosts)} -o StrictHostKeyChecking=yes -o BatchMode=yes`;
}

/** `-c core.sshCommand=…` for git commands that talk to the remote outside the clone. */
export function sshConfigArgs(ssh: SshCredential | undefined): string[] {
  return ssh ? ["-c", `core.sshCommand=${sshCommandFor(ssh)}`] : [];
}

/** Runs git; a non-zero exit resolves with its code, only a failure to run at all rejects. */
export function tryGit(cwd: string, args: string[]): Promise<GitRun> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      args,
      { cwd, env: buildEnv(), encoding: "buffer", maxBuffer: MAX_OUTPUT },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== "number") {
          reject(new GitError(redactUrls(`cannot run git ${args[0]} in ${cwd}: ${err.message}`), { cause: err }));
          return;
        }
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr: redactUrls(stderr.toString("utf8")) });
      },
    );
  });
}

/**
 * Runs git and hands each NUL-terminated record of its stdout (`-z` output) to `onRecord` as it
 * comes, holding no more than a chunk and one record. When `onRecord` returns false, git is
 * stopped and the rest of its output is never read (`stopped`): a listing of any size costs at
 * most what its reader takes.
 */
export function streamGit(cwd: string, args: string[], onRecord: (record: Buffer) => boolean, env: NodeJS.ProcessEnv = buildEnv()): Promise<{ code: number; stderr: string; stopped: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let partial: Buffer = Buffer.alloc(0);
    let stderr = "";
    let stopped = false;
    child.stdout.on("data", (chunk: Buffer) => {
      if (stopped) return;
      let data = partial.length === 0 ? chunk : Buffer.concat([partial, chunk]);
      for (let nul = data.indexOf(0); nul >= 0; nul = data.indexOf(0)) {
        if (!onRecord(data.subarray(0, nul))) {
          stopped = true;
          child.kill();
          return;
        }
        data = data.subarray(nul + 1);
      }
      // a copy: the chunk it points into is not kept
      partial = Buffer.from(data);
    });
    // git's messages are short; a flood of them is cut
    child.stderr.on("data", (d: Buffer) => void (stderr.length < 64 * 1024 && (stderr += d.toString("utf8"))));
    child.on("error", (e) => reject(new GitError(`cannot run git ${args[0]} in ${cwd}: ${e.message}`, { cause: e })));
    child.on("close", (code) => resolve({ code: code ?? -1, stderr: redactUrls(stderr), stopped }));
  });
}

/**
 * A long-lived git process (cat-file, fast-import) keeps a finished CLI alive only while an
 * answer is awaited: its pipes are referenced then, and unreferenced when it is idle.
 */
export function holdOpen(c: ChildProcess | undefined, busy: boolean): void {
  for (const s of [c?.stdin, c?.stdout] as unknown as ({ ref?: () => void; unref?: () => void } | undefined)[]) (busy ? s?.ref : s?.unref)?.call(s);
}

/** Runs git and returns stdout; a non-zero exit throws GitError with git's stderr. */
export async function runGit(cwd: string, args: string[]): Promise<Buffer> {
  const run = await tryGit(cwd, args);
  if (run.code !== 0) throw gitFailure(cwd, args, run);
  return run.stdout;
}

/** A failed git command as an error: the command, where, and git's own words. */
export function gitFailure(cwd: string, args: string[], run: GitRun): GitError {
  return new GitError(redactUrls(`git ${args.join(" ")} failed in ${cwd}: ${run.stderr.trim()}`));
}

/**
 * The commit at `refs/heads/<branch>` of `remote` (git ls-remote), undefined when the branch is
 * absent. `via`: a clone's remote name pointing at `remote`, asked through so that the clone's
 * settings for it apply, as they do to its fetches and pushes. `run`: what starts git (the clone's
 * launcher, launcher.ts).
 */
export async function remoteTip(remote: string, branch: string, cwd: string, ssh?: SshCredential, via = remote, run: typeof tryGit = tryGit): Promise<string | undefined> {
  const listed = await run(cwd, [...sshConfigArgs(ssh), "ls-remote", "--", via, `refs/heads/${branch}`]);
  if (listed.code !== 0) throw remoteFailure(`cannot reach ${redactUrls(remote)}: ${listed.stderr.trim()}`, listed.stderr);
  return listed.stdout.toString("utf8").split("\t")[0]?.trim() || undefined;
}
