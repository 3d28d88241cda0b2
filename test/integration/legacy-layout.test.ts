// disinto's layout with configuration only: secrets at kv/data/disinto/runner/<NAME>
// (vault.secret_path), formulas in a factory repository pinned by commit (formulas.factory_remote,
// factory_commit) and called as `bash formulas/<f>.sh <action-id>` (formulas.args = "action-id")
// with OPS_REPO_ROOT and FACTORY_ROOT. Attacks: the formula's token reads a sibling secret of the
// old layout; a push to the factory's branch tries to change what runs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createTestDispatcher, deleteSecret, grantSecret, runnerRemoteFor, uniq } from "../helpers/stack.js";

const OLD_PATH = "disinto/runner/{name}";
const u = uniq();
const SECRET = `OLD_${u.toUpperCase()}`;
const SIBLING = `SIBLING_${u.toUpperCase()}`;
const id = `legacy-${u}`;
let ops: OpsRemote;
let factory: OpsRemote;
let pinned: string;
let pushed: string;

/** the formula as disinto's factory holds it: the action id as $1, the old variables, and an attack on a sibling secret */
const formula = (version: string) => `#!/usr/bin/env bash
set -eu
echo "version=${version} id=$1"
[ "$OPS_REPO_ROOT" = "$OPS_REPO_DIR" ] && echo "ops root: the ops checkout"
echo "factory at $(git -C "$FACTORY_ROOT" rev-parse HEAD)"
grep -q "id = \\"$1\\"" "$OPS_REPO_ROOT/vault/actions/$1.toml" && echo "action file found by \\$1"
echo "secret of \${#${SECRET}} characters"
node -e 'fetch(process.env.VAULT_ADDR + "/v1/kv/data/disinto/runner/" + process.argv[1], { headers: { "X-Vault-Token": process.env.VAULT_TOKEN } }).then((r) => console.log("sibling read: HTTP " + r.status))' ${SIBLING}
`;

beforeAll(async () => {
  await grantSecret(SECRET, `old-layout-value-${u}`, OLD_PATH);
  // a secret of the same layout with a policy of its own: the action does not list it
  await grantSecret(SIBLING, `sibling-value-${u}`, OLD_PATH);
  factory = await createOpsRemote({});
  pinned = await factory.commit({ "formulas/legacy.sh": formula("pinned"), "lib/env.sh": "# helpers\n" }, "factory: the reviewed formulas");
  // after the pin, someone pushes to the factory's branch: it must not change what runs
  pushed = await factory.commit({ "formulas/legacy.sh": formula("pushed") }, "factory: an unreviewed change");
  ops = await createOpsRemote({
    [`vault/actions/${id}.toml`]: `id = "${id}"\nformula = "legacy"\ncontext = "runs from the factory"\nsecrets = ["${SECRET}"]\n`,
  });
  const d = await createTestDispatcher(ops.remote, {
    DISPATCHER_SECRETS: `${SECRET},${SIBLING}`,
    DISPATCHER_SECRET_PATH: OLD_PATH,
    DISPATCHER_FACTORY_REMOTE: runnerRemoteFor(factory.remote),
    DISPATCHER_FACTORY_COMMIT: pinned,
    DISPATCHER_FORMULA_ARGS: "action-id",
  });
  await d.loop.once();
  d.close();
}, 180_000);

afterAll(async () => {
  await deleteSecret(SECRET, OLD_PATH);
  await deleteSecret(SIBLING, OLD_PATH);
  await ops?.cleanup();
  await factory?.cleanup();
});

describe("disinto's layout by configuration", () => {
  it("runs the factory's formula at the pinned commit with the action id as $1, OPS_REPO_ROOT and FACTORY_ROOT, and the secret from the old path", async () => {
    expect(pushed).not.toBe(pinned);
    const r = await ops.result(id);
    expect(r.status).toBe("succeeded");
    expect(r.logs).toBe(
      [
        `version=pinned id=${id}`,
        "ops root: the ops checkout",
        `factory at ${pinned}`,
        "action file found by $1",
        `secret of ${`old-layout-value-${u}`.length} characters`,
        "sibling read: HTTP 403",
      ].join("\n"),
    );
  });
});
