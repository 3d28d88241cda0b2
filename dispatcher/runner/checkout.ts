// The runner's one git operation: a detached tree of the ops repo at the action's commit, read
// over the runner remote. The runner holds no push credential and never writes to the repo.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GitError, Tampered } from "../errors.js";
import { streamGit } from "../opsrepo/exec.js";

/** git sees only what it needs: no Vault or Nomad variable of the task reaches it or its hooks. */
function gitEnv(from: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { PATH: from.PATH, HOME: from.HOME, LANG: from.LANG, GIT_TERMINAL_PROMPT: "0", LC_ALL: "C" };
}

function git(cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("git", args, { cwd, env: gitEnv(process.env), maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new GitError(`git ${args[0]} failed in ${cwd}: ${String(stderr).trim() || err.message}`, { cause: err }));
      else resolve(String(stdout));
    });
  });
}

/** git's answer without its trailing newline */
function gitOut(cwd: string, args: string[]): Promise<string> {
  return git(cwd, args).then((out) => out.trim());
}

/**
 * The checkout is what the dispatcher approved: HEAD is the approved commit and the action file
 * in it is the approved blob. Checked before the wrapping token is unwrapped; a difference is
 * tampering (the job's meta or the runner remote is not what the dispatcher sent).
 */
export async function verifyCheckout(dir: string, expected: { commit: string; actionPath: string; actionSha: string }): Promise<void> {
  // one git process when all is well: both ids at once (it fails as a whole when the file is
  // absent); anything else is read again one by one, for the message
  const both = await gitOut(dir, ["rev-parse", "HEAD^{commit}", `HEAD:${expected.actionPath}`]).then((out) => out.split("\n"), () => []);
  if (both.length === 2 && both[0] === expected.commit && both[1] === expected.actionSha) return;
  const head = await verifyHead(dir, expected.commit, "the checkout");
  const blob = await gitOut(dir, ["rev-parse", "--verify", "--quiet", `HEAD:${expected.actionPath}`]).catch(() => "absent");
  if (blob !== expected.actionSha) {
    throw new Tampered(`${expected.actionPath} at commit ${head.slice(0, 12)} is ${blob === "absent" ? "absent" : `blob ${blob}`}, expected the approved ${expected.actionSha}: refusing to run (possible tampering)`);
  }
}

/** HEAD of `dir` is `commit`, or the run is refused as tampering; returns it. */
async function verifyHead(dir: string, commit: string, what: string): Promise<string> {
  const head = await gitOut(dir, ["rev-parse", "--verify", "HEAD^{commit}"]);
  if (head !== commit) throw new Tampered(`${what} is at commit ${head}, expected the approved ${commit}: refusing to run (possible tampering)`);
  return head;
}

/**
 * The factory repository (disinto's formulas) at the commit the dispatcher's config pins, fetched
 * read-only like the ops repo and verified to be that commit: the pin is the approval of that
 * code, so a push to the factory's branch changes nothing that runs.
 */
export async function checkoutFactory(remote: string, commit: string, dir: string, bounds: CheckoutBounds = DEFAULT_CHECKOUT_BOUNDS): Promise<string> {
  await checkoutAt(remote, commit, dir, undefined, FETCH_RETRY_MS, bounds);
  await verifyHead(dir, commit, "the factory checkout");
  return dir;
}

/**
 * A detached working tree of `remote` at `commit` in `dir`: that commit alone (depth 1), so a
 * start costs the same whatever the repo's history; a server that refuses a fetch by commit id
 * (protocol v0 without uploadpack.allowReachableSHA1InWant) gets a full fetch instead. Other
 * actions' files and results are left out of the tree (they are not the formula's business), so
 * a huge file a hostile commit put there neither fills the task's disk nor its memory: blobs over
 * 1 MiB are hashed as a stream, never held whole.
 */
export async function checkoutAt(remote: string, commit: string, dir: string, actionPath: string | undefined, retryMs: readonly number[] = FETCH_RETRY_MS, bounds: CheckoutBounds = DEFAULT_CHECKOUT_BOUNDS): Promise<void> {
  await mkdir(dir, { recursive: true });
  await initSparse(dir, actionPath);
  for (let attempt = 0; ; attempt++) {
    try {
      await fetchCommit(dir, remote, commit);
      break;
    } catch (err) {
      const wait = retryMs[attempt];
      if (wait === undefined) throw err;
      // the formula's log says why it starts late
      console.error(`[runner] ${(err as Error).message}; trying again in ${wait / 1000} s`);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
  await checkCheckoutSize(dir, commit, actionPath, bounds);
  await git(dir, ["checkout", "--quiet", "--detach", commit]);
}

/**
 * An empty repository in `dir` whose checkout leaves other actions' files out (sparse, no cone),
 * in one git process: `git init` copies its template, and this template holds only the config
 * and the sparse patterns (the same as `git config` and `git sparse-checkout set --no-cone` wrote,
 * two processes more) and no hooks (git's default template copies a dozen samples).
 */
/**
 * `git init` from a template holding the settings (no hooks copied); with `actionPath` (the ops
 * repo) the sparse patterns leave its other actions out, a factory repository (no action) is
 * checked out whole.
 */
async function initSparse(dir: string, actionPath: string | undefined): Promise<void> {
  // beside the checkout, in the task's own directory (docker's root is read-only, exec's /tmp shared)
  const template = await mkdtemp(`${dir}-git-template-`);
  try {
    await mkdir(join(template, "info"));
    // blobs over 1 MiB are hashed as a stream, never held whole
    if (actionPath === undefined) await writeFile(join(template, "config"), "[core]\n\tbigFileThreshold = 1m\n");
    else {
      const actionsDir = actionPath.slice(0, actionPath.lastIndexOf("/") + 1);
      await writeFile(join(template, "config"), "[core]\n\tbigFileThreshold = 1m\n\tsparseCheckout = true\n\tsparseCheckoutCone = false\n");
      await writeFile(join(template, "info", "sparse-checkout"), `/*\n!/${actionsDir}*\n/${actionPath}\n`);
    }
    await git(dir, ["init", "--quiet", `--template=${template}`]);
  } finally {
    await rm(template, { recursive: true, force: true });
  }
}

/** What a checkout may write: the task's disk is 300 MB (jobspecs/runner.nomad.hcl ephemeral_disk), and the exec driver enforces no quota. */
export interface CheckoutBounds {
  /** all files the checkout writes together */
  maxTotalBytes: number;
  /** any one of them */
  maxFileBytes: number;
  /** entries of the commit's whole tree (a tree bomb lists 10^9 paths over a few KB of objects) */
  maxEntries: number;
}

export const DEFAULT_CHECKOUT_BOUNDS: CheckoutBounds = { maxTotalBytes: 200 * 1024 * 1024, maxFileBytes: 100 * 1024 * 1024, maxEntries: 200_000 };

/** The bounds from the runner's env (RUNNER_MAX_CHECKOUT_MB, RUNNER_MAX_FILE_MB), defaults otherwise. */
export function checkoutBoundsFromEnv(env: NodeJS.ProcessEnv): CheckoutBounds {
  const mb = (name: string, fallback: number): number => {
    const text = env[name];
    if (text === undefined || text === "") return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive whole number of MB, got "${text}" (example: ${name}=${fallback / 1024 / 1024})`);
    return n * 1024 * 1024;
  };
  return { maxTotalBytes: mb("RUNNER_MAX_CHECKOUT_MB", DEFAULT_CHECKOUT_BOUNDS.maxTotalBytes), maxFileBytes: mb("RUNNER_MAX_FILE_MB", DEFAULT_CHECKOUT_BOUNDS.maxFileBytes), maxEntries: DEFAULT_CHECKOUT_BOUNDS.maxEntries };
}

/**
 * The sizes of what the checkout would write (the tree at `commit` without other actions'
 * files), read from the fetched objects before any file is written: a file or a total over the
 * bounds is refused naming the largest file and its size.
 */
async function checkCheckoutSize(dir: string, commit: string, actionPath: string | undefined, bounds: CheckoutBounds): Promise<void> {
  const actionsDir = actionPath === undefined ? undefined : actionPath.slice(0, actionPath.lastIndexOf("/") + 1);
  let total = 0;
  let largest = { path: "", size: 0 };
  // a commit that is not there is the checkout's to report, in git's words
  // streamed, and stopped past the bound: the listing of a tree bomb is never held, nor waited out
  let entries = 0;
  const listed = await streamGit(
    dir,
    ["ls-tree", "-r", "-l", "-z", commit],
    (record) => {
      if (++entries > bounds.maxEntries) return false;
      // <mode> SP <type> SP <object> SP+ <size> TAB <path>
      const line = record.toString("utf8");
      const tab = line.indexOf("\t");
      if (tab < 0) return true;
      const [, type, , size] = line.slice(0, tab).split(/ +/);
      const path = line.slice(tab + 1);
      if (type !== "blob" || (actionsDir !== undefined && path.startsWith(actionsDir) && path !== actionPath)) return true;
      const n = Number(size);
      total += n;
      if (n > largest.size) largest = { path, size: n };
      return true;
    },
    gitEnv(process.env),
  ).catch(() => undefined);
  if (listed?.stopped) {
    // git's checkout reads every path of the tree into its index, other actions' folder included
    throw new GitError(`checkout of ${commit} refused: its tree lists more than ${bounds.maxEntries} paths (a tree bomb: a few KB of nested trees naming the same blobs); remove it from the ops repo`, undefined, "invalid");
  }
  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
  if (largest.size > bounds.maxFileBytes) {
    throw new GitError(`checkout of ${commit} refused: ${largest.path} is ${mb(largest.size)}, more than a checked-out file may be (${mb(bounds.maxFileBytes)}); keep large files out of the ops repo or raise RUNNER_MAX_FILE_MB`, undefined, "invalid");
  }
  if (total > bounds.maxTotalBytes) {
    throw new GitError(`checkout of ${commit} refused: it would write ${mb(total)}, more than the task's disk allows (${mb(bounds.maxTotalBytes)}); the largest file is ${largest.path} (${mb(largest.size)})`, undefined, "invalid");
  }
}

/**
 * A remote that is away for a moment (a restart, a failover, a repo being moved) is waited for,
 * about half a minute in all: a dispatch may go out just before the remote goes, and the action
 * would fail without its formula ever running.
 */
const FETCH_RETRY_MS = [1000, 2000, 4000, 8000, 16000];

async function fetchCommit(dir: string, remote: string, commit: string): Promise<void> {
  // a throwaway repository: no maintenance after the fetch (git runs `maintenance run --auto`, a process more)
  const shallow = await git(dir, ["fetch", "--quiet", "--no-auto-maintenance", "--depth", "1", remote, commit]).then(
    () => true,
    () => false,
  );
  if (!shallow) await git(dir, ["fetch", "--quiet", "--no-auto-maintenance", remote, "+refs/heads/*:refs/remotes/origin/*"]);
}
