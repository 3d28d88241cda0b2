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
});
