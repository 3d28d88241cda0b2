import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Deferred } from "../../../dispatcher/errors.js";
import { createSignatureBudget, readProvenance, signatureChecks } from "../../../dispatcher/opsrepo/provenance.js";
import { createOpsRemote, type OpsRemote } from "../../helpers/gitrepo.js";
import { createSigners, type Signers } from "../../helpers/signers.js";

let remote: OpsRemote;
let keys: Signers;
let tips: Record<string, string>;
/** a budget no test here spends */
const ample = createSignatureBudget(Number.POSITIVE_INFINITY);

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
    const p = await readProvenance(remote.remote, tips.unsigned!, "vault/actions/a.toml", keys.allowedSigners, ample);
    expect(p.last).toMatchObject({ commit: tips.alice, status: "good", signer: "alice@example.test", approves: [] });
    // only commits carrying Approves trailers are listed (and verified); the others are counted
    expect(p.later.map((c) => [c.commit, c.status, c.signer ?? null, c.approves])).toEqual([[tips.bob, "good", "bob@example.test", ["vault/actions/a.toml@blob1"]]]);
    expect(p.distance).toBe(3);
  });

  it("reads a merge as a change against its first parent: a rollback to an older signed version is the merge's", async () => {
    const r = await createOpsRemote({ "formulas/f.sh": "v0\n" });
    try {
      const v1 = await r.commit({ "formulas/f.sh": "v1\n" }, "v1", { signingKey: keys.key("alice") });
      await r.commit({ "formulas/f.sh": "v2 fix\n" }, "v2", { signingKey: keys.key("alice") });
      const merge = await r.merge(v1, { "formulas/f.sh": "v1\n" }, "merge old");
      const tip = await r.commit({ "vault/actions/x.toml": "x\n" }, "an action", { signingKey: keys.key("alice") });
      const f = await readProvenance(r.remote, tip, "formulas/f.sh", keys.allowedSigners, ample);
      expect(f.last).toEqual({ commit: merge, status: "unsigned", approves: [] });
      expect(f.distance).toBe(1);
      // everything outside vault/actions/: the action's commit does not count, the merge does
      const code = await readProvenance(r.remote, tip, "everything outside vault/actions/", keys.allowedSigners, ample, "vault/actions");
      expect(code).toEqual({ path: "everything outside vault/actions/", last: { commit: merge, status: "unsigned", approves: [] }, later: [], distance: 1 });
    } finally {
      await r.cleanup();
    }
  });

  it("checks each commit's signature once per process", async () => {
    await readProvenance(remote.remote, tips.unsigned!, "vault/actions/m.toml", keys.allowedSigners, ample);
    const before = signatureChecks();
    await readProvenance(remote.remote, tips.unsigned!, "vault/actions/m.toml", keys.allowedSigners, ample);
    await readProvenance(remote.remote, tips.mallory!, "vault/actions/m.toml", keys.allowedSigners, ample);
    expect(signatureChecks()).toBe(before);
  });

  it("tells a key not in the allowed-signers file from no signature at all", async () => {
    const m = await readProvenance(remote.remote, tips.unsigned!, "vault/actions/m.toml", keys.allowedSigners, ample);
    expect(m.last).toMatchObject({ commit: tips.mallory, status: "unknown_key", key: expect.stringMatching(/^SHA256:/) });
    const u = await readProvenance(remote.remote, tips.unsigned!, "vault/actions/u.toml", keys.allowedSigners, ample);
    expect(u).toEqual({ path: "vault/actions/u.toml", last: { commit: tips.unsigned, status: "unsigned", approves: [] }, later: [] });
  });

  it("has no last commit for a path no commit added", async () => {
    expect(await readProvenance(remote.remote, tips.unsigned!, "formulas/none.sh", keys.allowedSigners, ample)).toEqual({ path: "formulas/none.sh", later: [] });
  });

  it("checks at most its budget of signatures, then defers: the next budget checks on from the cache", async () => {
    const r = await createOpsRemote({ "vault/actions/h.toml": "x\n" });
    try {
      // five commits by a key nobody allowed, each claiming to approve h: all must be checked
      let tip = "";
      for (let i = 0; i < 5; i++) tip = await r.commit({ [`notes/${i}`]: `${i}\n` }, `approve ${i}`, { signingKey: keys.key("mallory"), trailers: ["Approves: vault/actions/h.toml@b"] });
      const budget = createSignatureBudget(2);
      const before = signatureChecks();
      const read = () => readProvenance(r.remote, tip, "vault/actions/h.toml", keys.allowedSigners, budget);
      await expect(read()).rejects.toThrow(new Deferred("commit signatures: this pass checked the 2 it may (approvals.signature_checks_per_pass); 4 more signed commits of this history are checked by the next passes, each once"));
      expect(signatureChecks() - before).toBe(2);
      budget.left = budget.perPass;
      await expect(read()).rejects.toThrow("2 more signed commits of this history");
      budget.left = budget.perPass;
      const p = await read();
      expect(signatureChecks() - before).toBe(6);
      expect(p.later.map((c) => c.status)).toEqual(["unknown_key", "unknown_key", "unknown_key", "unknown_key", "unknown_key"]);
      expect(p.last).toMatchObject({ status: "unsigned" });
    } finally {
      await r.cleanup();
    }
  });
});
