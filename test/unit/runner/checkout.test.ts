import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { GitError } from "../../../dispatcher/errors.js";
import { runGit } from "../../../dispatcher/opsrepo/exec.js";
import { checkoutAt, checkoutBoundsFromEnv, DEFAULT_CHECKOUT_BOUNDS, verifyCheckout } from "../../../dispatcher/runner/checkout.js";
import { createOpsRemote, type OpsRemote } from "../../helpers/gitrepo.js";

let ops: OpsRemote;
let scratch: string;
const home = process.env.HOME;

beforeEach(async () => {
  ops = await createOpsRemote({ "formulas/noop.sh": "v1\n" });
  scratch = await mkdtemp(join(tmpdir(), "runner-checkout-"));
});

afterEach(async () => {
  vi.restoreAllMocks();
  process.env.HOME = home;
  await ops.cleanup();
  await rm(scratch, { recursive: true, force: true });
});

const headOf = async (dir: string) => (await runGit(dir, ["rev-parse", "HEAD"])).toString().trim();

describe("checkoutAt", () => {
  it("checks out an older commit than the tip, with that commit alone", async () => {
    const old = (await runGit(ops.remote, ["rev-parse", "main"])).toString().trim();
    await ops.commit({ "formulas/noop.sh": "v2\n" });
    const dir = join(scratch, "ops");
    await checkoutAt(ops.remote, old, dir, "vault/actions/deploy.toml");
    expect(await headOf(dir)).toBe(old);
    expect(await readFile(join(dir, "formulas/noop.sh"), "utf8")).toBe("v1\n");
    expect((await runGit(dir, ["rev-parse", "--is-shallow-repository"])).toString().trim()).toBe("true");
  });

  it("starts four git processes (init, fetch, ls-tree, checkout), writes no hooks and leaves no template behind", async () => {
    // a git first on PATH that notes each call's subcommand (the runner passes git only PATH, HOME, LANG)
    const shim = join(scratch, "shim");
    const calls = join(scratch, "calls");
    const real = (await runGit("/", ["--exec-path"])).toString().trim();
    await mkdir(shim);
    await writeFile(join(shim, "git"), `#!/bin/sh\necho "$1" >> ${calls}\nexec ${real}/git "$@"\n`);
    await chmod(join(shim, "git"), 0o755);
    const tip = (await runGit(ops.remote, ["rev-parse", "main"])).toString().trim();
    vi.stubEnv("PATH", `${shim}:${process.env.PATH}`);
    const dir = join(scratch, "ops");
    await checkoutAt(ops.remote, tip, dir, "vault/actions/deploy.toml");
    vi.unstubAllEnvs();
    expect((await readFile(calls, "utf8")).trim().split("\n")).toEqual(["init", "fetch", "ls-tree", "checkout"]);
    await expect(readdir(join(dir, ".git/hooks"))).rejects.toMatchObject({ code: "ENOENT" });
    expect((await readdir(scratch)).sort()).toEqual(["calls", "ops", "shim"]);
  });

  it("falls back to a full fetch when the server refuses a fetch by commit id", async () => {
    const old = (await runGit(ops.remote, ["rev-parse", "main"])).toString().trim();
    await ops.commit({ "formulas/noop.sh": "v2\n" });
    // protocol v0 without uploadpack.allowReachableSHA1InWant refuses a "want" of a non-tip commit
    process.env.HOME = scratch;
    await writeFile(join(scratch, ".gitconfig"), "[protocol]\n\tversion = 0\n");
    const dir = join(scratch, "ops");
    await checkoutAt(`file://${ops.remote}`, old, dir, "vault/actions/deploy.toml");
    expect(await headOf(dir)).toBe(old);
    expect((await runGit(dir, ["rev-parse", "--is-shallow-repository"])).toString().trim()).toBe("false");
    expect(await readFile(join(dir, "formulas/noop.sh"), "utf8")).toBe("v1\n");
  });

  it("leaves other actions' files and results out of the tree, keeping its own action and everything else", async () => {
    await ops.commit({
      "vault/actions/deploy.toml": 'id = "deploy"\n',
      "vault/actions/other.toml": "other\n",
      "vault/actions/other.result.json": "{}\n",
      "vault/README.md": "about\n",
    });
    const tip = (await runGit(ops.remote, ["rev-parse", "main"])).toString().trim();
    const dir = join(scratch, "ops");
    await checkoutAt(ops.remote, tip, dir, "vault/actions/deploy.toml");
    const files = (await runGit(dir, ["ls-files", "-t"])).toString().trim().split("\n").sort();
    // "H": in the work tree; "S": skipped by the sparse patterns
    expect(files).toEqual(["H formulas/noop.sh", "H vault/README.md", "H vault/actions/deploy.toml", "S vault/actions/other.result.json", "S vault/actions/other.toml"]);
    await expect(readFile(join(dir, "vault/actions/other.toml"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("waits for a remote that is away for a moment, then checks out", async () => {
    const tip = (await runGit(ops.remote, ["rev-parse", "main"])).toString().trim();
    await rename(ops.remote, `${ops.remote}.away`);
    setTimeout(() => void rename(`${ops.remote}.away`, ops.remote), 250);
    const said = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const dir = join(scratch, "ops");
    await checkoutAt(ops.remote, tip, dir, "vault/actions/deploy.toml", [200, 200, 200]);
    expect(await headOf(dir)).toBe(tip);
    expect(said.mock.calls[0]![0]).toMatch(/^\[runner\] git fetch failed in .*does not appear to be a git repository.*; trying again in 0.2 s$/s);
  });

  it("gives up on a remote that stays away, with git's words", async () => {
    const tip = (await runGit(ops.remote, ["rev-parse", "main"])).toString().trim();
    await rename(ops.remote, `${ops.remote}.away`);
    const said = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const err = await checkoutAt(ops.remote, tip, join(scratch, "ops"), "vault/actions/deploy.toml", [10, 10]).catch((e: unknown) => e);
    await rename(`${ops.remote}.away`, ops.remote);
    expect(said).toHaveBeenCalledTimes(2);
    expect(err).toBeInstanceOf(GitError);
    expect((err as Error).message).toMatch(/^git fetch failed in .*: fatal: '.*' does not appear to be a git repository/);
  });

  it("fails with a GitError naming git's words for a commit the remote does not have", async () => {
    const err = await checkoutAt(ops.remote, "0".repeat(40), join(scratch, "ops"), "vault/actions/deploy.toml").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitError);
    expect((err as Error).message).toMatch(/^git checkout failed in .*: fatal: reference is not a tree: 0{40}$/);
  });

  it("refuses a checkout with a file over the bound before writing any file, naming it and its size", async () => {
    await ops.commit({ "data/big.bin": Buffer.alloc(3 * 1024 * 1024), "vault/actions/deploy.toml": 'id = "deploy"\n' });
    const tip = (await runGit(ops.remote, ["rev-parse", "main"])).toString().trim();
    const dir = join(scratch, "ops");
    const err = await checkoutAt(ops.remote, tip, dir, "vault/actions/deploy.toml", [], { maxTotalBytes: 10 * 1024 * 1024, maxFileBytes: 2 * 1024 * 1024, maxEntries: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitError);
    expect((err as GitError).class).toBe("invalid");
    expect((err as Error).message).toBe(`checkout of ${tip} refused: data/big.bin is 3.0 MB, more than a checked-out file may be (2.0 MB); keep large files out of the ops repo or raise RUNNER_MAX_FILE_MB`);
    await expect(readFile(join(dir, "formulas/noop.sh"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("refuses a checkout whose files together exceed the bound, and counts no other action's file", async () => {
    await ops.commit({ "a.bin": Buffer.alloc(1024 * 1024, 1), "b.bin": Buffer.alloc(1024 * 1024, 2), "vault/actions/other.result.json": Buffer.alloc(5 * 1024 * 1024) });
    const tip = (await runGit(ops.remote, ["rev-parse", "main"])).toString().trim();
    const bounds = { maxTotalBytes: 1.5 * 1024 * 1024, maxFileBytes: 2 * 1024 * 1024, maxEntries: 1000 };
    const err = await checkoutAt(ops.remote, tip, join(scratch, "ops"), "vault/actions/deploy.toml", [], bounds).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`checkout of ${tip} refused: it would write 2.0 MB, more than the task's disk allows (1.5 MB); the largest file is a.bin (1.0 MB)`);
    // the other action's 5 MB result is never checked out, so never counted
    await checkoutAt(ops.remote, tip, join(scratch, "ops2"), "vault/actions/deploy.toml", [], { maxTotalBytes: 3 * 1024 * 1024, maxFileBytes: 2 * 1024 * 1024, maxEntries: 1000 });
    expect(await readFile(join(scratch, "ops2", "b.bin"))).toHaveLength(1024 * 1024);
  });

  it("refuses a tree listing more paths than the bound (a tree bomb, wherever it is), stopping git's listing there", async () => {
    // other actions' files count here: git's checkout indexes every path of the tree
    const many = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`vault/actions/bomb/d${i}/x`, "same blob\n"]));
    await ops.commit(many);
    const tip = (await runGit(ops.remote, ["rev-parse", "main"])).toString().trim();
    const dir = join(scratch, "ops");
    const err = await checkoutAt(ops.remote, tip, dir, "vault/actions/deploy.toml", [], { ...DEFAULT_CHECKOUT_BOUNDS, maxEntries: 20 }).catch((e: unknown) => e);
    expect((err as GitError).class).toBe("invalid");
    expect((err as Error).message).toBe(`checkout of ${tip} refused: its tree lists more than 20 paths (a tree bomb: a few KB of nested trees naming the same blobs); remove it from the ops repo`);
    await expect(readFile(join(dir, "formulas/noop.sh"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("reads its bounds from the runner's env, and names a bad value", () => {
    expect(checkoutBoundsFromEnv({})).toEqual(DEFAULT_CHECKOUT_BOUNDS);
    expect(checkoutBoundsFromEnv({ RUNNER_MAX_CHECKOUT_MB: "50", RUNNER_MAX_FILE_MB: "10" })).toEqual({ maxTotalBytes: 50 * 1024 * 1024, maxFileBytes: 10 * 1024 * 1024, maxEntries: 200_000 });
    expect(() => checkoutBoundsFromEnv({ RUNNER_MAX_FILE_MB: "0" })).toThrow('RUNNER_MAX_FILE_MB must be a positive whole number of MB, got "0" (example: RUNNER_MAX_FILE_MB=100)');
  });
});

describe("verifyCheckout", () => {
  it("passes the approved commit and action blob, and refuses another commit or another blob as tampering", async () => {
    const approved = await ops.commit({ "vault/actions/deploy.toml": "id = 1\n" }, "approved");
    const sha = (await runGit(ops.remote, ["rev-parse", `${approved}:vault/actions/deploy.toml`])).toString().trim();
    const later = await ops.commit({ "vault/actions/deploy.toml": "id = 2\n" }, "changed");
    const dir = join(scratch, "ops");
    await checkoutAt(ops.remote, approved, dir, "vault/actions/deploy.toml");
    await expect(verifyCheckout(dir, { commit: approved, actionPath: "vault/actions/deploy.toml", actionSha: sha })).resolves.toBeUndefined();
    await expect(verifyCheckout(dir, { commit: later, actionPath: "vault/actions/deploy.toml", actionSha: sha })).rejects.toThrow(
      `the checkout is at commit ${approved}, expected the approved ${later}: refusing to run (possible tampering)`,
    );
    const other = join(scratch, "other");
    await checkoutAt(ops.remote, later, other, "vault/actions/deploy.toml");
    const err = await verifyCheckout(other, { commit: later, actionPath: "vault/actions/deploy.toml", actionSha: sha }).catch((e: unknown) => e);
    expect(err).toMatchObject({ class: "tampered" });
    expect((err as Error).message).toMatch(new RegExp(`^vault/actions/deploy\\.toml at commit ${later.slice(0, 12)} is blob [0-9a-f]{40}, expected the approved ${sha}: refusing to run \\(possible tampering\\)$`));
    await expect(verifyCheckout(other, { commit: later, actionPath: "vault/actions/none.toml", actionSha: sha })).rejects.toThrow(`vault/actions/none.toml at commit ${later.slice(0, 12)} is absent`);
  });
});
