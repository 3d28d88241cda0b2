// git started by the long-lived shell (launcher.ts): git sees exactly the argv it would from
// execFile (no word is read as shell syntax), and a call answers as tryGit would.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tryGit } from "../../../dispatcher/opsrepo/exec.js";
import { launcherDir, launchGit, shellQuote } from "../../../dispatcher/opsrepo/launcher.js";
import { createOpsRemote, type OpsRemote } from "../../helpers/gitrepo.js";

let ops: OpsRemote;
let dir: string;

beforeEach(async () => {
  ops = await createOpsRemote({ "vault/actions/deploy.toml": 'id = "deploy"\n' });
  dir = await mkdtemp(join(tmpdir(), "launcher-test-"));
});

afterEach(async () => {
  await ops.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe("launchGit", () => {
  it("hands git each word as it is: quotes, $(…), ;, a newline and a glob are no shell syntax", async () => {
    const pwned = join(dir, "pwned");
    const words = [`it's; touch ${pwned}`, `$(touch ${pwned})`, "`touch x`", "a\nb", "*", "", "--"];
    const viaShell = await launchGit(ops.remote, ["rev-parse", "--sq-quote", ...words]);
    const direct = await tryGit(ops.remote, ["rev-parse", "--sq-quote", ...words]);
    expect(viaShell.stdout.toString("utf8")).toBe(" 'it'\\''s; touch " + pwned + "' '$(touch " + pwned + ")' '`touch x`' 'a\nb' '*' '' '--'\n");
    expect(viaShell).toEqual(direct);
    expect(existsSync(pwned)).toBe(false);
  });

  it("answers a failing command with git's exit code and words, as tryGit does", async () => {
    const args = ["rev-parse", "--verify", "--end-of-options", "no-such-ref"];
    const viaShell = await launchGit(ops.remote, args);
    expect(viaShell).toEqual(await tryGit(ops.remote, args));
    expect(viaShell.code).toBe(128);
    expect(viaShell.stderr).toBe("fatal: Needed a single revision\n");
  });

  it("runs calls at once, each answered with its own output, in the directory it names", async () => {
    const other = await createOpsRemote({ "x.txt": "x\n" });
    try {
      const [a, b, c] = await Promise.all([
        launchGit(ops.remote, ["ls-tree", "-r", "--name-only", "main"]),
        launchGit(other.remote, ["ls-tree", "-r", "--name-only", "main"]),
        launchGit(dir, ["rev-parse", "--is-inside-work-tree"]),
      ]);
      expect(a.stdout.toString("utf8")).toBe("vault/actions/deploy.toml\n");
      expect(b.stdout.toString("utf8")).toBe("x.txt\n");
      expect(c.code).toBe(128);
      expect(c.stderr).toMatch(/^fatal: not a git repository/);
    } finally {
      await other.cleanup();
    }
  });

  it("goes on when its output directory was cleaned away between calls (a long idle daemon)", async () => {
    await launchGit(ops.remote, ["rev-parse", "HEAD"]);
    await rm(launcherDir()!, { recursive: true, force: true });
    const run = await launchGit(ops.remote, ["ls-tree", "-r", "--name-only", "main"]);
    expect(run).toEqual({ code: 0, stdout: Buffer.from("vault/actions/deploy.toml\n"), stderr: "" });
  });

  it("runs a call the usual way once the environment changed since the shell started", async () => {
    await launchGit(ops.remote, ["rev-parse", "HEAD"]);
    process.env.GIT_CONFIG_COUNT = "1";
    process.env.GIT_CONFIG_KEY_0 = "launcher.test";
    process.env.GIT_CONFIG_VALUE_0 = "seen";
    try {
      const run = await launchGit(ops.remote, ["config", "--get", "launcher.test"]);
      expect(run.stdout.toString("utf8")).toBe("seen\n");
    } finally {
      delete process.env.GIT_CONFIG_COUNT;
      delete process.env.GIT_CONFIG_KEY_0;
      delete process.env.GIT_CONFIG_VALUE_0;
    }
  });
});

describe("shellQuote", () => {
  it("closes, escapes and reopens each single quote", () => {
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote("")).toBe("''");
  });
});
