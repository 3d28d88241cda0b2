import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { FileChange, OpsRepoPort } from "../../../dispatcher/core/ports.js";
import { GitError } from "../../../dispatcher/errors.js";
import { createLogger } from "../../../dispatcher/log.js";
import { runGit } from "../../../dispatcher/opsrepo/exec.js";
import { createGitOpsRepo, type GitOpsRepoOptions } from "../../../dispatcher/opsrepo/git.js";
import { createOpsRemote, type OpsRemote } from "../../helpers/gitrepo.js";
import { createPlumbedRemote, treeBomb } from "../../helpers/plumbing.js";

const AUTHOR = { name: "Ops Dispatcher", email: "dispatcher@example.test" };

let ops: OpsRemote;
let scratch: string;
let logLines: Record<string, unknown>[];
let sleeps: number[];

beforeEach(async () => {
  ops = await createOpsRemote({
    "vault/actions/deploy.toml": 'id = "deploy"\n',
    "vault/actions/backup.toml": 'id = "backup"\n',
    "vault/actions-old/stale.toml": "old\n",
    "formulas/deploy.sh": "#!/bin/sh\n",
  });
  scratch = await mkdtemp(join(tmpdir(), "ops-clone-"));
  logLines = [];
  sleeps = [];
});

afterEach(async () => {
  await ops.cleanup();
  await rm(scratch, { recursive: true, force: true });
});

function openRepo(overrides: Partial<GitOpsRepoOptions> = {}): OpsRepoPort {
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(JSON.parse(chunk.toString("utf8")) as Record<string, unknown>);
      done();
    },
  });
  return createGitOpsRepo({
    remote: ops.remote,
    branch: "main",
    workdir: join(scratch, "clone"),
    author: AUTHOR,
    log: createLogger({ destination, level: "debug" }),
    sleep: async (ms) => void sleeps.push(ms),
    ...overrides,
  });
}

/** the id git gives a blob of `text` */
/** The git commands (the first word after "git") started while `run` runs, from GIT_TRACE. */
async function gitCommandsDuring(run: () => Promise<void>): Promise<string[]> {
  const trace = join(scratch, `trace-${Date.now()}.log`);
  process.env.GIT_TRACE = trace;
  try {
    await run();
  } finally {
    delete process.env.GIT_TRACE;
  }
  const text = existsSync(trace) ? await readFile(trace, "utf8") : "";
  return [...text.matchAll(/trace: built-in: git (?:-c \S+ )*([a-z-]+)/g)].map((m) => m[1]!);
}

function gitSha(text: string): string {
  return createHash("sha1").update(`blob ${Buffer.byteLength(text)}\0${text}`).digest("hex");
}

function file(path: string, content: string) {
  return { path, content: Buffer.from(content) };
}

async function remoteTip(): Promise<string> {
  return (await runGit(ops.remote, ["rev-parse", "main"])).toString("utf8").trim();
}

/** Installs a hook in the private clone that pushes a commit as another writer (once, or every time). */
async function installRivalHook(hook: "pre-push", mode: "once" | "always", path = "notes.txt"): Promise<void> {
  const script = `#!/bin/sh
unset $(git rev-parse --local-env-vars)
${mode === "once" ? `[ -e "${ops.dir}/rival-done" ] && exit 0; touch "${ops.dir}/rival-done"` : ""}
rival="${ops.dir}/rival-$$"
git clone -q "${ops.remote}" "$rival" && cd "$rival" &&
  mkdir -p "$(dirname "${path}")" && echo "$$" >> "${path}" && git add "${path}" &&
  git -c user.name=Rival -c user.email=rival@example.test commit -qm "other writer" &&
  git push -q origin HEAD:refs/heads/main
`;
  const hookPath = join(scratch, "clone", ".git", "hooks", hook);
  await writeFile(hookPath, script);
  await chmod(hookPath, 0o755);
}

describe("sync", () => {
  it("clones on first use and returns the remote tip, then follows new commits", async () => {
    const repo = openRepo();
    expect(await repo.sync()).toBe(await remoteTip());
    const next = await ops.commit({ "vault/actions/new.toml": "x" });
    expect(await repo.sync()).toBe(next);
  });

  it("asks whether the remote moved through the clone's origin, so its settings apply as they do to a fetch", async () => {
    const repo = openRepo();
    const tip = await repo.sync();
    const calls = join(scratch, "upload-pack.calls");
    const wrapper = join(scratch, "upload-pack.sh");
    await writeFile(wrapper, `#!/bin/sh\necho "$@" >> "${calls}"\nexec git upload-pack "$@"\n`);
    await chmod(wrapper, 0o755);
    await runGit(join(scratch, "clone"), ["config", "remote.origin.uploadpack", wrapper]);
    // the remote has not moved: one ls-remote, whose remote side is the wrapper's `git upload-pack`
    expect(await gitCommandsDuring(async () => void expect(await repo.sync()).toBe(tip))).toEqual(["ls-remote", "upload-pack"]);
    expect(await readFile(calls, "utf8")).toBe(`${ops.remote}\n`);
  });

  it("waits for another process holding the clone's ref lock, then fetches", async () => {
    await openRepo().sync();
    const lock = join(scratch, "clone", ".git", "refs", "remotes", "origin", "main.lock");
    await writeFile(lock, "");
    const next = await ops.commit({ "vault/actions/new.toml": "x" });
    // the other process finishes while we wait
    const repo = openRepo({ shared: true, sleep: async (ms) => (sleeps.push(ms), rm(lock)) });
    expect(await repo.sync()).toBe(next);
    expect(sleeps).toEqual([100]);
  });

  it("waits for another process holding the shared clone's config lock, then adopts the clone", async () => {
    await openRepo().sync();
    const lock = join(scratch, "clone", ".git", "config.lock");
    await writeFile(lock, "");
    // the other process (logs -f beside status) finishes its setting while we wait
    const repo = openRepo({ shared: true, sleep: async (ms) => (sleeps.push(ms), rm(lock)) });
    expect(await repo.sync()).toBe(await remoteTip());
    expect(sleeps).toEqual([100]);
    expect((await runGit(join(scratch, "clone"), ["remote", "get-url", "origin"])).toString().trim()).toBe(ops.remote);
  });

  it("removes a stale lock left in its own clone by a killed predecessor", async () => {
    await openRepo().sync();
    await writeFile(join(scratch, "clone", ".git", "index.lock"), "");
    await writeFile(join(scratch, "clone", ".git", "refs", "remotes", "origin", "main.lock"), "");
    const next = await ops.commit({ "vault/actions/new.toml": "x" });
    const repo = openRepo();
    expect(await repo.sync()).toBe(next);
    expect(sleeps).toEqual([]);
    await repo.writeFiles([file("vault/actions/new.result.json", "{}")], "vault: result for new");
    expect(await ops.read("vault/actions/new.result.json")).toBe("{}");
  });

  it("costs one ls-remote and no fetch while the remote's tip is unchanged", async () => {
    const repo = openRepo();
    const tip = await repo.sync();
    const fetchHead = join(scratch, "clone", ".git", "FETCH_HEAD");
    const fetched = (await stat(fetchHead)).mtimeMs;
    await new Promise((r) => setTimeout(r, 20));
    expect(await repo.sync()).toBe(tip);
    expect((await stat(fetchHead)).mtimeMs).toBe(fetched);
    const next = await ops.commit({ "vault/actions/new.toml": "x" });
    expect(await repo.sync()).toBe(next);
    expect((await stat(fetchHead)).mtimeMs).toBeGreaterThan(fetched);
  });

  it("knows its own pushed commit as the tip: no fetch after a result commit", async () => {
    const repo = openRepo();
    await repo.sync();
    const { commit } = await repo.writeFiles([file("vault/actions/deploy.result.json", "ours")], "vault: result for deploy");
    const fetchHead = join(scratch, "clone", ".git", "FETCH_HEAD");
    const fetched = (await stat(fetchHead)).mtimeMs;
    expect(await repo.sync()).toBe(commit);
    expect((await stat(fetchHead)).mtimeMs).toBe(fetched);
  });

  it("reuses a tip confirmed within maxAgeMs without asking the remote, and asks without it", async () => {
    const repo = openRepo();
    const first = await repo.sync();
    const next = await ops.commit({ "vault/actions/new.toml": "x" });
    expect(await repo.sync({ maxAgeMs: 60_000 })).toBe(first);
    expect(await repo.sync()).toBe(next);
    expect(await repo.sync({ maxAgeMs: 0 })).toBe(next);
  });

  it("takes a push webhook's tip only as a hint: its own push needs no git, another's is fetched without ls-remote", async () => {
    const repo = openRepo();
    await repo.sync();
    const { commit } = await repo.writeFiles([file("vault/actions/deploy.result.json", "ours")], "vault: result for deploy");
    const own = await gitCommandsDuring(async () => expect(await repo.sync({ pushed: commit })).toBe(commit));
    expect(own).toEqual([]);
    const next = await ops.commit({ "vault/actions/new.toml": "x" });
    const theirs = await gitCommandsDuring(async () => expect(await repo.sync({ pushed: next })).toBe(next));
    expect(theirs.filter((c) => c === "ls-remote")).toEqual([]);
    expect(theirs).toContain("fetch");
    // a tip the remote does not have is never taken: the fetched ref is the tip
    expect(await repo.sync({ pushed: "f".repeat(40) })).toBe(next);
  });

  it("has a fetch pack the clone's loose objects long before git's default of 6,700", async () => {
    // git estimates the loose objects from those under objects/17/: two there stand for 512
    const blobs = Array.from({ length: 5000 }, (_, i) => `loose ${i}\n`).filter((b) => gitSha(b).startsWith("17")).slice(0, 3);
    await ops.commit(Object.fromEntries(blobs.map((b, i) => [`vault/actions/l${i}.toml`, b])));
    // a clone of a local path takes the remote's loose objects as they are (hard links)
    expect(await readdir(join(ops.remote, "objects", "17"))).toEqual(expect.arrayContaining(blobs.map((b) => gitSha(b).slice(2))));
    const repo = openRepo();
    // not looked at in the clone here: its first fetch may already have started packing them
    await repo.sync();
    const loose = join(scratch, "clone", ".git", "objects", "17");
    await ops.commit({ "vault/actions/new.toml": "x" });
    await repo.sync();
    // the maintenance runs in the background
    const busy = async () => (await readdir(loose).catch(() => [])).length > 0 || existsSync(join(scratch, "clone", ".git", "gc.pid"));
    for (let i = 0; i < 100 && (await busy()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await readdir(loose).catch(() => [])).toEqual([]);
    expect((await repo.readFile(await remoteTip(), "vault/actions/l0.toml"))?.toString()).toBe(blobs[0]);
  });

  it("adopts an existing clone", async () => {
    await openRepo().sync();
    const next = await ops.commit({ "vault/actions/new.toml": "x" });
    expect(await openRepo().sync()).toBe(next);
  });
});

describe("reading", () => {
  it("lists the files under a directory with their blob ids and sizes", async () => {
    const repo = openRepo();
    const tip = await repo.sync();
    const files = await repo.listFiles(tip, "vault/actions");
    const blobOf = async (p: string) => (await runGit(ops.remote, ["rev-parse", `main:${p}`])).toString().trim();
    const sizeOf = async (p: string) => Number((await runGit(ops.remote, ["cat-file", "-s", `main:${p}`])).toString().trim());
    expect(files).toEqual([
      { path: "vault/actions/backup.toml", sha: await blobOf("vault/actions/backup.toml"), size: await sizeOf("vault/actions/backup.toml") },
      { path: "vault/actions/deploy.toml", sha: await blobOf("vault/actions/deploy.toml"), size: await sizeOf("vault/actions/deploy.toml") },
    ]);
  });

  it("lists a later commit as a fresh clone lists it, and back", async () => {
    const repo = openRepo();
    const first = await repo.sync();
    await repo.listFiles(first, "vault/actions");
    await ops.commit({ "vault/actions/new.toml": "added", "vault/actions/deploy.toml": "changed, longer than before", "vault/actions/backup.toml": null, "vault/actions/sub/deep.toml": "nested", "notes.txt": "outside" });
    const next = await repo.sync();
    const incremental = await repo.listFiles(next, "vault/actions");
    const other = openRepo({ workdir: join(scratch, "clone-fresh") });
    await other.sync();
    const fresh = await other.listFiles(next, "vault/actions");
    const byPath = <T extends { path: string }>(xs: readonly T[]) => [...xs].sort((a, b) => a.path.localeCompare(b.path));
    expect(byPath(incremental)).toEqual(byPath(fresh));
    // one level (issue 31): a subdirectory is an entry of its own kind, never walked
    expect(byPath(incremental).map((f) => [f.path, f.size, f.kind])).toEqual([
      ["vault/actions/deploy.toml", 27, undefined],
      ["vault/actions/new.toml", 5, undefined],
      ["vault/actions/sub", undefined, "directory"],
    ]);
    expect(byPath(await repo.listFiles(first, "vault/actions")).map((f) => f.path)).toEqual(["vault/actions/backup.toml", "vault/actions/deploy.toml"]);
  });

  it("lists a directory whose tree is unchanged at a later commit without a git process", async () => {
    const repo = openRepo();
    const first = await repo.sync();
    const before = await repo.listFiles(first, "formulas");
    const next = await ops.commit({ "vault/actions/new.toml": "x" });
    await repo.sync();
    const commands = await gitCommandsDuring(async () => expect(await repo.listFiles(next, "formulas")).toEqual(before));
    expect(commands).toEqual([]);
    // a change in it is listed again
    const changed = await ops.commit({ "formulas/new.sh": "#!/bin/sh\n" });
    await repo.sync();
    expect((await repo.listFiles(changed, "formulas")).map((f) => f.path)).toEqual(["formulas/deploy.sh", "formulas/new.sh"]);
  });

  it("keeps no listing past 1,000 files: their reader keeps its own index", async () => {
    const many = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`vault/actions/a${i}.toml`, `id = "a${i}"\n`]));
    const tip = await ops.commit(many);
    const repo = openRepo();
    await repo.sync();
    expect(await repo.listFiles(tip, "vault/actions")).toHaveLength(1003);
    expect(await gitCommandsDuring(async () => void expect(await repo.listFiles(tip, "vault/actions")).toHaveLength(1003))).toEqual(["ls-tree"]);
    expect(await gitCommandsDuring(async () => void (await repo.listFiles(tip, "formulas")))).toEqual(["ls-tree"]);
    expect(await gitCommandsDuring(async () => void (await repo.listFiles(tip, "formulas")))).toEqual([]);
  });

  it("lists what anyone can push one level deep, every kind as data: a tree bomb, a submodule, a symlink, names with a newline or bytes that are not UTF-8 (issue 31)", async () => {
    const r = await createPlumbedRemote();
    try {
      const blob = r.blob("x\n");
      const bomb = treeBomb(r);
      const tip = r.commit(
        [
          { mode: "100644", name: "ok.toml", sha: blob },
          { mode: "040000", name: "bomb", sha: bomb },
          { mode: "160000", name: "sub", sha: "1".repeat(40) },
          { mode: "120000", name: "ln.toml", sha: blob },
          { mode: "100644", name: "a\nb.toml", sha: blob },
          { mode: "100644", name: Buffer.from([0x62, 0xff, 0x2e, 0x74, 0x6f, 0x6d, 0x6c]), sha: blob },
        ],
        [{ mode: "040000", name: "bomb", sha: bomb }],
      );
      const repo = openRepo({ remote: r.remote });
      await repo.sync();
      const started = Date.now();
      const listed = await repo.listFiles(tip, "vault/actions");
      expect([...listed].sort((a, b) => (a.path < b.path ? -1 : 1))).toEqual([
        { path: "vault/actions/a\nb.toml", sha: blob, size: 2 },
        { path: "vault/actions/bomb", sha: bomb, kind: "directory" },
        { path: "vault/actions/b\ufffd.toml", sha: blob, size: 2, notUtf8: true },
        { path: "vault/actions/ln.toml", sha: blob, size: 2, kind: "symlink" },
        { path: "vault/actions/ok.toml", sha: blob, size: 2 },
        { path: "vault/actions/sub", sha: "1".repeat(40), kind: "submodule" },
      ]);
      expect(listed.truncated).toBeUndefined();
      expect(await repo.listFiles(tip, "formulas")).toEqual([{ path: "formulas/bomb", sha: bomb, kind: "directory" }]);
      // a diff across the bomb's arrival is one level too
      const next = r.commit([{ mode: "040000", name: "bomb2", sha: bomb }], []);
      await repo.sync();
      expect(await repo.diffFiles(tip, next, "vault/actions")).toEqual([{ path: "vault/actions/bomb2", sha: bomb, kind: "directory" }]);
      // 10^9 paths below: never walked
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await r.cleanup();
    }
  });

  it("reads at most the cap of a directory's entries, and says the listing is truncated; a larger diff asks for a listing", async () => {
    const many = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`vault/actions/m${i}.toml`, `id = "m${i}"\n`]));
    const first = await ops.commit({});
    const tip = await ops.commit(many);
    const repo = openRepo({ listingCap: 10 });
    await repo.sync();
    const listed = await repo.listFiles(tip, "vault/actions");
    expect(listed).toHaveLength(10);
    expect(listed.truncated).toBe(true);
    expect(await repo.diffFiles(first, tip, "vault/actions")).toBeUndefined();
    expect(await openRepo({ listingCap: 40, workdir: join(scratch, "other") }).listFiles(tip, "vault/actions").catch(() => "not synced")).toBe("not synced");
  });

  it("reads a file, and tells an absent path from a bad commit", async () => {
    const repo = openRepo();
    const tip = await repo.sync();
    expect((await repo.readFile(tip, "vault/actions/deploy.toml"))?.toString()).toBe('id = "deploy"\n');
    expect(await repo.readFile(tip, "vault/actions/missing.toml")).toBeUndefined();
    expect(await repo.readFile(tip, "vault/actions")).toBeUndefined();
    await expect(repo.readFile("0".repeat(40), "vault/actions/deploy.toml")).rejects.toBeInstanceOf(GitError);
  });

  it("reports what changed under a directory: added and changed files with blob ids and sizes, deleted ones, renames as both", async () => {
    const repo = openRepo();
    const before = await repo.sync();
    const after = await ops.commit({
      "vault/actions/backup.toml": null,
      "vault/actions/backup-nightly.toml": 'id = "backup"\n',
      "vault/actions/deploy.toml": 'id = "deploy"\ncontext = "v2"\n',
      "vault/actions/fresh.toml": 'id = "fresh"\n',
      "formulas/other.sh": "#!/bin/sh\n",
    });
    await repo.sync();
    const blobOf = async (p: string) => (await runGit(ops.remote, ["rev-parse", `main:${p}`])).toString().trim();
    const changes = (await repo.diffFiles(before, after, "vault/actions"))!.sort((a, b) => a.path.localeCompare(b.path));
    expect(changes).toEqual([
      { path: "vault/actions/backup-nightly.toml", sha: await blobOf("vault/actions/backup-nightly.toml"), size: 14 },
      { path: "vault/actions/backup.toml", deleted: true },
      { path: "vault/actions/deploy.toml", sha: await blobOf("vault/actions/deploy.toml"), size: 29 },
      { path: "vault/actions/fresh.toml", sha: await blobOf("vault/actions/fresh.toml"), size: 13 },
    ]);
    expect(await repo.diffFiles("0".repeat(40), after, "vault/actions")).toBeUndefined();
  });

  it("answers the diff across its own pushes from memory, the same as git would", async () => {
    const repo = openRepo();
    const before = await repo.sync();
    await repo.writeFiles([{ path: "vault/actions/deploy.result.json", content: Buffer.from("{}\n") }], "one");
    const { commit } = await repo.writeFiles([{ path: "vault/actions/backup.result.json", content: Buffer.from('{"a":1}\n') }], "two");
    const fromMemory = await repo.diffFiles(before, commit, "vault/actions");
    const other = openRepo({ workdir: join(scratch, "clone-diff") });
    await other.sync();
    const fromGit = await other.diffFiles(before, commit, "vault/actions");
    const byPath = (xs: FileChange[]) => [...xs].sort((a, b) => a.path.localeCompare(b.path));
    expect(byPath(fromMemory!)).toEqual(byPath(fromGit!));
    expect(byPath(fromMemory!).map((f) => f.path)).toEqual(["vault/actions/backup.result.json", "vault/actions/deploy.result.json"]);
  });
});

describe("writeFiles", () => {
  it("commits several files in one commit with the configured author and pushes", async () => {
    const repo = openRepo();
    const before = await repo.sync();
    const commitsBefore = (await ops.log()).length;
    const out = await repo.writeFiles(
      [file("vault/actions/deploy.result.json", '{"id":"deploy"}'), file("vault/actions/deploy.log", "full log")],
      "vault: result for deploy",
    );
    expect(out).toEqual({ commit: await remoteTip(), base: before, skipped: [], rejections: 0 });
    expect(await ops.read("vault/actions/deploy.result.json")).toBe('{"id":"deploy"}');
    expect(await ops.read("vault/actions/deploy.log")).toBe("full log");
    expect(await ops.log()).toHaveLength(commitsBefore + 1);
    const head = (await runGit(ops.remote, ["log", "-1", "--format=%an <%ae>|%cn|%s", "main"])).toString().trim();
    expect(head).toBe("Ops Dispatcher <dispatcher@example.test>|Ops Dispatcher|vault: result for deploy");
  });

  it("never overwrites a path that exists upstream and reports it as skipped", async () => {
    const repo = openRepo();
    await repo.sync();
    await ops.commit({ "vault/actions/deploy.result.json": "theirs" }, "result by another replica");
    const out = await repo.writeFiles(
      [file("vault/actions/deploy.result.json", "ours"), file("vault/actions/backup.result.json", "ours")],
      "vault: results",
    );
    expect(out.skipped).toEqual(["vault/actions/deploy.result.json"]);
    expect(await ops.read("vault/actions/deploy.result.json")).toBe("theirs");
    expect(await ops.read("vault/actions/backup.result.json")).toBe("ours");
  });

  it("does not commit when every path already exists", async () => {
    const repo = openRepo();
    await repo.sync();
    const tip = await ops.commit({ "vault/actions/deploy.result.json": "theirs" });
    const out = await repo.writeFiles([file("vault/actions/deploy.result.json", "ours")], "vault: result for deploy");
    // our first push, built on the tip we knew, is refused; on the new tip the path exists
    expect(out).toEqual({ commit: tip, skipped: ["vault/actions/deploy.result.json"], rejections: 1 });
    expect(await remoteTip()).toBe(tip);
  });

  // commit-tree runs no post-commit hook: the race is a rival push right before ours
  it.each(["pre-push"] as const)(
    "re-creates the commit on the new tip when another writer pushes first (%s)",
    async (hook) => {
      const repo = openRepo();
      await repo.sync();
      await installRivalHook(hook, "once");
      const outcome = await repo.writeFiles([file("vault/actions/deploy.result.json", "ours")], "vault: result for deploy");
      expect(outcome.rejections).toBe(1);
      expect(await ops.read("vault/actions/deploy.result.json")).toBe("ours");
      expect(await ops.read("notes.txt")).toBeDefined();
      expect((await ops.log()).slice(0, 2)).toEqual(["vault: result for deploy", "other writer"]);
      // built on the tip we knew, refused, built again on the remote's at once: no backoff, no warning
      expect(sleeps).toEqual([]);
      expect(logLines.filter((l) => l.level === 40)).toEqual([]);
    },
  );

  it("lands a batch racing a human commit that wrote one of its results: the others land, theirs is kept", async () => {
    const repo = openRepo();
    await repo.sync();
    await installRivalHook("pre-push", "once", "vault/actions/backup.result.json");
    const outcome = await repo.writeFiles(
      [file("vault/actions/deploy.result.json", "ours"), file("vault/actions/backup.result.json", "ours too")],
      "vault: results for deploy, backup",
    );
    expect(outcome.skipped).toEqual(["vault/actions/backup.result.json"]);
    expect(await ops.read("vault/actions/deploy.result.json")).toBe("ours");
    expect(await ops.read("vault/actions/backup.result.json")).toMatch(/^\d+\n$/);
    expect((await ops.log()).slice(0, 2)).toEqual(["vault: results for deploy, backup", "other writer"]);
  });

  it("gives up with a GitError after maxPushAttempts rejected pushes", async () => {
    const repo = openRepo({ maxPushAttempts: 3 });
    await repo.sync();
    await installRivalHook("pre-push", "always");
    const write = repo.writeFiles([file("vault/actions/deploy.result.json", "ours")], "vault: result for deploy");
    await expect(write).rejects.toThrow(GitError);
    await expect(write).rejects.toThrow(/still rejected after 3 attempts/);
    expect(sleeps).toEqual([500, 1000]);
    expect(await ops.read("vault/actions/deploy.result.json")).toBeUndefined();
  });

  it("serializes concurrent writes from the same process", async () => {
    const repo = openRepo();
    await repo.sync();
    await Promise.all([
      repo.writeFiles([file("vault/actions/deploy.result.json", "a")], "vault: result for deploy"),
      repo.writeFiles([file("vault/actions/backup.result.json", "b")], "vault: result for backup"),
      repo.sync(),
    ]);
    expect(await ops.read("vault/actions/deploy.result.json")).toBe("a");
    expect(await ops.read("vault/actions/backup.result.json")).toBe("b");
    expect(sleeps).toEqual([]);
  });

  it("has git pack its commits' packs (one each) past gc.autoPackLimit, also when it never fetches", async () => {
    const repo = openRepo();
    await repo.sync();
    // git's limit is 50 packs; 4 here, set in the environment as an operator could
    Object.assign(process.env, { GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: "gc.autoPackLimit", GIT_CONFIG_VALUE_0: "4" });
    try {
      for (let i = 0; i < 10; i++) await repo.writeFiles([file(`vault/actions/r${i}.result.json`, `${i}\n`)], `vault: result for r${i}`);
    } finally {
      for (const k of ["GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0"]) delete process.env[k];
    }
    const gitDir = join(scratch, "clone", ".git");
    const packs = async () => (await readdir(join(gitDir, "objects", "pack"))).filter((f) => f.endsWith(".pack")).length;
    // the maintenance runs in the background
    for (let i = 0; i < 100 && (existsSync(join(gitDir, "gc.pid")) || (await packs()) > 1); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await packs()).toBe(1);
    expect(await ops.read("vault/actions/r9.result.json")).toBe("9\n");
    // the next commit starts a new fast-import on the packed clone
    await repo.writeFiles([file("vault/actions/r10.result.json", "10\n")], "vault: result for r10");
    expect(await ops.read("vault/actions/r10.result.json")).toBe("10\n");
    expect((await repo.readFile(await remoteTip(), "vault/actions/r0.result.json"))?.toString()).toBe("0\n");
  });

  it("refuses paths outside the repo and paths with a newline, each alone: the others land (issue 31)", async () => {
    const repo = openRepo();
    await repo.sync();
    const outcome = await repo.writeFiles([file("../escape.txt", "x"), file(".git/config", "x"), file("vault/actions/a\nb.result.json", "x"), file("vault/actions/ok.result.json", "ok\n")], "m");
    expect(outcome.failed).toEqual([
      { path: "../escape.txt", reason: 'refusing to write outside the ops repo: "../escape.txt"' },
      { path: ".git/config", reason: 'refusing to write outside the ops repo: ".git/config"' },
      { path: "vault/actions/a\nb.result.json", reason: `"vault/actions/a\\nb.result.json" has a control character (newline, tab, …): git's line-based protocols cannot carry it` },
    ]);
    expect(outcome.skipped).toEqual([]);
    expect(await ops.read("vault/actions/ok.result.json")).toBe("ok\n");
    expect(await ops.read("../escape.txt")).toBeUndefined();
  });
});

describe("remote failures", () => {
  it("throws a GitError naming an unreachable remote on sync", async () => {
    const missing = join(scratch, "nowhere.git");
    const sync = openRepo({ remote: missing }).sync();
    await expect(sync).rejects.toBeInstanceOf(GitError);
    await expect(sync).rejects.toThrow(`cannot clone ${missing}: fatal:`);
  });

  it("throws a GitError naming the remote when it disappears before a write", async () => {
    const repo = openRepo();
    await repo.sync();
    await rename(ops.remote, `${ops.remote}.gone`);
    const write = repo.writeFiles([file("vault/actions/deploy.result.json", "x")], "m");
    await expect(write).rejects.toBeInstanceOf(GitError);
    await expect(write).rejects.toThrow(`cannot push to ${ops.remote}: fatal: '${ops.remote}' does not appear to be a git repository`);
  });

  it("does not retry a push the remote refuses for another reason", async () => {
    const repo = openRepo();
    await repo.sync();
    const hook = join(ops.remote, "hooks", "pre-receive");
    await writeFile(hook, "#!/bin/sh\necho 'main is protected' >&2\nexit 1\n");
    await chmod(hook, 0o755);
    const write = repo.writeFiles([file("vault/actions/deploy.result.json", "x")], "m");
    await expect(write).rejects.toThrow(GitError);
    await expect(write).rejects.toThrow(new RegExp(`cannot push to ${ops.remote}: .*main is protected`, "s"));
    expect(sleeps).toEqual([]);
  });

  it("keeps credentials in the remote URL out of errors", async () => {
    const sync = openRepo({ remote: "http://bot:s3cret@127.0.0.1:9/ops.git" }).sync();
    await expect(sync).rejects.toThrow(/cannot clone http:\/\/\*\*\*@127\.0\.0\.1:9\/ops\.git/);
    await expect(sync).rejects.not.toThrow(/s3cret/);
  });
});

describe("writeFiles on a hostile repo layout", () => {
  let target: string;

  /** Commits symlinks (path → target) and files to `ops` as another writer would. */
  async function pushLinks(links: Record<string, string>, files: Record<string, string> = {}): Promise<void> {
    const work = await mkdtemp(join(tmpdir(), "hostile-"));
    await runGit(work, ["clone", "--quiet", ops.remote, "w"]);
    const w = join(work, "w");
    for (const [path, to] of Object.entries(links)) {
      await rm(join(w, path), { recursive: true, force: true });
      await mkdir(dirname(join(w, path)), { recursive: true });
      await symlink(to, join(w, path));
    }
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(w, path)), { recursive: true });
      await writeFile(join(w, path), content);
    }
    await runGit(w, ["add", "--all", "--force"]);
    await runGit(w, ["-c", "user.name=Mallory", "-c", "user.email=m@example.test", "commit", "--quiet", "-m", "hostile layout"]);
    await runGit(w, ["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
    await rm(work, { recursive: true, force: true });
  }

  beforeEach(async () => {
    target = await mkdtemp(join(tmpdir(), "link-target-"));
  });

  afterEach(async () => {
    await rm(target, { recursive: true, force: true });
  });

  it("writes with plumbing only: nothing appears in the clone's working tree", async () => {
    const repo = openRepo();
    await repo.writeFiles([file("vault/actions/deploy.result.json", "ours")], "vault: result for deploy");
    expect(await ops.read("vault/actions/deploy.result.json")).toBe("ours");
    expect(await readdir(join(scratch, "clone"))).toEqual([".git"]);
  });

  it("isolates a result under a symlinked directory: nothing written through the link, the others land", async () => {
    await pushLinks({ "vault/actions": target });
    const repo = openRepo();
    const outcome = await repo.writeFiles([file("vault/actions/deploy.result.json", "ours"), file("results/backup.result.json", "theirs")], "vault: results");
    expect(outcome.failed).toEqual([{ path: "vault/actions/deploy.result.json", reason: "vault/actions is a symlink in the repo, not a directory" }]);
    expect(outcome.skipped).toEqual([]);
    expect(await ops.read("results/backup.result.json")).toBe("theirs");
    expect(await readdir(target)).toEqual([]);
    expect(logLines.find((l) => l.level === 50)).toMatchObject({ path: "vault/actions/deploy.result.json", msg: "result cannot be written at its path; the others still land" });
  });

  it("fails a result path that is a symlink in the repo, leaving the link and its target alone", async () => {
    await pushLinks({ "vault/actions/deploy.result.json": join(target, "owned.json") });
    const repo = openRepo();
    const outcome = await repo.writeFiles([file("vault/actions/deploy.result.json", "ours")], "vault: result for deploy");
    // a link is no result: not "already written upstream" (skipped), but a path no result can take
    expect(outcome).toMatchObject({ skipped: [], failed: [{ path: "vault/actions/deploy.result.json", reason: "vault/actions/deploy.result.json is a symlink in the repo, not a file" }] });
    expect(await ops.read("vault/actions/deploy.result.json")).toBe(join(target, "owned.json"));
    expect(await readdir(target)).toEqual([]);
  });

  it("fails a result path that is a directory in the repo, and one under a file; skips one that is a file (never overwritten)", async () => {
    await pushLinks({}, { "vault/actions/deploy.result.json/inner.txt": "a directory\n", "vault/blocker": "a file\n", "vault/actions/done.result.json": "theirs\n" });
    const repo = openRepo();
    const outcome = await repo.writeFiles([file("vault/actions/deploy.result.json", "ours"), file("vault/blocker/x.result.json", "x"), file("vault/actions/done.result.json", "ours")], "vault: results");
    expect(outcome.skipped).toEqual(["vault/actions/done.result.json"]);
    expect(outcome.failed).toEqual([
      { path: "vault/actions/deploy.result.json", reason: "vault/actions/deploy.result.json is a directory in the repo, not a file" },
      { path: "vault/blocker/x.result.json", reason: "vault/blocker is a file in the repo, not a directory" },
    ]);
    expect(await ops.read("vault/actions/deploy.result.json/inner.txt")).toBe("a directory\n");
    expect(await ops.read("vault/actions/done.result.json")).toBe("theirs\n");
  });
});

describe("sameCodeAs", () => {
  it("holds from a commit to a later one that only changed the actions folder, not across a code change, nor backwards, nor off the branch", async () => {
    const repo = openRepo();
    const first = await repo.sync();
    const results = await ops.commit({ "vault/actions/deploy.result.json": "{}\n", "vault/actions/new.toml": 'id = "new"\n' }, "results and actions");
    const code = await ops.commit({ "formulas/lib/common.sh": "echo helper\n" }, "a helper");
    const aside = await ops.merge(first, {}, "a merge whose second parent is the first commit");
    await repo.sync();
    expect(await repo.sameCodeAs(first, first, "vault/actions")).toBe(true);
    expect(await repo.sameCodeAs(first, results, "vault/actions")).toBe(true);
    expect(await repo.sameCodeAs(first, code, "vault/actions")).toBe(false);
    expect(await repo.sameCodeAs(code, aside, "vault/actions")).toBe(true);
    // backwards: the later commit is not on the earlier one's history
    expect(await repo.sameCodeAs(results, first, "vault/actions")).toBe(false);
    // a folder of the same name's prefix is code: vault/actions-old is outside vault/actions
    const old = await ops.commit({ "vault/actions-old/stale.toml": "changed\n" }, "another folder");
    await repo.sync();
    expect(await repo.sameCodeAs(aside, old, "vault/actions")).toBe(false);
  });
});
