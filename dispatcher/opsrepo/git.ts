// OpsRepoPort on a private clone of the ops repo, driven through the git CLI.

import { existsSync } from "node:fs";
import { mkdir, readdir, rm } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, resolve, sep } from "node:path";
import { hasControlCharacter, showPath, type EntryKind } from "../actions/names.js";
import type { FileChange, ListedFile, Listing, OpsRepoPort, RepoFile, WriteFailure, WriteOutcome } from "../core/ports.js";
import { backoffFor, GitError, PermanentFailure, retryTable } from "../errors.js";
import type { Logger } from "../log.js";
import { gitFailure, outsideSpec, redactUrls, remoteFailure, remoteTip, runGit, sshCommandFor, streamGit, tryGit, type GitRun, type SshCredential } from "./exec.js";
import { createCatFile } from "./catfile.js";
import { createFastImport } from "./fastimport.js";
import { launchGit } from "./launcher.js";
import { createSignatureBudget, readProvenance, SIGNATURE_CHECKS_PER_PASS, signatureChecks } from "./provenance.js";

export interface GitOpsRepoOptions {
  remote: string;
  branch: string;
  /** the dispatcher's private clone; cloned on the first sync() */
  workdir: string;
  author: { name: string; email: string };
  log: Logger;
  sleep?: (ms: number) => Promise<void>;
  /** pushes tried before a persistently rejected write fails (the results stay queued) */
  maxPushAttempts?: number;
  /** deploy key and pinned host key for an SSH remote (never in the URL) */
  ssh?: SshCredential;
  /**
   * Other processes use the same clone (the read-only commands' view): its lock files may be
   * live, so they are waited for, never removed. A daemon's clone is its own.
   */
  shared?: boolean;
  /** entries one listing or diff reads of a directory (default LISTING_CAP) */
  listingCap?: number;
  /** commit signatures a pass checks at most (each sync begins a pass; default SIGNATURE_CHECKS_PER_PASS) */
  signatureChecksPerPass?: number;
}


interface TreeEntry {
  mode: string;
  type: string;
  sha: string;
  path: string;
  /** bytes of a blob (ls-tree -l); undefined for trees */
  size?: number;
}

// A competing writer won the race: plain non-fast-forward, or its update landed between our
// ref advertisement and our ref update (the remote then fails to lock the ref).
const PUSH_RACE = /\((fetch first|non-fast-forward)\)|cannot lock ref|failed to update ref/;

/** another process using the shared clone (status beside logs -f) holds a ref or the config */
const LOCKED = /cannot lock ref|Unable to create '.*\.lock'|could not lock config file/;
const MAX_LOCK_WAITS = 8;

/** Past this, the results stay queued and the next pass tries again. */
const MAX_PUSH_ATTEMPTS = 8;

/**
 * Loose objects past which `gc --auto` packs them (in the background). A fetch writes its trees
 * whole: with 10,000 actions `vault/actions` alone is a 1 MB tree (570 KB compressed), so git's
 * default (6,700) let the clone grow by about 750 MB before packing them into a few MB (by hand:
 * 678 such loose objects, 77 MB, packed into 1 MB).
 */
const GC_AUTO_LOOSE = 256;

/** the threshold for every gc in the clone: ours and the one a fetch starts */
const WITH_GC_AUTO_LOOSE = ["-c", `gc.auto=${GC_AUTO_LOOSE}`];

/**
 * Our result commits between two `gc --auto` of our own. Each leaves a pack of its own (fast-import's,
 * about 1 MB with 10,000 actions), which git keeps out of gc while that fast-import runs; past git's
 * 50 packs gc packs them into one. A fetch runs gc too, but a dispatcher that only writes results
 * never fetches.
 */
const COMMITS_PER_GC = 10;

const GC_AUTO = [...WITH_GC_AUTO_LOOSE, "gc", "--auto", "--quiet"];

/** files in a listing kept for the next one (listingAt) */
const KEPT_LISTING_MAX = 1000;

/**
 * Entries one listing (or one diff) reads of a directory; past them the listing is truncated and
 * the rest never read, so a pass's memory and time stay bounded whatever was pushed (a pass
 * lists two directories: the actions and the formulas). 200,000 entries are about 40 MB held.
 */
export const LISTING_CAP = 200_000;

/** our own recent pushes, answered from memory by diffFiles (the next pass diffs across them) */
const OWN_WRITES_KEPT = 16;

/**
 * The clone is ours alone and nothing else runs git in it before we adopt it: a lock file
 * there is left by a previous life of this dispatcher killed mid-command.
 */
async function removeStaleLocks(gitDir: string): Promise<void> {
  const locks = ["index.lock", "HEAD.lock", "config.lock", "packed-refs.lock", "shallow.lock"].map((f) => join(gitDir, f));
  const refs = await readdir(join(gitDir, "refs"), { recursive: true }).catch(() => [] as string[]);
  locks.push(...refs.filter((r) => r.endsWith(".lock")).map((r) => join(gitDir, "refs", r)));
  await Promise.all(locks.map((l) => rm(l, { force: true })));
}

export function createGitOpsRepo(opts: GitOpsRepoOptions): OpsRepoPort {
  const { branch, log } = opts;
  const workdir = resolve(opts.workdir);
  const shownRemote = redactUrls(opts.remote);
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((done) => setTimeout(done, ms)));
  const maxPushAttempts = opts.maxPushAttempts ?? MAX_PUSH_ATTEMPTS;
  const listingCap = opts.listingCap ?? LISTING_CAP;
  const signatureBudget = createSignatureBudget(opts.signatureChecksPerPass ?? SIGNATURE_CHECKS_PER_PASS);
  // fast-import's ident line cannot hold these: a configured name never breaks a commit
  const identityName = opts.author.name.replace(/[<>\n]/g, "");
  const identityEmail = opts.author.email.replace(/[<>\n]/g, "");
  const git = (args: string[]) => runGit(workdir, args);
  const serialize = createQueue();
  const objects = createCatFile(workdir);
  const importer = createFastImport(workdir);
  let cloned: Promise<void> | undefined;
  /** the remote's tip as last fetched or pushed by this process, and when it was last confirmed */
  let knownTip: string | undefined;
  let confirmedAt = 0;
  /** what each of our recent pushes changed, by its commit: the parent and the files */
  const ownWrites = new Map<string, { from: string; files: FileChange[] }>();
  let commitsSinceGc = 0;

  async function remoteOp(what: string, cwd: string, args: string[]): Promise<void> {
    const run = await tryGit(cwd, args);
    if (run.code !== 0) throw remoteFailure(`cannot ${what} ${shownRemote}: ${run.stderr.trim()}`, run.stderr);
  }

  /**
   * A git command in the clone, tried again while another process holds a lock it needs (up to
   * MAX_LOCK_WAITS). Started by the launcher's shell (launcher.ts): the fetch of every pass that
   * finds the remote moved takes it.
   */
  async function tryGitWaitingForLocks(args: string[]): Promise<GitRun> {
    for (let attempt = 1; ; attempt++) {
      const run = await launchGit(workdir, args);
      if (run.code === 0 || !LOCKED.test(run.stderr) || attempt >= MAX_LOCK_WAITS) return run;
      await sleep(100 * attempt);
    }
  }

  /** A setting of the clone's own: fails with git's words once the config lock stays held. */
  async function configure(args: string[]): Promise<void> {
    const run = await tryGitWaitingForLocks(args);
    if (run.code !== 0) throw gitFailure(workdir, args, run);
  }

  function ensureClone(): Promise<void> {
    cloned ??= cloneOrAdopt().catch((err: unknown) => {
      cloned = undefined; // let the next sync try again
      throw err;
    });
    return cloned;
  }

  async function cloneOrAdopt(): Promise<void> {
    if (existsSync(join(workdir, ".git"))) {
      if (!opts.shared) await removeStaleLocks(join(workdir, ".git"));
      await configure(["remote", "set-url", "origin", opts.remote]); // the configured remote may have moved
      // the credential may have moved too: every command in the clone uses the configured one
      if (opts.ssh) await configure(["config", "core.sshCommand", sshCommandFor(opts.ssh)]);
      else await tryGitWaitingForLocks(["config", "--unset", "core.sshCommand"]);
      return;
    }
    await mkdir(dirname(workdir), { recursive: true });
    try {
      const ssh = opts.ssh ? ["-c", `core.sshCommand=${sshCommandFor(opts.ssh)}`] : [];
      await remoteOp("clone", dirname(workdir), ["clone", "--quiet", "--no-checkout", ...ssh, "--origin", "origin", opts.remote, workdir]);
    } catch (err) {
      // another process sharing this workdir cloned first: use its clone
      if (!existsSync(join(workdir, ".git"))) throw err;
    }
  }

  async function fetchTip(): Promise<string> {
    await ensureClone();
    const run = await tryGitWaitingForLocks([...WITH_GC_AUTO_LOOSE, "fetch", "--quiet", "origin", `+refs/heads/${branch}:refs/remotes/origin/${branch}`]);
    if (run.code !== 0) throw remoteFailure(`cannot fetch from ${shownRemote}: ${run.stderr.trim()}`, run.stderr);
    // the long-lived cat-file reads the ref as the fetch left it: no process
    const tip = await objects.info(`refs/remotes/origin/${branch}^{commit}`);
    if (tip?.type !== "commit") throw new GitError(`git fetch from ${shownRemote} left no commit at refs/remotes/origin/${branch}`);
    knownTip = tip.sha;
    confirmedAt = Date.now();
    return knownTip;
  }

  /**
   * The tip when the remote still has the one we know (one ls-remote: no fetch, no object
   * negotiation, nothing in the clone touched, so it need not wait for a write in progress).
   */
  async function unchangedTip(): Promise<string | undefined> {
    const known = knownTip;
    if (!known) return undefined;
    // through `origin`: set to opts.remote when the clone was adopted
    // the ls-remote of every pass that asks: started by the launcher's shell, as the fetch is
    if ((await remoteTip(opts.remote, branch, workdir, opts.ssh, "origin", launchGit)) !== known) return undefined;
    confirmedAt = Date.now();
    return known;
  }

  /** the last listing of each small directory, by its tree id: unchanged at a later commit, it is not listed again */
  const listings = new Map<string, { tree: string; files: readonly ListedFile[] }>();

  /**
   * The direct children of `dir` at `commit`, of every kind (`ls-tree` without `-r`: a tree of
   * any depth below costs nothing), at most LISTING_CAP of them. A directory whose tree is the
   * one last listed (looked up in the long-lived cat-file, no process) is answered from memory:
   * the formulas, at every commit our own pushes make. A large listing is not kept: its reader
   * keeps an index of its own and follows later commits by their diff (readActions and
   * `vault/actions`; at 10,000 actions a second copy held 20,000 entries for good).
   */
  async function listingAt(commit: string, dir: string): Promise<Listing> {
    const tree = dir.includes("\n") ? undefined : (await objects.info(`${commit}:${dir}`))?.sha;
    const last = listings.get(dir);
    if (tree !== undefined && last?.tree === tree) return last.files;
    const files: ListedFile[] = [];
    const prefix = `${dir}/`;
    // `<dir>/`: its children; nothing when it is absent or no directory
    const run = await streamGit(workdir, ["ls-tree", "-l", "-z", "--full-tree", commit, "--", prefix], (record) => {
      if (files.length >= listingCap) return false;
      const e = parseEntry(record);
      if (e.path.startsWith(prefix)) files.push(e);
      return true;
    });
    if (!run.stopped && run.code !== 0) throw gitFailure(workdir, ["ls-tree", commit, "--", prefix], { code: run.code, stdout: Buffer.alloc(0), stderr: run.stderr });
    const listing: Listing = run.stopped ? Object.assign(files, { truncated: true }) : files;
    if (tree !== undefined && !run.stopped && files.length <= KEPT_LISTING_MAX) listings.set(dir, { tree, files: listing });
    else listings.delete(dir);
    return listing;
  }

  /**
   * What changed among the direct children of `dir` between two commits (the two trees diffed
   * without `-r`: a subtree is one entry, however deep); undefined when `from` is unknown, `dir`
   * is absent at either, or more than LISTING_CAP entries changed (the caller lists afresh).
   * Deletions come first: an entry whose kind changed is a deletion and an addition.
   */
  async function diffFiles(from: string, to: string, dir: string): Promise<FileChange[] | undefined> {
    // our own pushes since `from` (each only adds files): no git process
    const own: FileChange[] = [];
    for (let at = to, w = ownWrites.get(at); w; at = w.from, w = ownWrites.get(at)) {
      own.push(...w.files);
      if (w.from === from) return own.filter((f) => f.path.startsWith(`${dir}/`));
    }
    const raw: { mode: string; sha: string; status: string; name: Buffer }[] = [];
    let header: string | undefined;
    const run = await streamGit(workdir, ["diff-tree", "-z", "--no-renames", "--raw", `${from}:${dir}`, `${to}:${dir}`], (record) => {
      if (header === undefined) {
        header = record.toString("utf8");
        return true;
      }
      // ":<old mode> <new mode> <old sha> <new sha> <status>"
      const [, mode = "", , sha = "", status = ""] = header.slice(1).split(" ");
      header = undefined;
      raw.push({ mode, sha, status: status.charAt(0), name: Buffer.from(record) });
      return raw.length <= listingCap;
    });
    if (run.stopped || run.code !== 0) return undefined;
    const changes = await Promise.all(
      raw.map(async (c): Promise<FileChange> => {
        const { path, notUtf8 } = decodePath(Buffer.concat([Buffer.from(`${dir}/`), c.name]));
        if (c.status === "D") return { path, deleted: true };
        const kind = kindOfMode(c.mode, undefined);
        const size = kind === "file" || kind === "symlink" ? (await objects.info(c.sha))?.size : undefined;
        return { path, sha: c.sha, ...(size === undefined ? {} : { size }), ...(kind === "file" ? {} : { kind }), ...(notUtf8 ? { notUtf8 } : {}) };
      }),
    );
    return [...changes.filter((c) => "deleted" in c), ...changes.filter((c) => !("deleted" in c))];
  }

  /** the entries at `paths` themselves (never below them) */
  async function readTree(commit: string, paths: string[]): Promise<TreeEntry[]> {
    const out = await git(["ls-tree", "-l", "-z", "--full-tree", commit, "--", ...paths]);
    return parseTree(out);
  }

  /**
   * Which files can be added at `tip`: a path that is a file there is skipped, never
   * overwritten; a path that is a directory or a symlink there, or lies under a symlink or a
   * file, cannot be written and fails alone. Symlinks in the repo are data: nothing here ever follows one. Looked up in the
   * long-lived cat-file (no process); only a blocker's kind (symlink or file) needs ls-tree.
   */
  async function placeable(tip: string, files: RepoFile[]): Promise<{ fresh: RepoFile[]; skipped: string[]; failed: WriteFailure[] }> {
    const result = { fresh: [] as RepoFile[], skipped: [] as string[], failed: [] as WriteFailure[] };
    // a batch's files share their directories: each is looked up once
    const kinds = new Map<string, Promise<string | undefined>>();
    const kindOfPath = (p: string) => kinds.get(p) ?? kinds.set(p, objects.info(`${tip}:${p}`).then((i) => i?.type)).get(p)!;
    const looked = await Promise.all(
      files.map(async (f) => {
        const parents = parentsOf(f.path);
        try {
          const [own, ...above] = await Promise.all([f.path, ...parents].map(kindOfPath));
          return { f, own, blocker: parents.find((_, i) => above[i] !== undefined && above[i] !== "tree") };
        } catch (err) {
          // a path the object reader cannot ask for: this file fails, not the batch
          return { f, own: undefined, blocker: undefined, error: (err as Error).message };
        }
      }),
    );
    for (const { f, own, blocker, error } of looked) {
      if (error !== undefined) result.failed.push({ path: f.path, reason: error });
      else if (own) {
        // a file there is a result (never overwritten); what is no file holds no result and takes none
        const entry = own === "blob" ? (await readTree(tip, [f.path])).find((e) => e.path === f.path) : undefined;
        if (entry && entry.mode !== "120000") result.skipped.push(f.path);
        else result.failed.push({ path: f.path, reason: `${f.path} is ${entry ? kindOf(entry) : own === "tree" ? "a directory" : `a ${own}`} in the repo, not a file` });
      }
      else if (blocker) {
        const entry = (await readTree(tip, [blocker])).find((e) => e.path === blocker)!;
        result.failed.push({ path: f.path, reason: `${blocker} is ${kindOf(entry)} in the repo, not a directory` });
      } else result.fresh.push(f);
    }
    return result;
  }

  /**
   * A commit of `files` on top of `tip` through the clone's long-lived `git fast-import`: blobs,
   * trees and the commit written into .git only (a pack per commit); no index, no working tree.
   * Only the trees along the written paths are rebuilt, however large the repo.
   */
  function commitOnto(tip: string, files: RepoFile[], message: string): Promise<{ commit: string; blobs: string[] }> {
    const ident = `${identityName} <${identityEmail}> ${Math.floor(Date.now() / 1000)} +0000`;
    return importer.commit({ from: tip, files, message, ident });
  }

  function rememberWrite(commit: string, from: string, files: FileChange[]): void {
    ownWrites.set(commit, { from, files });
    if (ownWrites.size > OWN_WRITES_KEPT) ownWrites.delete(ownWrites.keys().next().value!);
  }

  /**
   * Every COMMITS_PER_GC commits, the fast-import ends (its packs are gc's then) and git's own check
   * runs: it returns at once and packs in the background.
   */
  async function collectGarbage(): Promise<void> {
    if (++commitsSinceGc < COMMITS_PER_GC) return;
    commitsSinceGc = 0;
    await importer.close();
    const run = await launchGit(workdir, GC_AUTO);
    if (run.code !== 0) log.warn({ stderr: run.stderr.trim() }, "git gc --auto failed in the dispatcher's clone; the next one tries again");
  }

  async function writeOnce(all: RepoFile[], message: string): Promise<WriteOutcome> {
    // a path no commit can hold fails alone: the others still land
    const refused: WriteFailure[] = [];
    const files = all.filter((f) => {
      const reason = unwritablePath(f.path);
      if (reason) refused.push({ path: f.path, reason });
      return reason === undefined;
    });
    for (const f of refused) log.error({ path: showPath(f.path), reason: f.reason }, "result cannot be written at its path; the others still land");
    // the first try builds on the tip we last saw, unasked: the push itself checks it (it lands
    // only on that very tip, where nothing was overwritten); a refusal sends us to the remote
    let optimistic = knownTip !== undefined;
    let rejections = 0;
    for (let attempt = 1; ; ) {
      // every attempt after a refusal starts from the remote tip: building our commit there again is the rebase
      const tip = optimistic ? knownTip! : await fetchTip();
      const placed = await placeable(tip, files);
      const { fresh, skipped } = placed;
      const failed = [...refused, ...placed.failed];
      for (const f of placed.failed) log.error({ path: f.path, reason: f.reason }, "result cannot be written at its path; the others still land");
      const outcome = (commit: string): WriteOutcome => ({ commit, ...(commit !== tip ? { base: tip } : {}), skipped, ...(failed.length > 0 ? { failed } : {}), rejections });
      if (fresh.length === 0 && !optimistic) return outcome(tip);
      if (fresh.length === 0) {
        // nothing left to write on the tip we knew: look at the remote's before saying so
        optimistic = false;
        continue;
      }
      const { commit, blobs } = await commitOnto(tip, fresh, message);
      // once per result commit: started by a small shell, node's own fork costs more (launcher.ts)
      const push = await launchGit(workdir, ["push", "--quiet", "origin", `${commit}:refs/heads/${branch}`]);
      if (push.code === 0) {
        knownTip = commit; // the push moved the remote-tracking ref too
        confirmedAt = Date.now();
        rememberWrite(commit, tip, fresh.map((f, i) => ({ path: f.path, sha: blobs[i]!, size: f.content.length })));
        await collectGarbage();
        return outcome(commit);
      }
      if (!PUSH_RACE.test(push.stderr)) throw remoteFailure(`cannot push to ${shownRemote}: ${push.stderr.trim()}`, push.stderr);
      rejections++;
      if (optimistic) {
        optimistic = false; // the remote moved since we last looked: look, and build again at once
        continue;
      }
      if (attempt >= maxPushAttempts) {
        throw new GitError(`push to ${shownRemote} still rejected after ${attempt} attempts: ${push.stderr.trim()}`);
      }
      log.warn({ attempt, remote: shownRemote }, "push rejected by a concurrent writer; retrying on the new tip");
      await sleep(backoffFor("infra", attempt) ?? retryTable.infra.maxMs);
      attempt++;
    }
  }

  return {
    // fetches and pushes share one clone, so they take turns; reads only need the objects
    // a pass does not queue behind a result push when the remote has not moved
    sync: async (o) => {
      signatureBudget.left = signatureBudget.perPass;
      if (o?.maxAgeMs !== undefined && knownTip && Date.now() - confirmedAt < o.maxAgeMs) return knownTip;
      // checked behind a push of ours in progress: it may be the one the webhook names
      if (o?.pushed !== undefined) return serialize(async () => (knownTip !== undefined && o.pushed === knownTip ? knownTip : fetchTip()));
      return (await unchangedTip()) ?? serialize(fetchTip);
    },

    listFiles: (commit, dir) => listingAt(commit, dir),

    diffFiles: (from, to, dir) => diffFiles(from, to, dir.replace(/\/+$/, "")),

    provenance: (commit, path, allowedSignersFile, outside) => readProvenance(workdir, commit, path, allowedSignersFile, signatureBudget, outside),

    signatureChecks,

    async readFile(commit, path) {
      if (path.includes("\n")) {
        const entry = (await readTree(commit, [path])).find((e) => e.path === path);
        return entry?.type === "blob" ? git(["cat-file", "blob", entry.sha]) : undefined;
      }
      const found = await objects.read(`${commit}:${path}`);
      // "absent" is an answer; a commit we do not have stays an error
      if (!found && !(await objects.read(`${commit}^{commit}`))) throw new GitError(`git: commit ${commit} is not in the clone ${workdir}`);
      return found?.type === "blob" ? found.content : undefined;
    },

    async sameCodeAs(from, to, dir) {
      if (from === to) return true;
      const onBranch = await tryGit(workdir, ["merge-base", "--is-ancestor", from, to]);
      if (onBranch.code === 1) return false;
      if (onBranch.code !== 0) throw gitFailure(workdir, ["merge-base", "--is-ancestor", from, to], onBranch);
      const diff = await tryGit(workdir, ["diff", "--quiet", from, to, "--", ...outsideSpec(dir)]);
      if (diff.code > 1) throw gitFailure(workdir, ["diff", "--quiet", from, to], diff);
      return diff.code === 0;
    },

    writeFiles: (files, message) => serialize(() => writeOnce(files, message)),
  };
}

/** Runs tasks one after another, whatever the outcome of the previous one. */
function createQueue(): <T>(task: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (task) => {
    const run = tail.then(task, task);
    tail = run.catch(() => undefined);
    return run;
  };
}

function splitNul(out: Buffer): string[] {
  return out.toString("utf8").split("\0").filter((s) => s !== "");
}

/** `ls-tree -z` lines: "<mode> <type> <sha>\t<path>". */
function parseTree(out: Buffer): TreeEntry[] {
  return splitNul(out).map((line) => {
    const tab = line.indexOf("\t");
    // "<mode> <type> <sha> <size, padded>\t<path>"
    const [mode = "", type = "", sha = "", size = "-"] = line.slice(0, tab).split(/ +/);
    return { mode, type, sha, path: line.slice(tab + 1), ...(size === "-" ? {} : { size: Number(size) }) };
  });
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** A path from git's bytes: as text, or (not UTF-8) with its bad bytes replaced and flagged. */
function decodePath(bytes: Buffer): { path: string; notUtf8?: true } {
  try {
    return { path: UTF8.decode(bytes) };
  } catch {
    return { path: bytes.toString("utf8"), notUtf8: true };
  }
}

/** A directory entry's kind from its mode (and, for a mode git tolerates but never writes, its type). */
function kindOfMode(mode: string, type: string | undefined): EntryKind {
  if (mode === "120000") return "symlink";
  if (mode === "040000" || mode === "40000" || type === "tree") return "directory";
  if (mode === "160000" || type === "commit") return "submodule";
  return "file";
}

/** One `ls-tree -l -z` record: "<mode> <type> <sha> <size, padded>\t<path>". */
function parseEntry(record: Buffer): ListedFile {
  const tab = record.indexOf(9);
  const [mode = "", type = "", sha = "", size = "-"] = record.subarray(0, tab).toString("utf8").split(/ +/);
  const { path, notUtf8 } = decodePath(record.subarray(tab + 1));
  const kind = kindOfMode(mode, type);
  return { path, sha, ...(size === "-" ? {} : { size: Number(size) }), ...(kind === "file" ? {} : { kind }), ...(notUtf8 ? { notUtf8 } : {}) };
}

/** Why no commit of ours may hold `path`, undefined when it may. */
function unwritablePath(path: string): string | undefined {
  try {
    assertRepoPath(path);
  } catch (err) {
    return (err as Error).message;
  }
  if (hasControlCharacter(path)) return `${showPath(path)} has a control character (newline, tab, …): git's line-based protocols cannot carry it`;
  return undefined;
}

/** How a tree entry reads in a message. */
function kindOf(e: TreeEntry): string {
  if (e.mode === "120000") return "a symlink";
  return e.type === "blob" ? "a file" : `a ${e.type}`;
}

/** "a/b/c.json" → ["a", "a/b"]: the directories a path needs. */
function parentsOf(path: string): string[] {
  const parts = path.split("/").slice(0, -1);
  return parts.map((_, i) => parts.slice(0, i + 1).join("/"));
}

/** A path of the repo's tree: never absolute, never out of it, never into .git. */
function assertRepoPath(path: string): void {
  const norm = normalize(path);
  if (path === "" || isAbsolute(path) || norm === ".." || norm.startsWith(`..${sep}`) || norm.split(sep).includes(".git")) {
    throw new PermanentFailure(`refusing to write outside the ops repo: ${JSON.stringify(path)}`, "invalid");
  }
}
