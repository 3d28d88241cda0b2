import type { Refusal } from "./catalog.js";
import type { CommitSignature, OpsRepoPort, Provenance } from "./ports.js";

// Who may trigger what: with require_signed, an action runs at commit C only when the commits
// that last changed its file and its formula are signed by allowed keys, and N distinct allowed
// signers (approvals = N, default 1) approved the action's blob together with the code it runs:
// each signed a commit on C's first-parent chain at or after both the last change to the action
// file and the last change to anything outside the actions folder (a merge is a change against
// its first parent), that made that change or carries the trailer "Approves: <action path>@<blob>".
// So a later change to the code (a helper a formula sources, a rollback by merge) by fewer than N
// signers voids the approval. History is read along first parents (opsrepo/provenance.ts). Pure
// but readApproval: the git reading is the ops repo adapter's.

export interface ApprovalRule {
  /** the allowed-signers file (gpg.ssh.allowedSignersFile format), named in messages */
  allowedSigners: string;
  /** distinct allowed signers needed for the action file (1: its author's signed commit) */
  approvals: number;
  /** the actions folder; everything outside it is the code an action runs (default vault/actions) */
  actionsDir?: string;
  /** formulas come from the factory repository at the commit the config pins: the pin approves them, the ops repo's formulas/ is not judged */
  formulasPinned?: boolean;
}

/** How messages name the code an action runs. */
export function codeLabel(actionsDir = "vault/actions"): string {
  return `everything outside ${actionsDir.replace(/\/+$/, "")}/`;
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

/** The code changed after the action's approval, by a commit that is not an allowed signer's. */
function unapprovedCode(code: Provenance, rule: ApprovalRule, trailer: string): string {
  const by = `${code.path} was last changed by commit ${short(code.last!)}`;
  const approve = `approve the action at this code with ${trailer}`;
  switch (code.last!.status) {
    case "unsigned":
      return `${by}, which is not signed (require_signed: sign it with a key in ${rule.allowedSigners}, or ${approve})`;
    case "unknown_key":
      return `${by}, signed by key ${code.last!.key ?? "unknown"}, which is not in ${rule.allowedSigners} (${approve})`;
    default:
      return `${by}, whose signature does not verify (${approve})`;
  }
}

/**
 * Pure: may the action run, and who approved it. `code`: the provenance of everything outside the
 * actions folder at the same commit; without it only the action file and its formula are judged.
 */
export function approvalOf(action: Provenance, blob: string, formula: Provenance, rule: ApprovalRule, code?: Provenance): ApprovalVerdict {
  const problem = signatureProblem("", action, rule) ?? (rule.formulasPinned ? undefined : signatureProblem(`its formula ${formula.path} was `, formula, rule));
  if (problem) return { ok: false, problem };
  const approval = `${action.path}@${blob}`;
  // the approvals that count came at or after both the action's last change and the code's
  const codeNewer = code?.last !== undefined && (code.distance ?? 0) < (action.distance ?? 0);
  const from = codeNewer ? code! : action;
  const signers = new Set<string>();
  if (from.last!.status === "good") signers.add(from.last!.signer ?? from.last!.key ?? "unknown");
  for (const c of from.later) if (c.status === "good" && c.signer && c.approves.includes(approval)) signers.add(c.signer);
  const list = [...signers].sort();
  if (list.length >= rule.approvals) return { ok: true, signers: list };
  const trailer = `a signed commit carrying the trailer "Approves: ${approval}"`;
  if (!codeNewer) return { ok: false, problem: `${list.length} of ${rule.approvals} approvals (${list.join(", ")}); another allowed signer approves it with ${trailer}` };
  if (rule.approvals === 1) return { ok: false, problem: unapprovedCode(code!, rule, trailer) };
  return {
    ok: false,
    problem: `${list.length} of ${rule.approvals} approvals since commit ${short(code!.last!)} changed ${code!.path} (${list.join(", ") || "none"}); another allowed signer approves it with ${trailer}`,
  };
}

/** The verdict on an action file at `commit`, from the provenance of it, of its formula and of the code around it. */
export async function readApproval(repo: Pick<OpsRepoPort, "provenance">, rule: ApprovalRule, commit: string, file: { path: string; sha: string }, formula: string): Promise<ApprovalVerdict> {
  const dir = rule.actionsDir ?? "vault/actions";
  const [action, formulaProv, code] = await Promise.all([
    repo.provenance(commit, file.path, rule.allowedSigners),
    repo.provenance(commit, `formulas/${formula}.sh`, rule.allowedSigners),
    repo.provenance(commit, codeLabel(dir), rule.allowedSigners, dir),
  ]);
  return approvalOf(action, file.sha, formulaProv, rule, code);
}

/** An unapproved action's refusal, naming its file; undefined when it may run. */
export function approvalRefusal(path: string, verdict: ApprovalVerdict): Refusal | undefined {
  return verdict.ok ? undefined : { class: "unapproved", message: `${path}: ${verdict.problem}` };
}
