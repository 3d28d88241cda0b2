// disinto's layout with configuration only: secrets at kv/data/disinto/runner/<NAME>
// (vault.secret_path), formulas in a factory repository pinned by commit (formulas.factory_remote,
// factory_commit) and called as `bash formulas/<f>.sh <action-id>` (formulas.args = "action-id")
// with OPS_REPO_ROOT and FACTORY_ROOT, HOME /home/agent and the ssh mount landing at ~/.ssh
// ([mounts]), parents registered by scripts/register-jobs.sh for the configured mount sets.
// Attacks: the formula's token reads a sibling secret of the old layout; a push to the factory's
// branch tries to change what runs; a formula writes to a configured mount outside ssh/gpg/sops;
// an action asks for a mount alias the config does not know.
import { execFile } from "node:child_process";
import { chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEnv, runCli } from "../helpers/cli.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createSigners, type Signers } from "../helpers/signers.js";
import { childrenOf, createTestDispatcher, deleteSecret, dispatcherNomad, grantSecret, nomadHttp, runnerRemoteFor, stackEnv, uniq } from "../helpers/stack.js";

const root = new URL("../..", import.meta.url).pathname;
const OLD_PATH = "disinto/runner/{name}";
const NOBODY = 65534;
const u = uniq();
const SECRET = `OLD_${u.toUpperCase()}`;
const SIBLING = `SIBLING_${u.toUpperCase()}`;
const ids = { legacy: `legacy-${u}`, data: `data-${u}`, unknown: `unknown-${u}` };
// the parents of this test's own mount sets, registered with its config
const base = `old-${u}`;
const parents = [base, `${base}-ssh`, `${base}-agent-data`, `${base}-sidecar`, `${base}-sidecar-ssh`, `${base}-sidecar-agent-data`];
const key = ["-----BEGIN OPENSSH PRIVATE KEY-----", `b3BlbnNzaC1rZXktdjEAAAAA${u}bm9uZQ`, "-----END OPENSSH PRIVATE KEY-----"].join("\n");
let ops: OpsRemote;
let keys: Signers;
let factory: OpsRemote;
let dir: string;
let pinned: string;
let pushed: string;
let keyFile: string;
let configFile: string;
let dataFile: string;
const minted: string[] = [];

/** the formula as disinto's factory holds it: the action id as $1, the old variables, ~/.ssh, and an attack on a sibling secret */
const formula = (version: string) => `#!/usr/bin/env bash
set -eu
echo "version=${version} id=$1"
[ "$OPS_REPO_ROOT" = "$OPS_REPO_DIR" ] && echo "ops root: the ops checkout"
echo "factory at $(git -C "$FACTORY_ROOT" rev-parse HEAD)"
grep -q "id = \\"$1\\"" "$OPS_REPO_ROOT/vault/actions/$1.toml" && echo "action file found by \\$1"
echo "secret of \${#${SECRET}} characters"
node -e 'fetch(process.env.VAULT_ADDR + "/v1/kv/data/disinto/runner/" + process.argv[1], { headers: { "X-Vault-Token": process.env.VAULT_TOKEN } }).then((r) => console.log("sibling read: HTTP " + r.status))' ${SIBLING}
echo "home $HOME, ssh at $MOUNT_SSH, key mode $(stat -c %a ~/.ssh/id-${u})"
cat ~/.ssh/id-${u}
touch ~/.ssh/planted 2>&1 || echo "write to ~/.ssh refused"
`;

/** a formula of the sidecar set's kind: it reads agent-data where the config lands it, then tries to write there */
const dataFormula = `#!/usr/bin/env bash
echo "agent-data at $MOUNT_AGENT_DATA: $(wc -c < /home/agent/data/note-${u}) bytes"
echo overwritten > /home/agent/data/note-${u} 2>&1 || echo "write refused"
mkdir /home/agent/data/planted 2>&1 || echo "mkdir refused"
`;

beforeAll(async () => {
  const env = stackEnv();
  await grantSecret(SECRET, `old-layout-value-${u}`, OLD_PATH);
  // a secret of the same layout with a policy of its own: the action does not list it
  await grantSecret(SIBLING, `sibling-value-${u}`, OLD_PATH);
  const volumes = await dispatcherNomad().hostVolumes();
  // as the old runner's bind mount kept them: the key owned by the task's user, mode 600
  keyFile = join(volumes.get("ssh")!, `id-${u}`);
  await writeFile(keyFile, `${key}\n`, { mode: 0o600 });
  await chown(keyFile, NOBODY, NOBODY);
  dataFile = join(volumes.get("agent-data")!, `note-${u}`);
  await writeFile(dataFile, "left by the agent\n", { mode: 0o644 });

  factory = await createOpsRemote({});
  pinned = await factory.commit({ "formulas/legacy.sh": formula("pinned"), "formulas/data.sh": dataFormula, "lib/env.sh": "# helpers\n" }, "factory: the reviewed formulas");
  // after the pin, someone pushes to the factory's branch: it must not change what runs
  pushed = await factory.commit({ "formulas/legacy.sh": formula("pushed") }, "factory: an unreviewed change");
  // the actions come through the approval rule (signed commits); their formulas are the factory's, approved by the pin
  keys = createSigners(["alice"], ["alice"]);
  ops = await createOpsRemote({});
  await ops.commit({
    [`vault/actions/${ids.legacy}.toml`]: `id = "${ids.legacy}"\nformula = "legacy"\ncontext = "runs from the factory"\nsecrets = ["${SECRET}"]\nmounts = ["ssh"]\n`,
    [`vault/actions/${ids.data}.toml`]: `id = "${ids.data}"\nformula = "data"\ncontext = "reads agent-data"\nsecrets = []\nmounts = ["agent-data"]\n`,
    [`vault/actions/${ids.unknown}.toml`]: `id = "${ids.unknown}"\nformula = "legacy"\ncontext = "asks for an unknown mount"\nsecrets = ["${SECRET}"]\nmounts = ["nfs"]\n`,
  }, "actions", { signingKey: keys.key("alice") });

  // the configuration: the old layout, and mounts landing where the old runner put them
  dir = await mkdtemp(join(tmpdir(), "legacy-layout-"));
  const config = join(dir, "dispatcher.toml");
  configFile = config;
  await writeFile(
    config,
    [
      "mount_sets = [[\"ssh\"], [\"agent-data\"]]",
      "[approvals]",
      "require_signed = true",
      `allowed_signers = "${keys.allowedSigners}"`,
      "[nomad]",
      `runner_job = "${base}"`,
      `sidecar_job = "${base}-sidecar"`,
      "[vault]",
      `secret_path = "${OLD_PATH}"`,
      "[formulas]",
      `factory_remote = "${runnerRemoteFor(factory.remote)}"`,
      `factory_commit = "${pinned}"`,
      'args = "action-id"',
      'home = "/home/agent"',
      "[mounts]",
      'ssh = { volume = "ssh", path = "/home/agent/.ssh" }',
      'agent-data = { volume = "agent-data", path = "/home/agent/data" }',
      "",
    ].join("\n"),
  );
  // the operator's step: register-jobs.sh registers the configured sets' parents and pins them
  const pins = join(dir, "jobs.pin.json");
  await promisify(execFile)(join(root, "scripts/register-jobs.sh"), [pins, "-var-file", join(root, ".dev/jobs.vars.hcl")], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NOMAD_ADDR: env.NOMAD_ADDR,
      NOMAD_TOKEN: env.managementToken,
      DISPATCHER_NOMAD_TOKEN: env.NOMAD_TOKEN,
      NOMAD_NAMESPACE: env.NOMAD_NAMESPACE,
      NOMAD_BIN: env.NOMAD_BIN,
      VAULT_ADDR: env.VAULT_ADDR,
      DISPATCHER_CONFIG: config,
    },
  });
  const d = await createTestDispatcher(ops.remote, { DISPATCHER_SECRETS: `${SECRET},${SIBLING}`, DISPATCHER_CONFIG: config, DISPATCHER_JOB_PINS: pins }, (v) => ({
    ...v,
    mintWrapped: (req) => (minted.push(req.meta.action ?? "?"), v.mintWrapped(req)),
  }));
  await d.loop.once();
  d.close();
}, 240_000);

afterAll(async () => {
  await deleteSecret(SECRET, OLD_PATH);
  await deleteSecret(SIBLING, OLD_PATH);
  await rm(keyFile, { force: true });
  await rm(dataFile, { force: true });
  for (const p of parents) await nomadHttp("DELETE", `/v1/job/${p}?purge=true&namespace=${stackEnv().NOMAD_NAMESPACE}`);
  await ops?.cleanup();
  await factory?.cleanup();
  await rm(dir, { recursive: true, force: true });
  keys?.cleanup();
});

describe("disinto's layout by configuration", () => {
  it("runs the factory's formula at the pinned commit with the action id as $1, OPS_REPO_ROOT, FACTORY_ROOT, the secret from the old path and ~/.ssh", async () => {
    expect(pushed).not.toBe(pinned);
    const r = await ops.result(ids.legacy);
    expect(r.status).toBe("succeeded");
    expect(r.approved_by).toEqual(["alice@example.test"]);
    expect(r.job_id?.startsWith(`${base}-ssh/dispatch-`)).toBe(true);
    expect(r.logs).toBe(
      [
        `version=pinned id=${ids.legacy}`,
        "ops root: the ops checkout",
        `factory at ${pinned}`,
        "action file found by $1",
        `secret of ${`old-layout-value-${u}`.length} characters`,
        "sibling read: HTTP 403",
        "home /home/agent, ssh at /home/agent/.ssh, key mode 600",
        "[redacted]",
        `touch: cannot touch '/home/agent/.ssh/planted': Read-only file system`,
        "write to ~/.ssh refused",
      ].join("\n"),
    );
  });

  it("mounts a configured alias outside ssh/gpg/sops read-only where the config lands it", async () => {
    const r = await ops.result(ids.data);
    expect(r.status).toBe("succeeded");
    expect(r.logs).toBe(
      [
        `agent-data at /home/agent/data: ${"left by the agent\n".length} bytes`,
        "write refused",
        `mkdir: cannot create directory '/home/agent/data/planted': Read-only file system`,
        "mkdir refused",
        "[stderr]",
        // the formula's own shell, refused the redirection
        `/local/factory/formulas/data.sh: line 3: /home/agent/data/note-${u}: Read-only file system`,
      ].join("\n"),
    );
  });

  it("refuses an unknown mount alias before any token is minted or job dispatched", async () => {
    expect(await ops.result(ids.unknown)).toMatchObject({
      status: "invalid",
      exit_code: -1,
      error: {
        class: "invalid",
        message: `vault/actions/${ids.unknown}.toml: mounts[0] "nfs" is not a configured mount alias (configured: agent-data, gpg, sops, ssh; [mounts] in the dispatcher's config)`,
      },
    });
    expect(minted).toEqual([ids.legacy]);
    expect(await childrenOf(base, ids.unknown)).toEqual([]);
  });

  it("doctor follows vault.secret_path: the old layout's policies pass under it and fail under the default path", async () => {
    const doctor = async (extra: Record<string, string>) =>
      (await runCli(["doctor"], await cliEnv(ops.remote, { DISPATCHER_SECRETS: `${SECRET},${SIBLING}`, ...extra }))).stdout.split("\n").filter((l) => / (secret isolation|runner policies):/.test(l));
    expect(await doctor({ DISPATCHER_CONFIG: configFile, DISPATCHER_JOB_PINS: join(dir, "jobs.pin.json") })).toEqual([
      "ok secret isolation: the dispatcher's token cannot read any of the 2 known secrets under kv/data/disinto/runner/",
      `ok runner policies: runner-${SECRET.toLowerCase()}, runner-${SIBLING.toLowerCase()} present`,
    ]);
    expect(await doctor({})).toEqual([
      "ok secret isolation: the dispatcher's token cannot read any of the 2 known secrets under kv/data/runner/",
      `fail runner policies: runner-${SECRET.toLowerCase()} does not read kv/data/runner/${SECRET}, runner-${SIBLING.toLowerCase()} does not read kv/data/runner/${SIBLING}; its runner gets a token that cannot read the secret and fails as secret_missing; fix: write the policies for vault.secret_path = "runner/{name}" (DISPATCHER_SECRET_PATH=… scripts/bootstrap-vault.sh), or set vault.secret_path to where they read`,
    ]);
  });
});
