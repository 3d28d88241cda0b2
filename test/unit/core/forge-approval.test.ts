import { describe, expect, it } from "vitest";
import { forgeApprovalOf, type ForgeChange, type ForgeReview, type MergedPullRequest } from "../../../dispatcher/core/forge-approval.js";

const head = "h".repeat(40);
const rule = { approvers: ["alice", "bob", "carol"], count: 1, directFormulas: ["hotfix"] };
const review = (user: string, over: Partial<ForgeReview> = {}): ForgeReview => ({ user, state: "APPROVED", commit: head, dismissed: false, ...over });
const pr = (reviews: ForgeReview[], over: Partial<MergedPullRequest> = {}): MergedPullRequest => ({ number: 4, author: "alice", head, reviews, ...over });
const change = (p?: MergedPullRequest, path = "vault/actions/x.toml"): ForgeChange => ({ path, commit: "m".repeat(40), ...(p ? { pr: p } : {}) });
const formula = (p?: MergedPullRequest) => change(p ?? pr([review("bob")]), "formulas/release.sh");
const pr_ = { formula: "release" };

describe("forgeApprovalOf", () => {
  it("runs a merged pull request approved on its head by an approver who is not the author; approved_by names them", () => {
    expect(forgeApprovalOf(change(pr([review("bob"), review("carol")])), formula(pr([review("bob"), review("carol")])), { ...rule, count: 2 }, pr_)).toEqual({ ok: true, signers: ["bob", "carol"] });
  });

  it("refuses a merge without approvals, naming the commit, the pull request and what is missing", () => {
    expect(forgeApprovalOf(change(pr([])), formula(), rule, pr_)).toEqual({ ok: false, problem: "last changed by commit mmmmmmmmmmmm, the merge of pull request #4 by alice, with 0 of 1 approvals from alice, bob, carol" });
  });

  it("does not count the author's own approval, nor one by someone not an approver, nor a dismissed one", () => {
    const v = forgeApprovalOf(change(pr([review("alice"), review("mallory"), review("carol", { dismissed: true }), review("bob", { state: "REQUEST_CHANGES" })])), formula(), rule, pr_);
    expect(v).toEqual({ ok: false, problem: "last changed by commit mmmmmmmmmmmm, the merge of pull request #4 by alice, with 0 of 1 approvals from alice, bob, carol; the author alice's own approval does not count" });
  });

  it("refuses an approval given before a later push (on an older head)", () => {
    const v = forgeApprovalOf(change(pr([review("bob", { commit: "o".repeat(40) })])), formula(), rule, pr_);
    expect(v).toEqual({ ok: false, problem: "last changed by commit mmmmmmmmmmmm, the merge of pull request #4 by alice, with 0 of 1 approvals from alice, bob, carol; approvals by bob are on an older commit than the merged head hhhhhhhhhhhh (pushed after approval)" });
  });

  it("refuses a direct push, of the action or of its formula", () => {
    expect(forgeApprovalOf(change(), formula(), rule, pr_)).toEqual({ ok: false, problem: "last changed by commit mmmmmmmmmmmm, a direct push, not a merged pull request" });
    expect(forgeApprovalOf(change(pr([review("bob")])), { path: "formulas/release.sh", commit: "d".repeat(40) }, rule, pr_)).toEqual({
      ok: false,
      problem: "its formula formulas/release.sh was last changed by commit dddddddddddd, a direct push, not a merged pull request",
    });
  });

  it("refuses an action whose code (everything outside the actions folder) was last changed by a direct push or an unapproved merge", () => {
    const approved = pr([review("bob")]);
    const code = (p?: MergedPullRequest) => ({ ...change(p, "everything outside vault/actions/"), commit: "c".repeat(40) });
    expect(forgeApprovalOf(change(approved), formula(approved), rule, pr_, code())).toEqual({
      ok: false,
      problem: "everything outside vault/actions/ was last changed by commit cccccccccccc, a direct push, not a merged pull request",
    });
    expect(forgeApprovalOf(change(approved), formula(approved), rule, pr_, code(pr([], { number: 9 })))).toEqual({
      ok: false,
      problem: "everything outside vault/actions/ was last changed by commit cccccccccccc, the merge of pull request #9 by alice, with 0 of 1 approvals from alice, bob, carol",
    });
    expect(forgeApprovalOf(change(approved), formula(approved), rule, pr_, code(approved))).toEqual({ ok: true, signers: ["bob"] });
    // a tree with nothing outside the actions folder has no code commit to judge
    expect(forgeApprovalOf(change(approved), formula(approved), rule, pr_, { path: "everything outside vault/actions/" })).toEqual({ ok: true, signers: ["bob"] });
  });

  it("lets a direct push through only with dispatch_mode = direct and a formula the config allows", () => {
    expect(forgeApprovalOf(change(), formula(), rule, { mode: "direct", formula: "hotfix" })).toEqual({ ok: true, signers: [] });
    expect(forgeApprovalOf(change(), formula(), rule, { mode: "direct", formula: "release" }).ok).toBe(false);
    expect(forgeApprovalOf(change(), formula(), rule, { mode: "pr", formula: "hotfix" }).ok).toBe(false);
  });

  it("with formulas pinned in a factory repository, does not judge the ops repo's formulas/ (the pin approves them)", () => {
    const absent: ForgeChange = { path: "formulas/release.sh" };
    expect(forgeApprovalOf(change(pr([review("bob")])), absent, rule, pr_)).toEqual({ ok: false, problem: "its formula formulas/release.sh was no commit added it" });
    expect(forgeApprovalOf(change(pr([review("bob")])), absent, { ...rule, formulasPinned: true }, pr_)).toEqual({ ok: true, signers: ["bob"] });
    expect(forgeApprovalOf(change(pr([])), absent, { ...rule, formulasPinned: true }, pr_).ok).toBe(false);
  });
});
