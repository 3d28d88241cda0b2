import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readProvenance } from "../../../dispatcher/opsrepo/provenance.js";
import { createOpsRemote, type OpsRemote } from "../../helpers/gitrepo.js";
import { createSigners, type Signers } from "../../helpers/signers.js";

let remote: OpsRemote;
let keys: Signers;
let tips: Record<string, string>;

beforeAll(async () => {
  keys = createSigners(["alice", "bob", "mallory"], ["alice", "bob"]);
  remote = await createOpsRemote({ "README.md": "ops\n" });
  tips = {
    alice: await remote.commit({ "vault/actions/a.toml": "x\n" }, "add a", { signingKey: keys.key("alice") }),
    bob: await remote.commit({}, "approve a", { signingKey: keys.key("bob"), trailers: ["Approves: vault/actions/a.toml@blob1"] }),
    mallory: await remote.commit({ "vault/actions/m.toml": "x\n" }, "add m", { signingKey: keys.key("mallory") }),
    unsigned: await remote.commit({ "vault/actions/u.toml": "x\n" }, "add u"),
  };
});

afterAll(async () => {
  await remote?.cleanup();
  keys?.cleanup();
});

describe("readProvenance", () => {
  it("finds the commit that last changed a path, its allowed signer, and the signed approvals after it", async () => {
    const p = await readProvenance(remote.remote, tips.unsigned!, "vault/actions/a.toml", keys.allowedSigners);
    expect(p.last).toMatchObject({ commit: tips.alice, status: "good", signer: "alice@example.test", approves: [] });
    expect(p.later.map((c) => [c.commit, c.status, c.signer ?? null, c.approves])).toEqual([
      [tips.unsigned, "unsigned", null, []],
      [tips.mallory, "unknown_key", null, []],
      [tips.bob, "good", "bob@example.test", ["vault/actions/a.toml@blob1"]],
    ]);
  });

  it("tells a key not in the allowed-signers file from no signature at all", async () => {
    const m = await readProvenance(remote.remote, tips.unsigned!, "vault/actions/m.toml", keys.allowedSigners);
    expect(m.last).toMatchObject({ commit: tips.mallory, status: "unknown_key", key: expect.stringMatching(/^SHA256:/) });
    const u = await readProvenance(remote.remote, tips.unsigned!, "vault/actions/u.toml", keys.allowedSigners);
    expect(u).toEqual({ path: "vault/actions/u.toml", last: { commit: tips.unsigned, status: "unsigned", approves: [] }, later: [] });
  });

  it("has no last commit for a path no commit added", async () => {
    expect(await readProvenance(remote.remote, tips.unsigned!, "formulas/none.sh", keys.allowedSigners)).toEqual({ path: "formulas/none.sh", later: [] });
  });
});
