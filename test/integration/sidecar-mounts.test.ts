// Sidecar dispatch end to end, and mounts: a requested mount's host path reaches the formula as
// MOUNT_<ALIAS>; a mount the cluster does not offer is an invalid result and no Nomad child.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { childrenOf, createTestDispatcher, dispatcherNomad, uniq } from "../helpers/stack.js";

const u = uniq();
const ids = { sidecar: `triage-${u}`, ssh: `ssh-${u}`, sops: `sops-${u}` };
const probe = `probe-${u}.txt`;
const probeText = `known_hosts for ${u}`;
const absentVolume = `sops-absent-${u}`;

let remote: OpsRemote;
let sshPath: string;
let configDir: string;

async function result(id: string): Promise<ActionResult> {
  const text = await remote.read(`vault/actions/${id}.result.json`);
  if (!text) throw new Error(`no result for ${id} in the remote`);
  return JSON.parse(text) as ActionResult;
}

beforeAll(async () => {
  sshPath = (await dispatcherNomad().hostVolumes()).get("ssh")!;
  await writeFile(join(sshPath, probe), `${probeText}\n`);
  // sops maps to a host volume no node declares: the cluster does not offer it
  configDir = await mkdtemp(join(tmpdir(), "dispatcher-config-"));
  await writeFile(join(configDir, "dispatcher.toml"), `[host_volumes]\nsops = "${absentVolume}"\n`);
  remote = await createOpsRemote({
    "formulas/triage.sh":
      '#!/usr/bin/env bash\necho "issue=$ISSUE_NUMBER project=$PROJECT_TOML action=$ACTION_ID"\n',
    "formulas/read-ssh.sh": `#!/usr/bin/env bash\nset -eu\necho "MOUNT_SSH=$MOUNT_SSH"\ncat "$MOUNT_SSH/${probe}"\n`,
    [`vault/actions/${ids.sidecar}.toml`]: `id = "${ids.sidecar}"\nformula = "triage"\ncontext = "triage an issue"\nsecrets = []\nkind = "sidecar"\nissue = 42\nproject = "projects/demo.toml"\n`,
    [`vault/actions/${ids.ssh}.toml`]: `id = "${ids.ssh}"\nformula = "read-ssh"\ncontext = "read a mounted file"\nsecrets = []\nmounts = ["ssh"]\n`,
    [`vault/actions/${ids.sops}.toml`]: `id = "${ids.sops}"\nformula = "read-ssh"\ncontext = "needs sops"\nsecrets = []\nmounts = ["sops"]\n`,
  });
  const d = await createTestDispatcher(remote.remote, { DISPATCHER_CONFIG: join(configDir, "dispatcher.toml") });
  await d.loop.once();
}, 180_000);

afterAll(async () => {
  await remote?.cleanup();
  await rm(join(sshPath, probe), { force: true });
  await rm(configDir, { recursive: true, force: true });
});

describe("sidecar", () => {
  it("dispatches the sidecar job, tracks it to a result, and the formula sees its meta", async () => {
    const r = await result(ids.sidecar);
    expect(r).toMatchObject({ status: "succeeded", exit_code: 0, policies: [] });
    expect(r.job_id).toMatch(/^sidecar\/dispatch-/);
    expect(r.logs).toBe(`issue=42 project=projects/demo.toml action=${ids.sidecar}`);
  });
});

describe("mounts", () => {
  it("mounts a requested host volume read-only at /mnt/<alias>, as MOUNT_<ALIAS>: the formula reads a file placed there", async () => {
    const r = await result(ids.ssh);
    expect(r).toMatchObject({ status: "succeeded", exit_code: 0 });
    expect(r.job_id).toMatch(/^runner-ssh\/dispatch-/);
    // what it read is masked: a mount's small files are key material, masked like secrets
    expect(r.logs).toBe("MOUNT_SSH=/mnt/ssh\n[redacted]");
  });

  it("refuses a mount the cluster does not offer before any dispatch: invalid result, no child", async () => {
    const r = await result(ids.sops);
    expect(r.status).toBe("invalid");
    expect(r.error).toEqual({
      class: "invalid",
      message: `vault/actions/${ids.sops}.toml: mounts[0] "sops" is not available on this cluster (available: gpg, ssh)`,
    });
    expect(r.job_id).toBeUndefined();
    expect(await childrenOf("runner", ids.sops)).toEqual([]);
  });
});
