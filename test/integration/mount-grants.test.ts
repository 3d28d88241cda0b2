// Mounts are grants: an ssh/gpg/sops mount holds key files, so the dispatcher's config says which
// formula may have which mount ([formula_mounts], beside [formula_secrets]). A formula asking
// for a mount it is not given is refused before any token is minted; a granted mount's key
// file printed by its formula is masked in the result and the log.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { childrenOf, createTestDispatcher, deleteSecret, dispatcherNomad, grantSecret, uniq } from "../helpers/stack.js";

const u = uniq();
const SECRET = `MOUNTS_${u.toUpperCase()}`;
const ids = { thief: `thief-${u}`, deploy: `deploy-${u}` };
const keyLines = ["-----BEGIN OPENSSH PRIVATE KEY-----", `b3BlbnNzaC1rZXktdjEAAAAA${u}bm9uZQ`, "-----END OPENSSH PRIVATE KEY-----"];
let remote: OpsRemote;
let dir: string;
let sshDir: string;
const minted: string[] = [];

async function result(id: string): Promise<ActionResult> {
  return JSON.parse((await remote.read(`vault/actions/${id}.result.json`))!) as ActionResult;
}

beforeAll(async () => {
  await grantSecret(SECRET, `mounts-value-${u}`);
  sshDir = (await dispatcherNomad().hostVolumes()).get("ssh")!;
  await mkdir(sshDir, { recursive: true });
  await writeFile(join(sshDir, `id-${u}`), `${keyLines.join("\n")}\n`, { mode: 0o644 });
  dir = await mkdtemp(join(tmpdir(), "mount-grants-"));
  const config = join(dir, "dispatcher.toml");
  await writeFile(config, `[formula_secrets]\nthief = ["${SECRET}"]\ndeploy = ["${SECRET}"]\n\n[formula_mounts]\ndeploy = ["ssh"]\n`);
  const print = `#!/usr/bin/env bash\necho "key:"; cat /mnt/ssh/id-${u}\n`;
  remote = await createOpsRemote({
    "formulas/thief.sh": print,
    "formulas/deploy.sh": print,
    [`vault/actions/${ids.thief}.toml`]: `id = "${ids.thief}"\nformula = "thief"\ncontext = "c"\nsecrets = ["${SECRET}"]\nmounts = ["ssh"]\n`,
    [`vault/actions/${ids.deploy}.toml`]: `id = "${ids.deploy}"\nformula = "deploy"\ncontext = "c"\nsecrets = ["${SECRET}"]\nmounts = ["ssh"]\n`,
  });
  const d = await createTestDispatcher(remote.remote, { DISPATCHER_SECRETS: SECRET, DISPATCHER_CONFIG: config }, (v) => ({
    ...v,
    mintWrapped: (req) => (minted.push(req.meta.action ?? "?"), v.mintWrapped(req)),
  }));
  await d.loop.once();
}, 120_000);

afterAll(async () => {
  await deleteSecret(SECRET);
  await rm(join(sshDir, `id-${u}`), { force: true });
  await remote?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe("formula → mounts allowlist", () => {
  it("refuses a mount the formula is not given, naming formula, mount and allowlist, before any token or job", async () => {
    expect(await result(ids.thief)).toMatchObject({
      status: "rejected",
      exit_code: -1,
      error: {
        class: "not_allowed",
        message: `vault/actions/${ids.thief}.toml: mounts[0] "ssh" is not allowed for formula "thief" (allowed: none; allowlist: [formula_mounts] in ${join(dir, "dispatcher.toml")})`,
      },
    });
    expect(minted).toEqual([ids.deploy]);
    expect(await childrenOf("runner-ssh", ids.thief)).toEqual([]);
  });

  it("masks a granted mount's key file printed by the formula", async () => {
    const r = await result(ids.deploy);
    expect(r).toMatchObject({ status: "succeeded", logs: "key:\n[redacted]" });
    for (const line of keyLines.slice(1, 2)) expect(r.logs).not.toContain(line);
  });
});
