import { describe, expect, it } from "vitest";
import { approvalOf, type ApprovalRule } from "../../../dispatcher/core/approval.js";
import type { CommitSignature, Provenance } from "../../../dispatcher/core/ports.js";

const rule: ApprovalRule = { allowedSigners: "/etc/dispatcher/allowed_signers", approvals: 1 };
const good = (commit: string, signer: string, approves: string[] = []): CommitSignature => ({ commit, status: "good", signer, key: "SHA256:k", approves });
const action = (last: CommitSignature | undefined, later: CommitSignature[] = []): Provenance => ({ path: "vault/actions/a.toml", last, later });
const formula = (last: CommitSignature): Provenance => ({ path: "formulas/f.sh", last, later: [] });
const C1 = "1111111111111111111111111111111111111111";
const C2 = "2222222222222222222222222222222222222222";

describe("approvalOf", () => {
  it("accepts an action and formula last changed by allowed signers, and names them", () => {
    expect(approvalOf(action(good(C1, "alice@x")), "blob1", formula(good(C2, "bob@x")), rule)).toEqual({ ok: true, signers: ["alice@x"] });
  });

  it("refuses an unsigned action, naming the commit and the file to sign with", () => {
    expect(approvalOf(action({ commit: C1, status: "unsigned", approves: [] }), "blob1", formula(good(C2, "bob@x")), rule)).toEqual({
      ok: false,
      problem: "last changed by commit 111111111111, which is not signed (require_signed: sign it with a key in /etc/dispatcher/allowed_signers)",
    });
  });

  it("refuses a signer not allowed, naming its key", () => {
    expect(approvalOf(action({ commit: C1, status: "unknown_key", key: "SHA256:evil", approves: [] }), "blob1", formula(good(C2, "bob@x")), rule)).toEqual({
      ok: false,
      problem: "last changed by commit 111111111111, signed by key SHA256:evil, which is not in /etc/dispatcher/allowed_signers",
    });
  });

  it("refuses a signed action whose formula was changed by an unsigned commit", () => {
    expect(approvalOf(action(good(C1, "alice@x")), "blob1", formula({ commit: C2, status: "unsigned", approves: [] }), rule)).toEqual({
      ok: false,
      problem: "its formula formulas/f.sh was last changed by commit 222222222222, which is not signed (require_signed: sign it with a key in /etc/dispatcher/allowed_signers)",
    });
  });

  it("counts distinct allowed signers approving exactly this content", () => {
    const two = { ...rule, approvals: 2 };
    const later = [
      good("3", "alice@x", ["vault/actions/a.toml@blob1"]), // the author again: not a second signer
      good("4", "carol@x", ["vault/actions/a.toml@old-blob"]), // another content
      { commit: "5", status: "unknown_key" as const, key: "SHA256:m", approves: ["vault/actions/a.toml@blob1"] },
    ];
    expect(approvalOf(action(good(C1, "alice@x"), later), "blob1", formula(good(C2, "bob@x")), two)).toEqual({
      ok: false,
      problem: '1 of 2 approvals (alice@x); another allowed signer approves it with a signed commit carrying the trailer "Approves: vault/actions/a.toml@blob1"',
    });
    const approved = [...later, good("6", "bob@x", ["vault/actions/a.toml@blob1"])];
    expect(approvalOf(action(good(C1, "alice@x"), approved), "blob1", formula(good(C2, "bob@x")), two)).toEqual({ ok: true, signers: ["alice@x", "bob@x"] });
  });

  describe("with the code outside vault/actions/ (the approval binds it too)", () => {
    const C3 = "3333333333333333333333333333333333333333";
    const at = (p: Provenance, distance: number): Provenance => ({ ...p, distance });
    const code = (last: CommitSignature, distance: number, later: CommitSignature[] = []): Provenance => ({ path: "everything outside vault/actions/", last, later, distance });
    const unsigned = { commit: C3, status: "unsigned" as const, approves: [] };
    const trailer = 'a signed commit carrying the trailer "Approves: vault/actions/a.toml@blob1"';

    it("refuses an action whose code an unsigned commit changed after its approval, naming the commit", () => {
      expect(approvalOf(at(action(good(C1, "alice@x")), 3), "blob1", formula(good(C2, "bob@x")), rule, code(unsigned, 1))).toEqual({
        ok: false,
        problem: `everything outside vault/actions/ was last changed by commit 333333333333, which is not signed (require_signed: sign it with a key in /etc/dispatcher/allowed_signers, or approve the action at this code with ${trailer})`,
      });
    });

    it("accepts it when the action's signed change is newer than the code's (the signer signed that tree)", () => {
      expect(approvalOf(at(action(good(C1, "alice@x")), 1), "blob1", formula(good(C2, "bob@x")), rule, code(unsigned, 3))).toEqual({ ok: true, signers: ["alice@x"] });
    });

    it("accepts an approval given after the code changed, and the signed code change itself", () => {
      const approvedAfter = code(unsigned, 1, [good("4", "bob@x", ["vault/actions/a.toml@blob1"])]);
      expect(approvalOf(at(action(good(C1, "alice@x")), 3), "blob1", formula(good(C2, "bob@x")), rule, approvedAfter)).toEqual({ ok: true, signers: ["bob@x"] });
      expect(approvalOf(at(action(good(C1, "alice@x")), 3), "blob1", formula(good(C2, "bob@x")), rule, code(good(C3, "carol@x"), 1))).toEqual({ ok: true, signers: ["carol@x"] });
    });

    it("with approvals = 2, voids both approvals when one signer alone changes the code, until another approves again", () => {
      const two = { ...rule, approvals: 2 };
      const both = at(action(good(C1, "alice@x"), [good("4", "bob@x", ["vault/actions/a.toml@blob1"])]), 3);
      expect(approvalOf(both, "blob1", formula(good(C2, "bob@x")), two, code(good(C3, "alice@x"), 1))).toEqual({
        ok: false,
        problem: `1 of 2 approvals since commit 333333333333 changed everything outside vault/actions/ (alice@x); another allowed signer approves it with ${trailer}`,
      });
      const again = code(good(C3, "alice@x"), 1, [good("5", "bob@x", ["vault/actions/a.toml@blob1"])]);
      expect(approvalOf(both, "blob1", formula(good(C2, "bob@x")), two, again)).toEqual({ ok: true, signers: ["alice@x", "bob@x"] });
      expect(approvalOf(both, "blob1", formula(good(C2, "bob@x")), two, code(unsigned, 1)).ok).toBe(false);
    });
  });

  it("with formulas pinned in a factory repository, does not judge the ops repo's formulas/ (the pin approves them)", () => {
    const absent: Provenance = { path: "formulas/f.sh", last: undefined, later: [] };
    expect(approvalOf(action(good(C1, "alice@x")), "blob1", absent, rule)).toEqual({ ok: false, problem: "its formula formulas/f.sh was no commit added it" });
    expect(approvalOf(action(good(C1, "alice@x")), "blob1", absent, { ...rule, formulasPinned: true })).toEqual({ ok: true, signers: ["alice@x"] });
  });
});
