import { describe, expect, it } from "vitest";
import { createActionsIndex, ignoredEntries, readActions, readFormulas, takeIgnoredChange, unwritableActions } from "../../../dispatcher/core/repo-read.js";
import type { FileChange, ListedFile, OpsRepoPort } from "../../../dispatcher/core/ports.js";
import { GitError } from "../../../dispatcher/errors.js";

const COMMIT = "c0ffee";

const valid = (id: string) => `id = "${id}"\nformula = "deploy"\ncontext = "x"\nsecrets = []\n`;

/** An ops repo at one commit, held in memory; the blob id is derived from the path. */
function fakeRepo(files: Record<string, string>): OpsRepoPort & { reads: string[] } {
  const reads: string[] = [];
  const at = (commit: string) => {
    if (commit !== COMMIT) throw new Error(`unknown commit ${commit}`);
    return new Map(Object.entries(files));
  };
  return {
    reads,
    sync: async () => COMMIT,
    // recursive, like git ls-tree -r
    listFiles: async (commit, dir) =>
      [...at(commit).entries()].filter(([p]) => p.startsWith(`${dir}/`)).map(([path, content]) => ({ path, sha: `sha:${path}`, size: Buffer.byteLength(content) })),
    diffFiles: async () => undefined,
    // no history in memory: no commit ever changed a path
    provenance: async (_commit, path) => ({ path, later: [] }),
    sameCodeAs: async (from, to) => from === to,
    readFile: async (commit, path) => {
      reads.push(path);
      const content = at(commit).get(path);
      return content === undefined ? undefined : Buffer.from(content);
    },
    writeFiles: async () => ({ commit: COMMIT, skipped: [] }),
  };
}

describe("readActions", () => {
  it("reads up to 16 files at once, and answers in id order whatever order the reads end in", async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `a${String(i).padStart(2, "0")}`);
    const repo = fakeRepo(Object.fromEntries(ids.map((id) => [`vault/actions/${id}.toml`, valid(id)])));
    const readFile = repo.readFile;
    let open = 0;
    let most = 0;
    repo.readFile = async (commit, path) => {
      most = Math.max(most, ++open);
      // later ids answer first
      await new Promise((r) => setTimeout(r, 40 - Number(path.slice(-7, -5))));
      open--;
      return readFile(commit, path);
    };
    const parsed = await readActions(repo, COMMIT, "vault/actions");
    expect(most).toBe(16);
    expect(parsed.map((p) => p.file.id)).toEqual(ids);
  });

  it("parses pending actions only, sorted by id, with their blob ids", async () => {
    const repo = fakeRepo({
      "vault/actions/zeta.toml": valid("zeta"),
      "vault/actions/a-b.toml": valid("a-b"),
      "vault/actions/a.toml": valid("a"),
      "vault/actions/done.toml": valid("done"),
      "vault/actions/done.result.json": "{}",
      "vault/actions/done.log": "log",
      "vault/actions/orphan.result.json": "{}",
      "vault/actions/README.md": "# actions",
      "vault/actions/archive/old.toml": valid("old"),
      "vault/other.toml": valid("other"),
    });
    const parsed = await readActions(repo, COMMIT, "vault/actions");
    expect(parsed.map((p) => [p.ok, p.file])).toEqual([
      [true, { path: "vault/actions/a.toml", id: "a", sha: "sha:vault/actions/a.toml" }],
      [true, { path: "vault/actions/a-b.toml", id: "a-b", sha: "sha:vault/actions/a-b.toml" }],
      [true, { path: "vault/actions/zeta.toml", id: "zeta", sha: "sha:vault/actions/zeta.toml" }],
    ]);
    expect(repo.reads.sort()).toEqual(["vault/actions/a-b.toml", "vault/actions/a.toml", "vault/actions/zeta.toml"]);
  });

  it("refuses an oversize file from its listed size without reading it, and reads the next one", async () => {
    const repo = fakeRepo({ "vault/actions/huge.toml": "x".repeat(70_000), "vault/actions/ok.toml": valid("ok") });
    const parsed = await readActions(repo, COMMIT, "vault/actions");
    expect(parsed.map((p) => (p.ok ? "ok" : p.problems))).toEqual([["file is 70000 bytes; at most 65536 (64 KiB) allowed"], "ok"]);
    expect(repo.reads).toEqual(["vault/actions/ok.toml"]);
  });

  it("accepts a trailing slash on the directory", async () => {
    const repo = fakeRepo({ "vault/actions/a.toml": valid("a") });
    expect((await readActions(repo, COMMIT, "vault/actions/")).map((p) => p.file.id)).toEqual(["a"]);
  });

  it("returns invalid files and files with a bad name as problems", async () => {
    const repo = fakeRepo({
      "vault/actions/Bad.toml": valid("Bad"),
      "vault/actions/broken.toml": "id = ",
    });
    expect(await readActions(repo, COMMIT, "vault/actions")).toEqual([
      {
        ok: false,
        file: { path: "vault/actions/Bad.toml", id: "Bad", sha: "sha:vault/actions/Bad.toml" },
        problems: [
          'file name "Bad.toml" does not give a valid action id: the part before .toml must be 1-64 characters of a-z, 0-9, ".", "_", "-" starting with a letter or digit, like "release.toml"',
          'id "Bad" must be 1-64 characters of a-z, 0-9, ".", "_", "-" starting with a letter or digit, like "release"',
        ],
      },
      {
        ok: false,
        file: { path: "vault/actions/broken.toml", id: "broken", sha: "sha:vault/actions/broken.toml" },
        problems: [
          "invalid TOML at line 1, column 7: Key without value",
        ],
      },
    ]);
  });

  it("keeps an action with only a log pending: the result marks it done", async () => {
    const repo = fakeRepo({ "vault/actions/a.toml": valid("a"), "vault/actions/a.log": "partial" });
    expect((await readActions(repo, COMMIT, "vault/actions")).map((p) => p.file.id)).toEqual(["a"]);
  });

  it("gives a listed file that cannot be read a problem of its own; the others are read (issue 31: one input never fails the pass)", async () => {
    const repo = fakeRepo({ "vault/actions/a.toml": valid("a"), "vault/actions/b.toml": valid("b") });
    const readFile = repo.readFile;
    repo.readFile = async (commit, path) => (path.endsWith("/a.toml") ? undefined : readFile(commit, path));
    const parsed = await readActions(repo, COMMIT, "vault/actions");
    expect(parsed).toEqual([
      { ok: false, file: { path: "vault/actions/a.toml", id: "a", sha: "sha:vault/actions/a.toml" }, problems: [`is listed at ${COMMIT} but cannot be read`] },
      { ok: true, file: { path: "vault/actions/b.toml", id: "b", sha: "sha:vault/actions/b.toml" }, action: expect.objectContaining({ id: "b" }) },
    ]);
  });

  it("a git failure while reading still fails the pass (an outage is waited out, never an answer)", async () => {
    const repo = fakeRepo({ "vault/actions/a.toml": valid("a") });
    repo.readFile = async () => {
      throw new GitError("git cat-file --batch-command exited (128)");
    };
    await expect(readActions(repo, COMMIT, "vault/actions")).rejects.toThrow(GitError);
  });

  it("returns nothing for an empty or absent directory", async () => {
    expect(await readActions(fakeRepo({}), COMMIT, "vault/actions")).toEqual([]);
  });
});

describe("readFormulas", () => {
  it("lists formulas/*.sh by name, ignoring other files and subfolders", async () => {
    const repo = fakeRepo({
      "formulas/deploy.sh": "#!/bin/sh",
      "formulas/backup.sh": "#!/bin/sh",
      "formulas/README.md": "",
      "formulas/lib/common.sh": "",
      "vault/actions/x.sh": "",
    });
    expect([...(await readFormulas(repo, COMMIT))].sort()).toEqual(["backup", "deploy"]);
  });
});

describe("readActions with an index", () => {
  it("reads a pending file once across passes and forgets it when it is done", async () => {
    const files: Record<string, string> = { "vault/actions/a.toml": valid("a"), "vault/actions/b.toml": valid("b") };
    const repo = fakeRepo(files);
    const index = createActionsIndex();
    await readActions(repo, COMMIT, "vault/actions", index);
    const second = await readActions(repo, COMMIT, "vault/actions", index);
    expect(second.map((p) => p.file.id)).toEqual(["a", "b"]);
    expect(repo.reads.sort()).toEqual(["vault/actions/a.toml", "vault/actions/b.toml"]);
    files["vault/actions/a.result.json"] = "{}";
    // the same commit is not listed again: a new one is (fakeRepo's diff is unknown: a full listing)
    index.commit = "before";
    await readActions(repo, COMMIT, "vault/actions", index);
    expect([...index.parsed.keys()]).toEqual(["vault/actions/b.toml\0sha:vault/actions/b.toml"]);
  });

  it("answers again at the same commit without asking the repo, with the same array", async () => {
    const base = fakeRepo({ "vault/actions/a.toml": valid("a") });
    const asked: string[] = [];
    const repo: OpsRepoPort = {
      ...base,
      listFiles: async (commit, dir) => (asked.push(`list ${commit}`), base.listFiles(commit, dir)),
      diffFiles: async (from, to) => (asked.push(`diff ${from}..${to}`), []),
    };
    const index = createActionsIndex();
    const first = await readActions(repo, COMMIT, "vault/actions", index);
    expect(await readActions(repo, COMMIT, "vault/actions/", index)).toBe(first);
    expect(asked).toEqual([`list ${COMMIT}`]);
    const next = await readActions(repo, "next", "vault/actions", index);
    expect(next).not.toBe(first);
    expect(next.map((p) => p.file.id)).toEqual(["a"]);
    expect(asked).toEqual([`list ${COMMIT}`, `diff ${COMMIT}..next`]);
  });

  it("applies a diff to the last pass's directory instead of listing it: results, deletions, new and changed files, subfolders", async () => {
    const files: Record<string, string> = {
      "vault/actions/a.toml": valid("a"),
      "vault/actions/b.toml": valid("b"),
      "vault/actions/c.toml": valid("c"),
      "vault/actions/gone.toml": valid("gone"),
      "vault/actions/redo.toml": valid("redo"),
      "vault/actions/redo.result.json": "{}",
    };
    const diffs: Record<string, FileChange[]> = {
      [`${COMMIT}..next`]: [
        { path: "vault/actions/a.result.json", sha: "r1", size: 2 },
        { path: "vault/actions/gone.toml", deleted: true },
        { path: "vault/actions/redo.result.json", deleted: true },
        { path: "vault/actions/b.toml", sha: "b2", size: 60 },
        { path: "vault/actions/new.toml", sha: "n1", size: 60 },
        { path: "vault/actions/sub/deep.toml", sha: "d1", size: 60 },
      ],
    };
    const listed: string[] = [];
    const base = fakeRepo(files);
    const repo: OpsRepoPort = {
      ...base,
      listFiles: async (commit, dir) => (listed.push(commit), base.listFiles(commit, dir)),
      diffFiles: async (from, to) => diffs[`${from}..${to}`],
      readFile: async (_commit, path) => Buffer.from(valid(path.slice("vault/actions/".length, -".toml".length))),
    };
    const index = createActionsIndex();
    expect((await readActions(repo, COMMIT, "vault/actions", index)).map((p) => p.file.id)).toEqual(["a", "b", "c", "gone"]);
    const next = await readActions(repo, "next", "vault/actions", index);
    expect(next.map((p) => [p.file.id, p.file.sha])).toEqual([
      ["b", "b2"],
      ["c", "sha:vault/actions/c.toml"],
      ["new", "n1"],
      ["redo", "sha:vault/actions/redo.toml"],
    ]);
    expect(listed).toEqual([COMMIT]);
    // an unknown base (diffFiles says undefined) lists afresh
    await readActions(repo, "elsewhere", "vault/actions", index).catch(() => undefined);
    expect(listed).toEqual([COMMIT, "elsewhere"]);
  });
});

describe("readActions and what is not part of the contract (issue 31)", () => {
  /** a one-level listing as git.ts gives it, entries of every kind */
  function shapedRepo(entries: ListedFile[], diffs: Record<string, FileChange[]> = {}): OpsRepoPort & { reads: string[] } {
    const base = fakeRepo({});
    return {
      ...base,
      listFiles: async () => entries,
      diffFiles: async (from, to) => diffs[`${from}..${to}`],
      readFile: async (_commit, path) => (base.reads.push(path), Buffer.from(valid(path.slice("vault/actions/".length, -".toml".length)))),
    };
  }

  it("gives a directory, a submodule or a symlink at <id>.toml an invalid result without reading it, ignores what cannot be named safely, reports it once", async () => {
    const repo = shapedRepo([
      { path: "vault/actions/ok.toml", sha: "s1", size: 60 },
      { path: "vault/actions/d.toml", sha: "t1", kind: "directory" },
      { path: "vault/actions/g.toml", sha: "c1", kind: "submodule" },
      { path: "vault/actions/l.toml", sha: "b1", size: 9, kind: "symlink" },
      { path: "vault/actions/bomb", sha: "t2", kind: "directory" },
      { path: "vault/actions/a\nb.toml", sha: "s2", size: 60 },
      { path: "vault/actions/x\ufffd.toml", sha: "s3", size: 60, notUtf8: true },
      { path: "vault/actions/README.md", sha: "s4", size: 3 },
    ]);
    const index = createActionsIndex();
    const parsed = await readActions(repo, COMMIT, "vault/actions", index);
    expect(parsed.map((p) => (p.ok ? [p.file.id, "ok"] : [p.file.id, ...p.problems]))).toEqual([
      ["d", "is a directory, not a file"],
      ["g", "is a submodule (gitlink), not a file"],
      ["l", "is a symlink, not a file"],
      ["ok", "ok"],
    ]);
    expect(repo.reads).toEqual(["vault/actions/ok.toml"]);
    const ignored = {
      entries: [
        { path: "vault/actions/README.md", code: "not_in_contract", reason: "not <id>.toml, <id>.result.json or <id>.log" },
        { path: "vault/actions/a\nb.toml", code: "control_character", reason: "its name has a control character (newline, tab, …)" },
        { path: "vault/actions/bomb", code: "not_a_file", reason: "a directory, not a file" },
        { path: "vault/actions/x\ufffd.toml", code: "not_utf8", reason: "its name is not valid UTF-8" },
      ],
      truncated: false,
    };
    expect(ignoredEntries(index)).toEqual(ignored);
    expect(takeIgnoredChange(index)).toEqual(ignored);
    // told once: the same commit again, and a later one that changed nothing of it, say nothing
    await readActions(repo, COMMIT, "vault/actions", index);
    expect(takeIgnoredChange(index)).toBeUndefined();
  });

  it("follows ignored entries through diffs, and says when the listing was cut at its cap", async () => {
    const listing = Object.assign([{ path: "vault/actions/bomb", sha: "t1", kind: "directory" as const }], { truncated: true });
    const repo = shapedRepo(listing, {
      [`${COMMIT}..next`]: [{ path: "vault/actions/bomb", deleted: true }, { path: "vault/actions/new.toml", sha: "n1", size: 60 }],
    });
    const index = createActionsIndex();
    await readActions(repo, COMMIT, "vault/actions", index);
    expect(takeIgnoredChange(index)).toEqual({ entries: [{ path: "vault/actions/bomb", code: "not_a_file", reason: "a directory, not a file" }], truncated: true });
    expect((await readActions(repo, "next", "vault/actions", index)).map((p) => p.file.id)).toEqual(["new"]);
    expect(takeIgnoredChange(index)).toEqual({ entries: [], truncated: true });
  });

  it("holds back an action whose result's path is a directory, symlink or submodule (no result could land), and lets it go once that entry is gone", async () => {
    const repo = shapedRepo(
      [
        { path: "vault/actions/d.toml", sha: "s1", size: 60 },
        { path: "vault/actions/d.result.json", sha: "t1", kind: "directory" },
        { path: "vault/actions/l.toml", sha: "s2", size: 60 },
        { path: "vault/actions/l.result.json", sha: "b1", size: 9, kind: "symlink" },
        { path: "vault/actions/orphan.result.json", sha: "t2", kind: "directory" },
        { path: "vault/actions/ok.toml", sha: "s3", size: 60 },
      ],
      { [`${COMMIT}..next`]: [{ path: "vault/actions/d.result.json", deleted: true }] },
    );
    const index = createActionsIndex();
    expect((await readActions(repo, COMMIT, "vault/actions", index)).map((p) => p.file.id)).toEqual(["ok"]);
    expect(unwritableActions(index)).toEqual([
      ["d", 'its result\'s path "vault/actions/d.result.json" is a directory, not a file: no result can be written there (none is ever written over), so it is not dispatched; move that entry away'],
      ["l", 'its result\'s path "vault/actions/l.result.json" is a symlink, not a file: no result can be written there (none is ever written over), so it is not dispatched; move that entry away'],
    ]);
    expect(ignoredEntries(index).entries.map((e) => e.path)).toEqual(["vault/actions/d.result.json", "vault/actions/l.result.json", "vault/actions/orphan.result.json"]);
    expect((await readActions(repo, "next", "vault/actions", index)).map((p) => p.file.id)).toEqual(["d", "ok"]);
    expect(unwritableActions(index).map(([id]) => id)).toEqual(["l"]);
  });

  it("takes only files and links to them as formulas: a subdirectory of formulas/ (helpers, or a tree bomb) is never walked", async () => {
    const repo = shapedRepo([]);
    repo.listFiles = async () => [
      { path: "formulas/deploy.sh", sha: "s1", size: 9 },
      { path: "formulas/linked.sh", sha: "s2", size: 9, kind: "symlink" },
      { path: "formulas/lib.sh", sha: "t1", kind: "directory" },
      { path: "formulas/sub.sh", sha: "c1", kind: "submodule" },
    ];
    expect([...(await readFormulas(repo, COMMIT))].sort()).toEqual(["deploy", "linked"]);
  });
});
