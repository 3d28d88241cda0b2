import type { Refusal } from "./catalog.js";
import type { CommitSignature, OpsRepoPort, Provenance } from "./ports.js";

// Who may trigger what: with require_signed, an action runs only when the commit that last
// changed its file and the one that last changed its formula are signed by allowed keys (so no
// later unsigned commit changed either), and, with approvals = N, N distinct allowed signers
// approved this very content: the author's commit plus signed commits after it carrying the
// trailer "Approves: <action path>@<blob>". Pure but readApproval: the git reading is the ops
// repo adapter's.

export interface ApprovalRule {
  /** the allowed-signers file (gpg.ssh.allowedSignersFile format), named in messages */
  allowedSigners: string;
  /** distinct allowed signers needed for the action file (1: its author's signed commit) */
  approvals: number;
}

export type ApprovalVerdict = { ok: true; signers: string[] } | { ok: false; problem: string };

function short(c: CommitSignature): string {
  return c.commit.slice(0, 12);
}

/**
 * Why the action file (`what` empty: messages are prefixed with its path) or its formula is not
 * trustworthy as last changed, or undefined.
 */
function signatureProblem(what: string, p: Provenance, rule: ApprovalRule): string | undefined {
  const last = p.last;
  if (!last) return `${what}no commit added it`;
  const by = `${what}last changed by commit ${short(last)}`;
  switch (last.status) {
    case "good":
      return undefined;
    case "unsigned":
      return `${by}, which is not signed (require_signed: sign it with a key in ${rule.allowedSigners})`;
    case "unknown_key":
      return `${by}, signed by key ${last.key ?? "unknown"}, which is not in ${rule.allowedSigners}`;
    default:
      return `${by}, whose signature does not verify`;
  }
}

/** Pure: may the action run, and who approved it. */
export function approvalOf(action: Provenance, blob: string, formula: Provenance, rule: ApprovalRule): ApprovalVerdict {
  const problem = signatureProblem("", action, rule) ?? signatureProblem(`its formula ${formula.path} was `, formula, rule);
  if (problem) return { ok: false, problem };
  const approval = `${action.path}@${blob}`;
  const signers = new Set([action.last!.signer ?? action.last!.key ?? "unknown"]);
  for (const c of action.later) if (c.status === "good" && c.signer && c.approves.includes(approval)) signers.add(c.signer);
  const list = [...signers].sort();
  if (list.length < rule.approvals) {
    return {
      ok: false,
      problem: `${list.length} of ${rule.approvals} approvals (${list.join(", ")}); another allowed signer approves it with a signed commit carrying the trailer "Approves: ${approval}"`,
    };
  }
  return { ok: true, signers: list };
}

/** The verdict on an action file at `commit`, from the provenance of it and of its formula. */
export async function readApproval(repo: Pick<OpsRepoPort, "provenance">, rule: ApprovalRule, commit: string, file: { path: string; sha: string }, formula: string): Promise<ApprovalVerdict> {
  const [action, formulaProv] = await Promise.all([repo.provenance(commit, file.path, rule.allowedSigners), repo.provenance(commit, `formulas/${formula}.sh`, rule.allowedSigners)]);
  return approvalOf(action, file.sha, formulaProv, rule);
}

/** An unapproved action's refusal, naming its file; undefined when it may run. */
export function approvalRefusal(path: string, verdict: ApprovalVerdict): Refusal | undefined {
  return verdict.ok ? undefined : { class: "unapproved", message: `${path}: ${verdict.problem}` };
}
