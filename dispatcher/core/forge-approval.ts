// The forge's merge as a gate ([approvals] provider = "forge"): an action runs only when the commit
// that brought its file to the branch, the one that brought its formula, and the one that last
// changed anything outside the actions folder (the code the runner checks out: a helper the formula
// sources is code too) (each along first parents) are merges of pull requests into the watched
// branch, each with at least N approving
// reviews from configured approvers, none by the pull request's author, each on the pull
// request's final head (a push after an approval leaves that approval on an older commit: it does
// not count). A direct push is refused, unless the action says dispatch_mode = "direct" and the
// config lets its formula bypass. Pure: the forge's answers are read by the adapter.
import { codeLabel, readApproval, type ApprovalRule, type ApprovalVerdict } from "./approval.js";
import type { ForgeGatePort, OpsRepoPort } from "./ports.js";

export interface ForgeApprovalRule {
  /** forge user names whose approving reviews count */
  approvers: readonly string[];
  /** distinct approvers needed */
  count: number;
  /** formulas whose actions may run from a direct push when they say dispatch_mode = "direct" */
  directFormulas: readonly string[];
  /** the actions folder; everything outside it is the code an action runs (default vault/actions) */
  actionsDir?: string;
  /** formulas come from the factory repository at the commit the config pins: the pin approves them, the ops repo's formulas/ is not judged */
  formulasPinned?: boolean;
}

export interface ForgeReview {
  user: string;
  /** APPROVED, REQUEST_CHANGES, COMMENT, … as the forge names them */
  state: string;
  /** the pull request's head when the review was given */
  commit: string;
  dismissed: boolean;
}

/** The pull request a commit merged, with its reviews. */
export interface MergedPullRequest {
  number: number;
  author: string;
  /** the head commit that was merged */
  head: string;
  reviews: ForgeReview[];
}

/** What brought one path (the action file or its formula) to the branch. */
export interface ForgeChange {
  path: string;
  /** the commit that last changed it along first parents; undefined when none did */
  commit?: string;
  /** the pull request that commit merged; undefined for a direct push */
  pr?: MergedPullRequest;
}

function short(commit: string): string {
  return commit.slice(0, 12);
}

/** The distinct approvers of `pr` that count, sorted. */
export function approversOf(pr: MergedPullRequest, rule: ForgeApprovalRule): string[] {
  const allowed = new Set(rule.approvers);
  const who = pr.reviews.filter((r) => r.state === "APPROVED" && !r.dismissed && r.commit === pr.head && r.user !== pr.author && allowed.has(r.user)).map((r) => r.user);
  return [...new Set(who)].sort();
}

function changeProblem(what: string, c: ForgeChange, rule: ForgeApprovalRule): string | undefined {
  if (!c.commit) return `${what}no commit added it`;
  if (!c.pr) return `${what}last changed by commit ${short(c.commit)}, a direct push, not a merged pull request`;
  const ok = approversOf(c.pr, rule);
  if (ok.length >= rule.count) return undefined;
  const stale = [...new Set(c.pr.reviews.filter((r) => r.state === "APPROVED" && !r.dismissed && r.commit !== c.pr!.head).map((r) => r.user))].sort();
  const byAuthor = c.pr.reviews.some((r) => r.state === "APPROVED" && r.user === c.pr!.author);
  const notes = [
    ...(stale.length > 0 ? [`approvals by ${stale.join(", ")} are on an older commit than the merged head ${short(c.pr.head)} (pushed after approval)`] : []),
    ...(byAuthor ? [`the author ${c.pr.author}'s own approval does not count`] : []),
  ];
  return `${what}last changed by commit ${short(c.commit)}, the merge of pull request #${c.pr.number} by ${c.pr.author}, with ${ok.length} of ${rule.count} approvals from ${rule.approvers.join(", ")}${ok.length > 0 ? ` (${ok.join(", ")})` : ""}${notes.length > 0 ? `; ${notes.join("; ")}` : ""}`;
}

/**
 * Pure: may the action run, and who approved it (the approvers of the action file's pull request).
 * `code`: what last changed everything outside the actions folder; without it only the action file
 * and its formula are judged.
 */
export function forgeApprovalOf(action: ForgeChange, formula: ForgeChange, rule: ForgeApprovalRule, direct: { mode?: "pr" | "direct"; formula: string }, code?: ForgeChange): ApprovalVerdict {
  if (direct.mode === "direct" && rule.directFormulas.includes(direct.formula)) {
    // the escape hatch, named by the action and allowed for its formula by the config
    return { ok: true, signers: action.pr ? approversOf(action.pr, rule) : [] };
  }
  const problem =
    changeProblem("", action, rule) ??
    (rule.formulasPinned ? undefined : changeProblem(`its formula ${formula.path} was `, formula, rule)) ??
    // a code change with no commit at all (a tree of action files alone) leaves nothing to judge
    (code?.commit ? changeProblem(`${code.path} was `, code, rule) : undefined);
  if (problem) return { ok: false, problem };
  return { ok: true, signers: approversOf(action.pr!, rule) };
}

/** The verdict on an action file at `commit`: what brought it and its formula, and their pull requests. */
export async function readForgeApproval(gate: ForgeGatePort, rule: ForgeApprovalRule, commit: string, file: { path: string }, action: { formula: string; dispatch_mode?: "pr" | "direct" }): Promise<ApprovalVerdict> {
  const changeOf = async (path: string, outside?: string): Promise<ForgeChange> => {
    const last = await gate.lastChange(commit, path, outside);
    if (!last) return { path };
    const pr = await gate.mergedPullRequestReviews(last);
    return { path, commit: last, ...(pr ? { pr } : {}) };
  };
  const dir = (rule.actionsDir ?? "vault/actions").replace(/\/+$/, "");
  const [a, f, code] = await Promise.all([changeOf(file.path), changeOf(`formulas/${action.formula}.sh`), changeOf(codeLabel(dir), dir)]);
  return forgeApprovalOf(a, f, rule, { mode: action.dispatch_mode, formula: action.formula }, code);
}

/** The verdict of whichever rule is configured: signed commits, or the forge's approved merges. */
export function readRuleApproval(
  rule: ApprovalRule | ForgeApprovalRule,
  src: { repo: Pick<OpsRepoPort, "provenance">; gate?: ForgeGatePort },
  commit: string,
  file: { path: string; sha: string },
  action: { formula: string; dispatch_mode?: "pr" | "direct" },
): Promise<ApprovalVerdict> {
  return "approvers" in rule ? readForgeApproval(src.gate!, rule, commit, file, action) : readApproval(src.repo, rule, commit, file, action.formula);
}
