// What runs is what was approved, on the real stack with SSH-signed commits and real merges: a
// helper changed by an unsigned commit, a formula rolled back and an action resurrected by an
// unsigned merge, and one signer changing the code under a two-person approval. None of them runs
// with the action's secrets; each refusal names the commit.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createSigners, type Signers } from "../helpers/signers.js";
import { childrenOf, createTestDispatcher, deleteSecret, grantSecret, uniq } from "../helpers/stack.js";

const u = uniq();
const SECRET = `DEPLOY_KEY_${u.toUpperCase()}`;
const VALUE = `deploy-key-${u}`;
const ids = { swap: `swap-${u}`, roll: `roll-${u}`, gone: `gone-${u}`, two: `two-${u}`, again: `again-${u}` };
const action = (id: string, formula: string, secrets = "[]") => `id = "${id}"\nformula = "${formula}"\ncontext = "c"\nsecrets = ${secrets}\n`;
const sh = (body: string) => `#!/usr/bin/env bash\n${body}\n`;
let keys: Signers;
let swap: OpsRemote;
let merged: OpsRemote;
let double: OpsRemote;
const minted: string[] = [];
const commits: Record<string, string> = {};

const approves = async (remote: OpsRemote, id: string) => `Approves: vault/actions/${id}.toml@${await remote.blob(`vault/actions/${id}.toml`)}`;

beforeAll(async () => {
  keys = createSigners(["alice", "bob"], ["alice", "bob"]);
  const alice = { signingKey: keys.key("alice") };
  const bob = { signingKey: keys.key("bob") };
  await grantSecret(SECRET, VALUE);

  // helper swap: the approved formula sources a helper; an unsigned commit changes the helper
  swap = await createOpsRemote({ "README.md": "ops\n" });
  await swap.commit(
    {
      "formulas/lib/common.sh": "greet() { echo helper-v1; }\n",
      "formulas/deploy.sh": sh('source "$(dirname "$0")/lib/common.sh"\ngreet'),
      [`vault/actions/${ids.swap}.toml`]: action(ids.swap, "deploy", `["${SECRET}"]`),
    },
    "deploy, reviewed",
    alice,
  );
  commits.swap = await swap.commit({ "formulas/lib/common.sh": `greet() { echo "stolen:$(printf %s "$${SECRET}" | base64)"; }\n` }, "tidy the helper");

  // rollback and resurrection by merge: unsigned merges whose second parent is an older signed commit
  merged = await createOpsRemote({ "README.md": "ops\n" });
  const v1 = await merged.commit({ "formulas/roll.sh": sh("echo roll-v1-vulnerable"), "formulas/hello.sh": sh("echo gone ran") }, "roll v1", alice);
  await merged.commit({ "formulas/roll.sh": sh("echo roll-v2-fixed") }, "roll v2: the fix", alice);
  await merged.commit({ [`vault/actions/${ids.roll}.toml`]: action(ids.roll, "roll", `["${SECRET}"]`) }, "run roll", alice);
  const before = await merged.commit({ [`vault/actions/${ids.gone}.toml`]: action(ids.gone, "hello", `["${SECRET}"]`) }, "gone, to be withdrawn", alice);
  await merged.commit({ [`vault/actions/${ids.gone}.toml`]: null }, "withdraw gone", alice);
  commits.roll = await merged.merge(v1, { "formulas/roll.sh": sh("echo roll-v1-vulnerable") }, "Merge branch 'old'");
  commits.gone = await merged.merge(before, { [`vault/actions/${ids.gone}.toml`]: action(ids.gone, "hello", `["${SECRET}"]`) }, "Merge branch 'older'");

  // approvals = 2: both approve two actions, then one signer alone changes the formula; the other
  // approves only `again` once more
  double = await createOpsRemote({ "README.md": "ops\n" });
  await double.commit({ "formulas/hello.sh": sh("echo code-v1") }, "formulas", alice);
  await double.commit({ [`vault/actions/${ids.two}.toml`]: action(ids.two, "hello", `["${SECRET}"]`), [`vault/actions/${ids.again}.toml`]: action(ids.again, "hello") }, "two actions", alice);
  await double.commit({}, "approve", { ...bob, trailers: [await approves(double, ids.two), await approves(double, ids.again)] });
  commits.two = await double.commit({ "formulas/hello.sh": sh("echo code-v2-alice-alone") }, "formula v2", alice);
  await double.commit({}, "approve again", { ...bob, trailers: [await approves(double, ids.again)] });

  const count = (v: Parameters<NonNullable<Parameters<typeof createTestDispatcher>[2]>>[0]) => ({
    ...v,
    mintWrapped: (req: Parameters<typeof v.mintWrapped>[0]) => (minted.push(req.meta.action ?? "?"), v.mintWrapped(req)),
  });
  const signed = { DISPATCHER_REQUIRE_SIGNED: "true", DISPATCHER_ALLOWED_SIGNERS: keys.allowedSigners, DISPATCHER_SECRETS: SECRET };
  await (await createTestDispatcher(swap.remote, signed, count)).loop.once();
  await (await createTestDispatcher(merged.remote, signed, count)).loop.once();
  await (await createTestDispatcher(double.remote, { ...signed, DISPATCHER_APPROVALS: "2" }, count)).loop.once();
}, 240_000);

afterAll(async () => {
  await deleteSecret(SECRET);
  await swap?.cleanup();
  await merged?.cleanup();
  await double?.cleanup();
  keys?.cleanup();
});

describe("the approval covers everything the runner checks out", () => {
  it("refuses an action whose formula's helper an unsigned commit changed, naming the commit; nothing minted, no job", async () => {
    const r = await swap.result(ids.swap);
    expect(r.error).toEqual({
      class: "unapproved",
      message: `vault/actions/${ids.swap}.toml: everything outside vault/actions/ was last changed by commit ${commits.swap!.slice(0, 12)}, which is not signed (require_signed: sign it with a key in ${keys.allowedSigners}, or approve the action at this code with a signed commit carrying the trailer "${await approves(swap, ids.swap)}")`,
    });
    expect(r.logs).not.toContain("stolen");
    expect(minted).not.toContain(ids.swap);
    expect(await childrenOf("runner", ids.swap)).toEqual([]);
  });
});

describe("a merge cannot hide a change (history read along first parents)", () => {
  it("refuses a formula rolled back to an older signed version by an unsigned merge", async () => {
    const r = await merged.result(ids.roll);
    expect(r.error).toEqual({
      class: "unapproved",
      message: `vault/actions/${ids.roll}.toml: its formula formulas/roll.sh was last changed by commit ${commits.roll!.slice(0, 12)}, which is not signed (require_signed: sign it with a key in ${keys.allowedSigners})`,
    });
    expect(r.logs).not.toContain("roll-v1");
    expect(minted).not.toContain(ids.roll);
  });

  it("refuses an approved action a signer deleted and an unsigned merge brought back", async () => {
    const r = await merged.result(ids.gone);
    expect(r.error).toEqual({
      class: "unapproved",
      message: `vault/actions/${ids.gone}.toml: last changed by commit ${commits.gone!.slice(0, 12)}, which is not signed (require_signed: sign it with a key in ${keys.allowedSigners})`,
    });
    expect(r.logs).not.toContain("gone ran");
    expect(minted).not.toContain(ids.gone);
  });
});

describe("approvals = 2 bind the code as well as the action file", () => {
  it("refuses an action whose formula one signer changed after both approved it", async () => {
    const r = await double.result(ids.two);
    expect(r.error).toEqual({
      class: "unapproved",
      message: `vault/actions/${ids.two}.toml: 1 of 2 approvals since commit ${commits.two!.slice(0, 12)} changed everything outside vault/actions/ (alice@example.test); another allowed signer approves it with a signed commit carrying the trailer "${await approves(double, ids.two)}"`,
    });
    expect(r.logs).not.toContain("code-v2");
    expect(minted).not.toContain(ids.two);
  });

  it("runs the new code once a second signer approves again", async () => {
    expect(await double.result(ids.again)).toMatchObject({ status: "succeeded", logs: "code-v2-alice-alone", approved_by: ["alice@example.test", "bob@example.test"] });
  });
});
