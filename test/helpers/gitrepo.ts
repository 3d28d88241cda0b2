// A real bare ops repo (branch main) in a temp dir, seeded from a map of files, plus an
// "another writer" clone that can push more commits to it.

import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { runGit, tryGit } from "../../dispatcher/opsrepo/exec.js";

export interface OpsRemote {
  /** path of the bare repo; usable as a git remote */
  remote: string;
  /** temp dir holding the bare repo and the other writer's clone */
  dir: string;
  cleanup(): Promise<void>;
  /**
   * commits and pushes `files` as another writer (null deletes a path); returns the new tip.
   * With `signingKey` (an ssh private key file) the commit is SSH-signed; `trailers` are added.
   */
  commit(files: Record<string, string | Buffer | null>, message?: string, opts?: CommitOptions): Promise<string>;
  /**
   * a merge commit pushed as another writer: first parent the tip, second parent `other`, its tree
   * the tip's with `files` applied (null deletes) — the tree a merge "resolved" by hand carries
   */
  merge(other: string, files: Record<string, string | Buffer | null>, message?: string, opts?: CommitOptions): Promise<string>;
  /** content of `path` at the tip of main, undefined when absent */
  read(path: string): Promise<string | undefined>;
  /** the result the dispatcher pushed for action `id` (vault/actions/<id>.result.json at the tip); throws when there is none */
  result(id: string): Promise<ActionResult>;
  /** the blob id of `path` at the tip of main */
  blob(path: string): Promise<string>;
  /** commit subjects on main, newest first */
  log(): Promise<string[]>;
}

const WRITER = ["-c", "user.name=Other Writer", "-c", "user.email=other@example.test", "-c", "commit.gpgsign=false"];

export interface CommitOptions {
  signingKey?: string;
  trailers?: string[];
}

/** Where remotes go: the dev stack's git daemon serves .dev/git to runners (read-only); else a temp dir. */
export function remotesDir(): string {
  const served = new URL("../../.dev/git", import.meta.url).pathname;
  return existsSync(served) ? served : tmpdir();
}

export async function createOpsRemote(files: Record<string, string | Buffer>): Promise<OpsRemote> {
  const dir = await mkdtemp(join(remotesDir(), "ops-remote-"));
  const remote = join(dir, "ops.git");
  const work = join(dir, "writer");
  await runGit(dir, ["init", "--quiet", "--bare", "--initial-branch=main", remote]);
  await runGit(dir, ["init", "--quiet", "--initial-branch=main", work]);
  await runGit(work, ["remote", "add", "origin", remote]);

  /** the writer's clone at the remote's tip with `more` applied and staged */
  async function stage(more: Record<string, string | Buffer | null>): Promise<void> {
    // the first commit has no tip to start from
    if ((await tryGit(work, ["fetch", "--quiet", "origin", "main"])).code === 0) {
      await runGit(work, ["reset", "--quiet", "--hard", "FETCH_HEAD"]);
    }
    for (const [path, content] of Object.entries(more)) {
      if (content === null) {
        await rm(join(work, path), { force: true });
        continue;
      }
      await mkdir(dirname(join(work, path)), { recursive: true });
      await writeFile(join(work, path), content);
    }
    await runGit(work, ["add", "--all", "--force"]);
  }

  const signWith = (opts: CommitOptions) => (opts.signingKey ? ["-c", "gpg.format=ssh", "-c", `user.signingkey=${opts.signingKey}`] : []);

  async function commit(more: Record<string, string | Buffer | null>, message = "another writer", opts: CommitOptions = {}): Promise<string> {
    await stage(more);
    const trailers = (opts.trailers ?? []).flatMap((t) => ["--trailer", t]);
    await runGit(work, [...WRITER, ...signWith(opts), "commit", "--quiet", "--allow-empty", ...(opts.signingKey ? ["-S"] : []), "-m", message, ...trailers]);
    await runGit(work, ["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
    return (await runGit(work, ["rev-parse", "HEAD"])).toString("utf8").trim();
  }

  async function merge(other: string, more: Record<string, string | Buffer | null>, message = "merge", opts: CommitOptions = {}): Promise<string> {
    await stage(more);
    const tree = (await runGit(work, ["write-tree"])).toString("utf8").trim();
    const made = (await runGit(work, [...WRITER, ...signWith(opts), "commit-tree", ...(opts.signingKey ? ["-S"] : []), "-p", "HEAD", "-p", other, "-m", message, tree])).toString("utf8").trim();
    await runGit(work, ["push", "--quiet", "origin", `${made}:refs/heads/main`]);
    return made;
  }

  async function read(path: string): Promise<string | undefined> {
    const run = await tryGit(remote, ["cat-file", "blob", `main:${path}`]);
    return run.code === 0 ? run.stdout.toString("utf8") : undefined;
  }

  await commit(files, "seed");
  return {
    remote,
    dir,
    commit,
    merge,
    cleanup: () => rm(dir, { recursive: true, force: true }),
    read,
    async result(id) {
      const text = await read(`vault/actions/${id}.result.json`);
      if (text === undefined) throw new Error(`no result for ${id} at the tip of ${remote}`);
      return JSON.parse(text) as ActionResult;
    },
    async blob(path) {
      return (await runGit(remote, ["rev-parse", `main:${path}`])).toString("utf8").trim();
    },
    async log() {
      const out = await runGit(remote, ["log", "--format=%s", "main"]);
      return out.toString("utf8").split("\n").filter((s) => s !== "");
    },
  };
}
