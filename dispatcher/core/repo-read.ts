// Reading the ops repo through its port: pending actions, results, formulas at a commit.
import * as z from "zod";
import { ACTION_EXT, classifyEntry, notAFile, RESULT_EXT, showPath, type IgnoredCode } from "../actions/names.js";
import { oversizeAction, parseAction } from "../actions/parse.js";
import type { ParsedAction } from "../actions/schema.js";
import { PermanentFailure } from "../errors.js";
import type { ListedFile, OpsRepoPort } from "./ports.js";
import { RESULT_STATUSES } from "./result.js";
import type { StoredResult } from "./status.js";

const FORMULAS_DIR = "formulas";
const FORMULA_EXT = ".sh";
/** action files read at once: each is at most MAX_ACTION_BYTES, and a read may be a git process (a path with a newline) */
const READS_AT_ONCE = 16;

/**
 * What readActions keeps between passes: the directory's direct children at one commit, the ids
 * pending there, and what was parsed. A later commit applies only what changed since (a diff),
 * so a pass over a directory of 20,000 done actions costs the changed files, not a walk of all.
 */
export interface ActionsIndex {
  commit?: string;
  dir?: string;
  /** direct children of the directory by name */
  names: Map<string, ListedFile>;
  /** ids with an action file and no result */
  pending: Set<string>;
  /** parsed pending files, by path and blob id */
  parsed: Map<string, ParsedAction>;
  /** readActions' answer at `commit`: every pass between two commits gets it again, not rebuilt */
  read?: readonly ParsedAction[];
  /** children that are not part of the contract (names.ts), by name: never read, never answered */
  ignored: Map<string, IgnoredEntry>;
  /** the last full listing held more entries than a listing reads: those past it are unknown */
  truncated: boolean;
  /** `ignored` or `truncated` changed since takeIgnoredChange() last said so */
  ignoredChanged: boolean;
  /** action files read (and parsed) in one call at most; the rest wait for the next call */
  readsPerPass: number;
  /** pending files the last call left unread (readsPerPass): the next call at the same commit reads on */
  deferred: number;
  /**
   * ids whose action file is there but whose result's path is taken by what is no file (a
   * directory, a symlink, a submodule): never dispatched, as no result could be written for
   * them (and none is ever written over); why, for plan and status
   */
  unwritable: Map<string, string>;
}

/**
 * Action files a pass reads at most: each is at most 64 KiB and read a window at a time, but
 * their parsed forms and the results of the invalid ones are held until pushed. The bench's
 * 10,000 pending actions are read in one pass.
 */
export const READS_PER_PASS = 10_000;

/** An entry of the actions directory that is not part of the contract, and why. */
export interface IgnoredEntry {
  path: string;
  code: IgnoredCode;
  reason: string;
}

export function createActionsIndex(opts: { readsPerPass?: number } = {}): ActionsIndex {
  return { names: new Map(), pending: new Set(), parsed: new Map(), ignored: new Map(), truncated: false, ignoredChanged: false, readsPerPass: opts.readsPerPass ?? READS_PER_PASS, deferred: 0, unwritable: new Map() };
}

/** What is ignored in the actions directory at the index's commit, sorted by path. */
export function ignoredEntries(index: ActionsIndex): { entries: IgnoredEntry[]; truncated: boolean } {
  return { entries: [...index.ignored.values()].sort((a, b) => compare(a.path, b.path)), truncated: index.truncated };
}

/** Actions held back because their result's path is taken by what is no file, by id, and why (sorted by id). */
export function unwritableActions(index: ActionsIndex): [string, string][] {
  return [...index.unwritable].sort(([a], [b]) => compare(a, b));
}

/** ignoredEntries(), once after each change (the loop logs and counts it then, not every pass). */
export function takeIgnoredChange(index: ActionsIndex): { entries: IgnoredEntry[]; truncated: boolean } | undefined {
  if (!index.ignoredChanged) return undefined;
  index.ignoredChanged = false;
  return ignoredEntries(index);
}

/**
 * Every `<id>.toml` directly in `dir` at `commit` without a sibling `<id>.result.json`, parsed,
 * sorted by id. Files with a bad name are parsed too, so they still get an (invalid) result.
 * With an `index` from an earlier pass, only the files changed since its commit are looked at,
 * and a file already parsed at the same path and blob id is not read again. At the index's own
 * commit the answer is the last one, the same array (a loop passes thousands of times between two
 * commits while its children end).
 */
export async function readActions(repo: OpsRepoPort, commit: string, dir: string, index: ActionsIndex = createActionsIndex()): Promise<readonly ParsedAction[]> {
  const trimmed = dir.replace(/\/+$/, "");
  if (index.read && index.commit === commit && index.dir === trimmed) return index.read;
  index.read = undefined;
  await updateIndex(repo, commit, trimmed, index);
  const pending = [...index.pending].sort(compare).map((id) => ({ id, ...index.names.get(id + ACTION_EXT)! }));
  // sizes before contents: a huge blob is refused from the listing, never read into memory
  const entries = pending.map((f) => {
    const file = { path: f.path, id: f.id, sha: f.sha };
    const key = `${f.path}\0${f.sha}`;
    // a directory, a submodule or a symlink at an action's path is data: invalid, never read
    const shape = f.kind !== undefined && f.kind !== "file" ? { ok: false as const, file, problems: [`is ${notAFile(f.kind)}`] } : undefined;
    return { key, file, parsed: index.parsed.get(key) ?? shape ?? (f.size === undefined ? undefined : oversizeAction(file, f.size)) };
  });
  const unread = entries.filter((e) => e.parsed === undefined);
  // past the cap, the rest are left for the next call: a pass's time and memory stay bounded
  index.deferred = Math.max(0, unread.length - index.readsPerPass);
  await readEach(repo, commit, unread.slice(0, index.readsPerPass), (e) => e.file.path, (e, content) => {
    // one file that cannot be read is its own problem, not the pass's
    e.parsed = content === undefined ? { ok: false, file: e.file, problems: [`is listed at ${commit} but cannot be read`] } : parseAction(content, e.file);
  });
  const done = entries.filter((e) => e.parsed !== undefined);
  const parsed = done.map((e) => e.parsed!);
  // keep only what is still pending, so the cache never outgrows the pending set
  index.parsed = new Map(done.map((e) => [e.key, e.parsed!]));
  // with files left unread, the next call at this commit reads on instead of answering again
  index.read = index.deferred > 0 ? undefined : parsed;
  return parsed;
}

/** Brings the index to `commit`: from the diff since its commit, or from a full listing. */
async function updateIndex(repo: OpsRepoPort, commit: string, dir: string, index: ActionsIndex): Promise<void> {
  if (index.commit === commit && index.dir === dir) return;
  const changes = index.commit !== undefined && index.dir === dir ? await repo.diffFiles(index.commit, commit, dir) : undefined;
  if (!changes) {
    index.names.clear();
    index.pending.clear();
    index.ignored.clear();
    index.unwritable.clear();
    const listing = await repo.listFiles(commit, dir);
    index.truncated = listing.truncated === true;
    index.ignoredChanged = true;
    for (const f of directChildren(listing, dir)) setName(index, f.name, f);
  } else {
    const prefix = `${dir}/`;
    for (const c of changes) {
      const name = c.path.slice(prefix.length);
      // files in subfolders are not part of the contract
      if (!c.path.startsWith(prefix) || name.includes("/")) continue;
      setName(index, name, "deleted" in c ? undefined : c);
    }
  }
  index.commit = commit;
  index.dir = dir;
}

/**
 * One child added, changed or (undefined) deleted, checked against the contract once here, and
 * what that means for the pending ids. An ignored child is only remembered with its reason.
 */
function setName(index: ActionsIndex, name: string, file: ListedFile | undefined): void {
  index.names.delete(name);
  if (index.ignored.delete(name)) index.ignoredChanged = true;
  const role = file ? classifyEntry(name, file.kind ?? "file", file.notUtf8) : undefined;
  if (file && role?.role === "ignored") {
    index.ignored.set(name, { path: file.path, code: role.code, reason: role.reason });
    index.ignoredChanged = true;
  } else if (file) index.names.set(name, { path: file.path, sha: file.sha, ...(file.size === undefined ? {} : { size: file.size }), ...(file.kind === undefined ? {} : { kind: file.kind }) });
  const id = name.endsWith(RESULT_EXT) ? name.slice(0, -RESULT_EXT.length) : name.endsWith(ACTION_EXT) ? name.slice(0, -ACTION_EXT.length) : undefined;
  if (id === undefined) return;
  const action = index.names.has(id + ACTION_EXT);
  // what is no file at the result's path holds the action back: its result could not be written
  const blocker = index.ignored.get(id + RESULT_EXT);
  const blocked = blocker?.code === "not_a_file";
  if (action && blocked) index.unwritable.set(id, `its result's path ${showPath(blocker.path)} is ${blocker.reason}: no result can be written there (none is ever written over), so it is not dispatched; move that entry away`);
  else index.unwritable.delete(id);
  if (action && !blocked && !index.names.has(id + RESULT_EXT)) index.pending.add(id);
  else index.pending.delete(id);
}

/** The result fields readers rely on; the rest is kept by the writer, not needed here. */
const storedResult = z.object({
  id: z.string(),
  status: z.enum(RESULT_STATUSES),
  exit_code: z.number(),
  timestamp: z.string(),
  logs: z.string(),
  job_id: z.string().optional(),
  alloc_id: z.string().optional(),
  node: z.string().optional(),
  finished_at: z.string().optional(),
  log_file: z.string().optional(),
});

export type ReadResult = StoredResult & { logs: string; log_file?: string };

/** `<dir>/<id>.result.json` at `commit`: undefined when absent, GitError when it is not a result. */
export async function readResult(repo: OpsRepoPort, commit: string, dir: string, id: string): Promise<ReadResult | undefined> {
  const path = `${dir.replace(/\/+$/, "")}/${id}${RESULT_EXT}`;
  const content = await repo.readFile(commit, path);
  return content === undefined ? undefined : parseResult(path, content);
}

/** Every result directly in `dir` at `commit`; unreadable ones are reported, not fatal. */
export async function readResults(repo: OpsRepoPort, commit: string, dir: string): Promise<{ results: ReadResult[]; problems: string[] }> {
  const files = directChildren(await repo.listFiles(commit, dir), dir).filter((f) => f.name.endsWith(RESULT_EXT) && classifyEntry(f.name, f.kind ?? "file", f.notUtf8).role === "result");
  const out = { results: [] as ReadResult[], problems: [] as string[] };
  await readEach(repo, commit, files, (f) => f.path, (f, content) => {
    try {
      if (content !== undefined) out.results.push(parseResult(f.path, content));
    } catch (err) {
      out.problems.push((err as Error).message);
    }
  });
  return out;
}

/**
 * Reads each item's file at `commit` a window at a time (the cat-file answers come back to back
 * instead of a round trip each) and hands each over, in order, before the next window is read:
 * at most a window of contents is held.
 */
async function readEach<T>(repo: OpsRepoPort, commit: string, items: readonly T[], pathOf: (item: T) => string, use: (item: T, content: Buffer | undefined) => void): Promise<void> {
  for (let i = 0; i < items.length; i += READS_AT_ONCE) {
    const window = items.slice(i, i + READS_AT_ONCE);
    const contents = await Promise.all(window.map((item) => repo.readFile(commit, pathOf(item))));
    window.forEach((item, j) => use(item, contents[j]));
  }
}

function parseResult(path: string, content: Buffer): ReadResult {
  let json: unknown;
  try {
    json = JSON.parse(content.toString("utf8"));
  } catch (err) {
    throw new PermanentFailure(`${path}: not JSON (${(err as Error).message})`, "invalid");
  }
  const parsed = storedResult.safeParse(json);
  if (!parsed.success) throw new PermanentFailure(`${path}: not a result: ${parsed.error.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ")}`, "invalid");
  return parsed.data;
}

/** Names of the formulas the ops repo offers at `commit`: `formulas/<name>.sh`. */
export async function readFormulas(repo: OpsRepoPort, commit: string): Promise<Set<string>> {
  // a file or a link to one (the runner's checkout follows it); subdirectories hold helpers, never walked here
  const files = directChildren(await repo.listFiles(commit, FORMULAS_DIR), FORMULAS_DIR).filter((f) => (f.kind === undefined || f.kind === "symlink") && !f.notUtf8);
  return new Set(files.filter((f) => f.name.endsWith(FORMULA_EXT)).map((f) => f.name.slice(0, -FORMULA_EXT.length)));
}

/** The entries of a listing directly in `dir`, with their names (a port may list deeper: those are not part of the contract). */
function directChildren(files: readonly ListedFile[], dir: string) {
  const prefix = `${dir.replace(/\/+$/, "")}/`;
  return files.filter((f) => f.path.startsWith(prefix) && !f.path.slice(prefix.length).includes("/")).map((f) => ({ ...f, name: f.path.slice(prefix.length) }));
}

/** Code-unit order: the same on every machine, whatever its locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
