import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { build } from "esbuild";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GitError } from "../../../dispatcher/errors.js";
import { createCatFile } from "../../../dispatcher/opsrepo/catfile.js";
import { runGit } from "../../../dispatcher/opsrepo/exec.js";
import { createOpsRemote, type OpsRemote } from "../../helpers/gitrepo.js";

let ops: OpsRemote;

beforeEach(async () => {
  ops = await createOpsRemote({
    "vault/actions/deploy.toml": 'id = "deploy"\n',
    // bytes that look like the protocol: newlines, a fake header, no trailing newline
    "data/tricky.bin": "abc 123\nxyz blob 9\n\n\0end",
  });
});

afterEach(async () => {
  await ops.cleanup();
});

async function blobOf(path: string): Promise<string> {
  return (await runGit(ops.remote, ["rev-parse", `main:${path}`])).toString("utf8").trim();
}

describe("createCatFile", () => {
  it("reads blobs by id and by <commit>:<path>, byte for byte", async () => {
    const objects = createCatFile(ops.remote);
    expect(await objects.read(await blobOf("data/tricky.bin"))).toEqual({ type: "blob", content: Buffer.from("abc 123\nxyz blob 9\n\n\0end") });
    expect((await objects.read("main:vault/actions/deploy.toml"))?.content.toString()).toBe('id = "deploy"\n');
    expect((await objects.read("main:vault/actions"))?.type).toBe("tree");
  });

  it("answers missing objects with undefined and keeps answering in order", async () => {
    const objects = createCatFile(ops.remote);
    const names = ["main:nope", "main:vault/actions/deploy.toml", "0".repeat(40), "main:data/tricky.bin", "main:nope missing"];
    const answers = await Promise.all(names.map((n) => objects.read(n)));
    expect(answers.map((a) => a?.content.length)).toEqual([undefined, 14, undefined, 24, undefined]);
  });

  it("looks up ids and types without bytes, interleaved with reads in order", async () => {
    const objects = createCatFile(ops.remote);
    const [tree, blob, missing, read] = await Promise.all([objects.info("main:vault/actions"), objects.info("main:data/tricky.bin"), objects.info("main:vault/nope"), objects.read("main:data/tricky.bin")]);
    expect(tree).toMatchObject({ sha: (await runGit(ops.remote, ["rev-parse", "main:vault/actions"])).toString("utf8").trim(), type: "tree" });
    expect(blob).toEqual({ sha: await blobOf("data/tricky.bin"), type: "blob", size: 24 });
    expect(missing).toBeUndefined();
    expect(read?.content).toEqual(Buffer.from("abc 123\nxyz blob 9\n\n\0end"));
  });

  it("answers 200 concurrent reads, each with its own object", async () => {
    const objects = createCatFile(ops.remote);
    const reads = await Promise.all(Array.from({ length: 200 }, (_, i) => objects.read(i % 2 ? "main:vault/actions/deploy.toml" : "main:data/tricky.bin")));
    expect(reads.every((r, i) => r?.content.length === (i % 2 ? 14 : 24))).toBe(true);
  });

  it("sees commits made after it started", async () => {
    const objects = createCatFile(ops.remote);
    await objects.read("main:vault/actions/deploy.toml");
    const next = await ops.commit({ "vault/actions/new.toml": "fresh\n" });
    expect((await objects.read(`${next}:vault/actions/new.toml`))?.content.toString()).toBe("fresh\n");
  });

  it("refuses a name with a newline, which the line protocol cannot carry", async () => {
    await expect(createCatFile(ops.remote).read("main:a\nb")).rejects.toThrow(new GitError('cannot look up "main:a\\nb": a newline in an object name'));
  });

  it("rejects every waiting read when git cannot run there", async () => {
    const objects = createCatFile("/nonexistent-dir-for-catfile");
    await expect(objects.read("main:x")).rejects.toThrow(/cannot run git cat-file --batch-command in \/nonexistent-dir-for-catfile/);
  });
});

describe("createCatFile in a process that is done", () => {
  it("lets the process exit on its own after its reads", async () => {
    // the module bundled as a plain script: a child node process runs it without a test runner
    const bundle = join(await mkdtemp(join(tmpdir(), "catfile-")), "catfile.mjs");
    await build({ entryPoints: [new URL("../../../dispatcher/opsrepo/catfile.ts", import.meta.url).pathname], bundle: true, platform: "node", format: "esm", outfile: bundle, logLevel: "silent" });
    const script = `const { createCatFile } = await import(${JSON.stringify(bundle)});
const r = await createCatFile(${JSON.stringify(ops.remote)}).read("main:vault/actions/deploy.toml");
console.log(r.content.toString().trim());`;
    // a process kept alive by the cat-file child would hit the timeout and fail here
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], { timeout: 20_000 });
    expect(stdout).toBe('id = "deploy"\n');
    await rm(dirname(bundle), { recursive: true, force: true });
  });
});
