// A hostile ops repo built by git plumbing (hash-object, mktree, commit-tree, update-ref) in a bare
// repo, never checked out: names, tree shapes and sizes anyone with push access can create,
// most of which no working tree could hold.
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { buildEnv, tryGit } from "../../dispatcher/opsrepo/exec.js";
import { remotesDir } from "./gitrepo.js";
import { writeSignedHistory, type SshKey } from "./sshsig.js";

export type Mode = "100644" | "100755" | "120000" | "040000" | "160000";

/** One tree entry: its name as bytes (any but "/" and NUL) or text. */
export interface Entry {
  mode: Mode;
  name: string | Buffer;
  sha: string;
}

const TYPE: Record<Mode, string> = { "100644": "blob", "100755": "blob", "120000": "blob", "040000": "tree", "160000": "commit" };

function git(cwd: string, args: string[], input?: Buffer): string {
  return execFileSync("git", args, { cwd, env: buildEnv(), input, maxBuffer: 256 * 1024 * 1024 }).toString("utf8").trim();
}

export interface PlumbedRemote {
  /** the bare repo: a git remote, served read-only to runners by the stack's git daemon */
  remote: string;
  blob(content: string | Buffer): string;
  tree(entries: Entry[]): string;
  /** a commit of `vault/actions` and `formulas` as given (on main's tip when there is one), SSH-signed with `signingKey`; returns it */
  commit(actions: Entry[], formulas: Entry[], message?: string, signingKey?: string): string;
  /** `count` commits on main changing nothing, signed by `key`, each message ending in `trailer`; returns the tip */
  signedHistory(count: number, key: SshKey, trailer?: string): string;
  /** content of `path` at main, undefined when absent */
  read(path: string): Promise<string | undefined>;
  cleanup(): Promise<void>;
}

export async function createPlumbedRemote(): Promise<PlumbedRemote> {
  const dir = await mkdtemp(join(remotesDir(), "ops-hostile-"));
  const remote = join(dir, "ops.git");
  git(dir, ["init", "--quiet", "--bare", "--initial-branch=main", remote]);
  const blob = (content: string | Buffer) => git(remote, ["hash-object", "-w", "--stdin"], Buffer.from(content));
  const tree = (entries: Entry[]) => {
    const lines = entries.map((e) => Buffer.concat([Buffer.from(`${e.mode} ${TYPE[e.mode]} ${e.sha}\t`), Buffer.from(e.name), Buffer.from([0])]));
    // --missing: a gitlink names a commit this repo does not have, as a submodule does
    return git(remote, ["mktree", "-z", "--missing"], Buffer.concat(lines));
  };
  /** the entries of `dir` at `commit`, names as bytes */
  const entriesAt = (commit: string | undefined, dir: string): Entry[] => {
    if (!commit) return [];
    const out = execFileSync("git", ["ls-tree", "-z", `${commit}:${dir}`], { cwd: remote, env: buildEnv(), maxBuffer: 256 * 1024 * 1024 });
    const entries: Entry[] = [];
    for (let at = 0; at < out.length; ) {
      const end = out.indexOf(0, at);
      const line = out.subarray(at, end);
      const tab = line.indexOf(9);
      const [mode, , sha] = line.subarray(0, tab).toString("utf8").split(" ");
      entries.push({ mode: mode as Mode, sha: sha!, name: Buffer.from(line.subarray(tab + 1)) });
      at = end + 1;
    }
    return entries;
  };
  return {
    remote,
    blob,
    tree,
    commit(actions, formulas, message = "hostile", signingKey) {
      const parent = (() => {
        try {
          return git(remote, ["rev-parse", "--verify", "--quiet", "refs/heads/main"]);
        } catch {
          return undefined;
        }
      })();
      // on top of what main holds there (the dispatcher's results among it)
      const vault = tree([{ mode: "040000", name: "actions", sha: tree([...entriesAt(parent, "vault/actions"), ...actions]) }]);
      const root = tree([
        { mode: "040000", name: "formulas", sha: tree([...entriesAt(parent, "formulas"), ...formulas]) },
        { mode: "040000", name: "vault", sha: vault },
      ]);
      const ident = ["-c", "user.name=Pusher", "-c", "user.email=pusher@example.test"];
      const sign = signingKey ? ["-c", "gpg.format=ssh", "-c", `user.signingkey=${signingKey}`] : [];
      const commit = git(remote, [...ident, ...sign, "commit-tree", ...(signingKey ? ["-S"] : []), root, ...(parent ? ["-p", parent] : []), "-m", message]);
      git(remote, ["update-ref", "refs/heads/main", commit, ...(parent ? [parent] : [])]);
      return commit;
    },
    signedHistory(count, key, trailer) {
      const parent = git(remote, ["rev-parse", "--verify", "refs/heads/main"]);
      const tip = writeSignedHistory(remote, parent, git(remote, ["rev-parse", `${parent}^{tree}`]), count, key, trailer);
      git(remote, ["update-ref", "refs/heads/main", tip, parent]);
      return tip;
    },
    async read(path) {
      const run = await tryGit(remote, ["cat-file", "blob", `main:${path}`]);
      return run.code === 0 ? run.stdout.toString("utf8") : undefined;
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** `levels` levels of `fan` subtrees each over one blob: a few KB of trees, fan^levels paths. */
export function treeBomb(r: PlumbedRemote, levels = 9, fan = 10): string {
  let t = r.tree([{ mode: "100644", name: "leaf", sha: r.blob("boom\n") }]);
  for (let l = 0; l < levels; l++) t = r.tree(Array.from({ length: fan }, (_, i) => ({ mode: "040000" as const, name: `d${i}`, sha: t })));
  return t;
}
