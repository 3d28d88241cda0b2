import type { OpsRepoPort } from "../core/ports.js";
import { GitError } from "../errors.js";
import { parseAction } from "./parse.js";
import type { ParsedAction } from "./schema.js";

const ACTION_EXT = ".toml";
const RESULT_EXT = ".result.json";
const FORMULAS_DIR = "formulas";
const FORMULA_EXT = ".sh";

/** Action file contents by blob id, kept between passes: a blob id names its content. */
export type BlobCache = Map<string, Buffer>;

export interface ReadOptions {
  /** ids the caller already holds: not read, not returned */
  skip?: (id: string) => boolean;
  /** filled with the pending files' contents; a file seen in the previous read is not read again */
  cache?: BlobCache;
}

/**
 * Every `<id>.toml` directly in `dir` at `commit` without a sibling `<id>.result.json`, parsed,
 * sorted by id. Files with a bad name are parsed too, so they still get an (invalid) result.
 */
export async function readActions(repo: OpsRepoPort, commit: string, dir: string, opts: ReadOptions = {}): Promise<ParsedAction[]> {
  const skip = opts.skip ?? (() => false);
  const files = await listDirectChildren(repo, commit, dir);
  const names = new Set(files.map((f) => f.name));
  const pending = files
    .filter((f) => f.name.endsWith(ACTION_EXT))
    .map((f) => ({ ...f, id: f.name.slice(0, -ACTION_EXT.length) }))
    .filter((f) => !names.has(f.id + RESULT_EXT) && !skip(f.id))
    .sort((a, b) => compare(a.id, b.id));
  const parsed: ParsedAction[] = [];
  const seen: BlobCache = new Map();
  // one at a time: each read may be a git process, and a pass can see many pending files
  for (const f of pending) {
    const content = opts.cache?.get(f.sha) ?? (await repo.readFile(commit, f.path));
    if (content === undefined) throw new GitError(`${f.path} is listed at ${commit} but cannot be read`);
    seen.set(f.sha, content);
    parsed.push(parseAction(content, { path: f.path, id: f.id, sha: f.sha }));
  }
  // only what is still pending stays cached: the cache never outgrows the queue
  opts.cache?.clear();
  for (const [sha, content] of seen) opts.cache?.set(sha, content);
  return parsed;
}

/** Names of the formulas the ops repo offers at `commit`: `formulas/<name>.sh`. */
export async function readFormulas(repo: OpsRepoPort, commit: string): Promise<Set<string>> {
  const files = await listDirectChildren(repo, commit, FORMULAS_DIR);
  return new Set(files.filter((f) => f.name.endsWith(FORMULA_EXT)).map((f) => f.name.slice(0, -FORMULA_EXT.length)));
}

/** listFiles is recursive; files in subfolders are not part of the contract. */
async function listDirectChildren(repo: OpsRepoPort, commit: string, dir: string) {
  const clean = dir.replace(/\/+$/, "");
  const prefix = `${clean}/`;
  const files = await repo.listFiles(commit, clean);
  return files
    .filter((f) => f.path.startsWith(prefix) && !f.path.slice(prefix.length).includes("/"))
    .map((f) => ({ ...f, name: f.path.slice(prefix.length) }));
}

/** Code-unit order: the same on every machine, whatever its locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
