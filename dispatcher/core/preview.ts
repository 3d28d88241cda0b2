import { showPath } from "../actions/names.js";
import type { ParsedAction } from "../actions/schema.js";
import type { IgnoredEntry } from "./repo-read.js";
import { approvalRefusal, type ApprovalVerdict } from "./approval.js";
import { refusalOf, waitsForVault, type Catalog, type Refusal } from "./catalog.js";
import { statusOf } from "./result.js";
import { planDispatches, type Candidate, type Limits } from "./schedule.js";
import { buildDispatchSpec, type DispatchSpec, type RequestSettings } from "./request.js";

// `dispatcher plan`: what one pass would do with the pending actions, decided by the same
// functions the loop uses (refusalOf, approvalRefusal, waitsForVault, planDispatches,
// buildDispatchSpec). Pure: the approval verdicts are read before (readApproval).

export type PlanEntry =
  | { id: string; verdict: "dispatch"; spec: DispatchSpec; mounts: Record<string, string>; approvedBy?: string[] }
  | { id: string; verdict: "refuse"; refusal: Refusal }
  | { id: string; verdict: "wait"; reason: string };

/**
 * `approvals`: with require_signed, the verdict on each action that refusalOf lets through, by
 * its file's path; undefined when any commit may trigger. `deferred`: actions whose verdict the
 * pass's budget of signature checks did not reach, by id, and why: they wait, as in the loop.
 */
export function previewPass(
  parsed: readonly ParsedAction[],
  catalog: Catalog,
  commit: string,
  settings: RequestSettings,
  limits: Limits,
  now: Date,
  approvals?: ReadonlyMap<string, ApprovalVerdict>,
  deferred?: ReadonlyMap<string, string>,
): PlanEntry[] {
  const entries: PlanEntry[] = [];
  const candidates: Candidate[] = [];
  for (const p of parsed) {
    const verdict = approvals?.get(p.file.path);
    const refusal = refusalOf(p, catalog) ?? (verdict && approvalRefusal(p.file.path, verdict));
    const budget = deferred?.get(p.file.id);
    if (refusal) entries.push({ id: p.file.id, verdict: "refuse", refusal });
    else if (budget !== undefined) entries.push({ id: p.file.id, verdict: "wait", reason: budget });
    else if (waitsForVault(p, catalog)) entries.push({ id: p.file.id, verdict: "wait", reason: "Vault is unreachable: actions with secrets wait for it" });
    else if (p.ok) candidates.push({ file: p.file, action: p.action, ...(verdict?.ok ? { approvedBy: verdict.signers } : {}) });
  }
  // a plan sees no dispatcher's in-flight set: it shows what a fresh pass would start
  const plan = planDispatches(candidates, { inFlight: new Map(), notBefore: new Map() }, limits, now);
  for (const c of plan.dispatch) {
    const spec = buildDispatchSpec({ ...c, commit, attempt: 1 }, settings);
    const mounts = Object.fromEntries(c.action.mounts.map((m) => [m, catalog.mountPaths.get(m)!]));
    entries.push({ id: c.action.id, verdict: "dispatch", spec, mounts, ...(c.approvedBy ? { approvedBy: c.approvedBy } : {}) });
  }
  for (const w of plan.waiting) entries.push({ id: w.id, verdict: "wait", reason: w.reason });
  return entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** What plan and status say of actions held back because their result's path is taken: one line each. */
export function formatUnwritable(unwritable: readonly [string, string][]): string[] {
  return unwritable.map(([id, why]) => `unwritable: ${id}: ${why}`);
}

/** entries of the actions directory that plan and status name one by one; the rest are counted */
const IGNORED_SHOWN = 20;

/**
 * What plan and status say of the actions directory's entries that are not part of the contract:
 * one line each (the first IGNORED_SHOWN), then how many there are; nothing when there are none.
 */
export function formatIgnored(dir: string, ignored: { entries: readonly IgnoredEntry[]; truncated: boolean }): string[] {
  const { entries, truncated } = ignored;
  const lines = entries.slice(0, IGNORED_SHOWN).map((e) => `ignored: ${showPath(e.path)}: ${e.reason}`);
  if (entries.length > 0) {
    const shown = entries.length > IGNORED_SHOWN ? `, the first ${IGNORED_SHOWN} shown` : "";
    lines.push(`ignored: ${entries.length} ${entries.length === 1 ? "entry" : "entries"} under ${dir} (not part of the contract: never read, never answered)${shown}`);
  }
  if (truncated) lines.push(`ignored: ${dir} holds more entries than a listing reads; those past the cap are not seen`);
  return lines;
}

export function formatPlan(entries: PlanEntry[], commit: string, ignored: string[] = []): string {
  const lines = [`plan for ${commit.slice(0, 12)} (nothing is dispatched):`];
  for (const e of entries) {
    if (e.verdict === "refuse") {
      const what = statusOf(e.refusal.class) === "invalid" ? "invalid" : `refused (${e.refusal.class})`;
      lines.push(`${e.id}: ${what}`, ...e.refusal.message.split("\n").map((l) => `  ${l}`));
    } else if (e.verdict === "wait") {
      lines.push(`${e.id}: waits: ${e.reason}`);
    } else {
      const { spec } = e;
      lines.push(`${e.id}: dispatch job ${spec.job} (task ${spec.task}), timeout ${spec.timeoutMinutes} min`);
      lines.push("  meta:", ...Object.keys(spec.meta).sort().map((k) => `    ${k}=${spec.meta[k]}`));
      lines.push(`  token: ${spec.policies.length === 0 ? "none (no secrets)" : `${spec.policies.join(", ")}, ttl ${spec.tokenTtlSeconds}s, response-wrapped`}`);
      const mounts = Object.entries(e.mounts).map(([m, path]) => `${m}=${path} (read-only at /mnt/${m})`);
      lines.push(`  mounts: ${mounts.length === 0 ? "none" : mounts.join(", ")}`);
      if (e.approvedBy) lines.push(`  approved by: ${e.approvedBy.join(", ")}`);
    }
  }
  const count = (v: PlanEntry["verdict"]) => entries.filter((e) => e.verdict === v).length;
  lines.push(...ignored);
  lines.push(`${count("dispatch")} to dispatch, ${count("wait")} waiting, ${count("refuse")} refused`);
  return `${lines.join("\n")}\n`;
}
