// The ops repo over SSH with a deploy key (never in a URL): the dispatcher fetches and pushes
// through the stack's sshd (key-only, git-shell), runners fetch read-only from the git daemon;
// a wrong key is an `auth` failure that doctor explains, and the key shows up nowhere.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { redactUrls } from "../../dispatcher/opsrepo/exec.js";
import { cliEnv, runCli } from "../helpers/cli.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { adminNomad, createTestDispatcher, sshRemoteFor, stackEnv, uniq } from "../helpers/stack.js";

const u = uniq();
const id = `over-ssh-${u}`;
const s = stackEnv();
let remote: OpsRemote;
let ssh: string;
let wrongKeyDir: string;

beforeAll(async () => {
  remote = await createOpsRemote({
    "formulas/hello.sh": "#!/usr/bin/env bash\necho hello over ssh\n",
    [`vault/actions/${id}.toml`]: `id = "${id}"\nformula = "hello"\ncontext = "c"\nsecrets = []\n`,
  });
  ssh = sshRemoteFor(remote.remote);
  wrongKeyDir = mkdtempSync(join(tmpdir(), "wrong-key-"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(wrongKeyDir, "key")]);
});

afterAll(async () => {
  await remote?.cleanup();
  rmSync(wrongKeyDir, { recursive: true, force: true });
});

describe("an SSH ops remote", () => {
  it("refuses a wrong deploy key as an auth failure, and doctor names the fix", async () => {
    const d = await createTestDispatcher(ssh, { DISPATCHER_GIT_SSH_KEY: join(wrongKeyDir, "key") });
    const err = (await d.loop.pass().catch((e: unknown) => e)) as { class?: string; message?: string };
    expect(err.class).toBe("auth");
    // its first sync clones the remote; a remote is printed with its user info masked
    expect(err.message).toContain(`cannot clone ${redactUrls(ssh)}: `);
    expect(err.message).toContain("Permission denied (publickey)");
    const doctor = await runCli(["doctor"], await cliEnv(ssh, { DISPATCHER_GIT_SSH_KEY: join(wrongKeyDir, "key") }));
    expect(doctor.stdout).toMatch(
      /^fail ops repo: cannot reach ssh:\/\/\*\*\*@\S+: .*Permission denied \(publickey\).*; fix: the remote refused the dispatcher's credential: DISPATCHER_GIT_SSH_KEY must be a deploy key with write access there, DISPATCHER_GIT_KNOWN_HOSTS must pin the remote's current host key$/m,
    );
    expect(await remote.read(`vault/actions/${id}.result.json`)).toBeUndefined();
  });

  it("fetches and pushes with the deploy key; the runner fetches read-only; the action is not lost", async () => {
    const d = await createTestDispatcher(ssh);
    await d.loop.once();
    const r = JSON.parse((await remote.read(`vault/actions/${id}.result.json`))!) as ActionResult;
    expect(r).toMatchObject({ status: "succeeded", logs: "hello over ssh" });
    expect((await remote.log())[0]).toBe(`vault: result for ${id}`);
    const key = readFileSync(s.DISPATCHER_GIT_SSH_KEY, "utf8");
    const keyBody = key.split("\n")[1]!; // a line of the private key itself
    const child = await adminNomad().childJob(r.job_id!);
    expect(child?.meta.ops_repo).toMatch(/^git:\/\//);
    const doctor = await runCli(["doctor"], await cliEnv(ssh));
    expect(doctor.stdout).toContain(`ok ops repo: ${redactUrls(ssh)} reachable, main at `);
    for (const text of [d.captured.text(), JSON.stringify(r), JSON.stringify(child?.meta), doctor.stdout, doctor.stderr]) {
      expect(text).not.toContain(keyBody);
    }
  });
});
