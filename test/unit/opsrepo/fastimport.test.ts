// The long-lived fast-import on a real temporary repository: several commits through one process,
// each readable by other git processes as soon as it is answered; a bad commit fails alone.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runGit } from "../../../dispatcher/opsrepo/exec.js";
import { createFastImport } from "../../../dispatcher/opsrepo/fastimport.js";

let dir: string;
let base: string;
const ident = "Dispatcher <d@example.test> 1700000000 +0000";

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "fastimport-"));
  await runGit(dir, ["init", "-q", "-b", "main"]);
  await runGit(dir, ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "base"]);
  base = (await runGit(dir, ["rev-parse", "HEAD"])).toString().trim();
});

afterEach(() => rm(dir, { recursive: true, force: true }));

describe("createFastImport", () => {
  it("writes commit after commit through one process, each visible to git at once with its blob ids", async () => {
    const fi = createFastImport(dir);
    const one = await fi.commit({ from: base, files: [{ path: "vault/actions/a.result.json", content: Buffer.from("{}\n") }], message: "one", ident });
    expect((await runGit(dir, ["cat-file", "-p", `${one.commit}:vault/actions/a.result.json`])).toString()).toBe("{}\n");
    expect(one.blobs).toEqual([(await runGit(dir, ["rev-parse", `${one.commit}:vault/actions/a.result.json`])).toString().trim()]);
    const two = await fi.commit({
      from: one.commit,
      files: [
        { path: "vault/actions/b.result.json", content: Buffer.from('{"b":1}\n') },
        { path: "vault/actions/b.log", content: Buffer.from("log\n") },
      ],
      message: "two",
      ident,
    });
    expect((await runGit(dir, ["log", "--format=%s %P", two.commit])).toString().trim().split("\n")).toEqual([`two ${one.commit}`, `one ${base}`, "base"]);
    expect((await runGit(dir, ["ls-tree", "-r", "--name-only", two.commit])).toString().trim().split("\n")).toEqual([
      "vault/actions/a.result.json",
      "vault/actions/b.log",
      "vault/actions/b.result.json",
    ]);
    expect(two.blobs).toHaveLength(2);
  });

  it("keeps each commit's objects as one pack, also a single small file's: nothing is unpacked into loose objects", async () => {
    const fi = createFastImport(dir);
    const one = await fi.commit({ from: base, files: [{ path: "vault/actions/a.log", content: Buffer.from("one\n") }], message: "one", ident });
    const files = Array.from({ length: 150 }, (_, i) => ({ path: `vault/actions/r${i}.log`, content: Buffer.from(`log ${i}\n`) }));
    const { commit } = await fi.commit({ from: one.commit, files, message: "many", ident });
    const counts = Object.fromEntries(
      (await runGit(dir, ["count-objects", "-v"]))
        .toString()
        .trim()
        .split("\n")
        .map((l) => l.split(": ")),
    ) as Record<string, string>;
    // loose: the base commit and its empty tree, from `git commit`; the two commits' objects in a pack each
    expect([counts.count, counts.packs, counts["in-pack"]]).toEqual(["2", "2", String(1 + 3 + 1 + (150 + 3 + 1))]);
    expect((await runGit(dir, ["cat-file", "-p", `${commit}:vault/actions/r149.log`])).toString()).toBe("log 149\n");
  });

  it("keeps its packs out of gc while it runs; close ends it, and the next commit starts another", async () => {
    const fi = createFastImport(dir);
    const one = await fi.commit({ from: base, files: [{ path: "a", content: Buffer.from("a") }], message: "one", ident });
    const packDir = join(dir, ".git", "objects", "pack");
    const keeps = async () => (await readdir(packDir)).filter((f) => f.endsWith(".keep")).length;
    expect(await keeps()).toBe(1);
    await fi.close();
    expect(await keeps()).toBe(0);
    const two = await fi.commit({ from: one.commit, files: [{ path: "b", content: Buffer.from("b") }], message: "two", ident });
    expect((await runGit(dir, ["log", "--format=%s", two.commit])).toString().trim().split("\n")).toEqual(["two", "one", "base"]);
  });

  it("fails a commit on an unknown base with git's message, and the next one works", async () => {
    const fi = createFastImport(dir);
    await expect(fi.commit({ from: "1".repeat(40), files: [{ path: "x", content: Buffer.from("x") }], message: "bad", ident })).rejects.toThrow(/git fast-import in .* exited \(128\): fatal: Not a valid commit: 1{40}/);
    const ok = await fi.commit({ from: base, files: [{ path: "x", content: Buffer.from("x") }], message: "good", ident });
    expect((await runGit(dir, ["log", "-1", "--format=%s", ok.commit])).toString().trim()).toBe("good");
  });
});
