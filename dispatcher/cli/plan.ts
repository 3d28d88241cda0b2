import type { ParsedAction } from "../actions/schema.js";
import type { ApprovalRule, ApprovalVerdict } from "../core/approval.js";
import { readRuleApproval, type ForgeApprovalRule } from "../core/forge-approval.js";
import { createActionsIndex, ignoredEntries, readActions, unwritableActions } from "../core/repo-read.js";
import { buildCatalog, catalogNeeds, refusalOf, type Catalog } from "../core/catalog.js";
import type { ForgeGatePort, OpsRepoPort } from "../core/ports.js";
import { formatIgnored, formatPlan, formatUnwritable, previewPass, type PlanEntry } from "../core/preview.js";
import { readPlaces, sharedWaits } from "../core/limits.js";
import { serializationKey, type Limits } from "../core/schedule.js";
import { Deferred } from "../errors.js";
import { createNomadLedger } from "../nomad/ledger.js";
import { createNomadPlaces } from "../nomad/places.js";
import type { View } from "./view.js";
import { forgeGateOf, loopSettings, startIssueLoop, viewWorkdir } from "../start.js";
import { systemClock } from "../clock.js";
import { createLoopEmitter } from "../core/events.js";
import { formatIssuePlan } from "../core/issue-runs.js";
import { CONFIG_HELP, configFrom, configOptions, type Command } from "./common.js";
import { openView } from "./view.js";

export const planCommand: Command = {
  summary: "show what the next pass would dispatch (job, meta, token scope, mounts) or refuse; dispatches nothing",
  help: `Usage: dispatcher plan [options]

For each pending action at the ops repo's tip: the job it would dispatch with its meta, the
runner-<name> policies of its wrapped token, its mounts and (require_signed) who approved it; or
why it is invalid, refused or waiting; then what in the actions directory is ignored (not part of
the contract) and why. Decided by the same code as the loop; nothing is dispatched, minted or
written. With [issues] projects, the open issues carrying a trigger label follow: the run each
would start (its key, the sidecar's formula, meta and token policies), or why it waits.

${CONFIG_HELP}`,
  options: configOptions,
  async run(values) {
    const config = configFrom(values);
    const v = openView(config);
    const settings = loopSettings(config);
    const commit = await v.repo.sync();
    const index = createActionsIndex();
    const parsed = await readActions(v.repo, commit, config.repo.actionsDir, index);
    const catalog = await buildCatalog(v, commit, settings, catalogNeeds(parsed));
    const gate = forgeGateOf(config, viewWorkdir(config));
    const read = settings.approvals ? await readApprovals(v.repo, gate, settings.approvals, commit, parsed, catalog) : undefined;
    const ignored = [...formatIgnored(config.repo.actionsDir, ignoredEntries(index)), ...formatUnwritable(unwritableActions(index))];
    if (index.deferred > 0) ignored.push(`not read: ${index.deferred} more pending action files (a pass reads at most ${index.readsPerPass}; the next one reads on)`);
    const now = new Date();
    const entries = previewPass(parsed, catalog, commit, settings, settings.limits, now, read?.verdicts, read?.deferred);
    process.stdout.write(formatPlan(await withSharedWaits(v, entries, parsed, settings.limits, now), commit, ignored));
    if (config.issues.projects.length > 0) process.stdout.write(await planIssues(v, commit));
    return 0;
  },
};

/** Which labelled issues would start which sidecar (the issue loop's own decisions, from the forge and the issue ledger). */
async function planIssues(v: View, commit: string): Promise<string> {
  const c = v.config;
  const issues = startIssueLoop(c, { engines: v, nomad: v.nomad, vault: v.vault, repo: v.repo, ledger: createNomadLedger(v.nomad, c.nomad.ledgerPrefix), clock: systemClock, events: createLoopEmitter(), log: v.log, queueResult: () => undefined, workdir: viewWorkdir(c) })!;
  return formatIssuePlan(await issues.survey(commit), c.issues.botSecret ? [c.issues.botPolicy] : []);
}

/** What would start, unless another replica holds its key's lock or every slot: then it waits, saying for whom (core/limits.ts). */
async function withSharedWaits(v: View, entries: PlanEntry[], parsed: readonly ParsedAction[], limits: Limits, now: Date): Promise<PlanEntry[]> {
  const keys = new Map(parsed.flatMap((p) => (p.ok ? [[p.action.id, serializationKey(p.action, limits.serializeBy)] as const] : [])));
  const planned = entries.filter((e) => e.verdict === "dispatch").map((e) => ({ id: e.id, key: keys.get(e.id)! }));
  if (planned.length === 0) return entries;
  const prefix = v.config.nomad.ledgerPrefix;
  const all = await readPlaces(createNomadPlaces(v.nomad, prefix), createNomadLedger(v.nomad, prefix));
  // the places of this repo's actions (a running one is pending until its result lands)
  const ids = new Set(parsed.map((p) => p.file.id));
  const snap = { ...all, places: all.places.filter((p) => ids.has(p.action)) };
  const waits = new Map(sharedWaits(planned, snap, limits.maxInFlight, now, v.config.leaseSeconds * 1000).map((w) => [w.id, w.reason]));
  return entries.map((e) => (waits.has(e.id) ? { id: e.id, verdict: "wait", reason: waits.get(e.id)! } : e));
}

/**
 * The verdicts the loop would reach on the actions it would not refuse otherwise, one at a time
 * (two git processes each); `deferred`: ids a pass's budget of signature checks did not reach, why.
 */
async function readApprovals(
  repo: OpsRepoPort,
  gate: ForgeGatePort | undefined,
  rule: ApprovalRule | ForgeApprovalRule,
  commit: string,
  parsed: readonly ParsedAction[],
  catalog: Catalog,
): Promise<{ verdicts: Map<string, ApprovalVerdict>; deferred: Map<string, string> }> {
  const verdicts = new Map<string, ApprovalVerdict>();
  const deferred = new Map<string, string>();
  for (const p of parsed) {
    if (!p.ok || refusalOf(p, catalog)) continue;
    try {
      verdicts.set(p.file.path, await readRuleApproval(rule, { repo, ...(gate ? { gate } : {}) }, commit, p.file, p.action));
    } catch (err) {
      if (!(err instanceof Deferred)) throw err;
      deferred.set(p.file.id, err.message);
    }
  }
  return { verdicts, deferred };
}
