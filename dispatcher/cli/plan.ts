import type { ParsedAction } from "../actions/schema.js";
import { readApproval, type ApprovalRule, type ApprovalVerdict } from "../core/approval.js";
import { readForgeApproval, type ForgeApprovalRule } from "../core/forge-approval.js";
import { createActionsIndex, ignoredEntries, readActions } from "../core/repo-read.js";
import { buildCatalog, catalogNeeds, refusalOf, type Catalog } from "../core/catalog.js";
import type { ForgeGatePort, OpsRepoPort } from "../core/ports.js";
import { formatIgnored, formatPlan, previewPass } from "../core/preview.js";
import { forgeGateOf, loopSettings, viewWorkdir } from "../start.js";
import { CONFIG_HELP, configFrom, configOptions, type Command } from "./common.js";
import { openView } from "./view.js";

export const planCommand: Command = {
  summary: "show what the next pass would dispatch (job, meta, token scope, mounts) or refuse; dispatches nothing",
  help: `Usage: dispatcher plan [options]

For each pending action at the ops repo's tip: the job it would dispatch with its meta, the
runner-<name> policies of its wrapped token, its mounts and (require_signed) who approved it; or
why it is invalid, refused or waiting; then what in the actions directory is ignored (not part of
the contract) and why. Decided by the same code as the loop; nothing is dispatched, minted or
written.

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
    const approvals = settings.approvals && (await readApprovals(v.repo, gate, settings.approvals, commit, parsed, catalog));
    const ignored = formatIgnored(config.repo.actionsDir, ignoredEntries(index));
    if (index.deferred > 0) ignored.push(`not read: ${index.deferred} more pending action files (a pass reads at most ${index.readsPerPass}; the next one reads on)`);
    process.stdout.write(formatPlan(previewPass(parsed, catalog, commit, settings, settings.limits, new Date(), approvals), commit, ignored));
    return 0;
  },
};

/** The verdicts the loop would reach on the actions it would not refuse otherwise, one at a time (two git processes each). */
async function readApprovals(repo: OpsRepoPort, gate: ForgeGatePort | undefined, rule: ApprovalRule | ForgeApprovalRule, commit: string, parsed: readonly ParsedAction[], catalog: Catalog): Promise<Map<string, ApprovalVerdict>> {
  const verdicts = new Map<string, ApprovalVerdict>();
  for (const p of parsed) {
    if (!p.ok || refusalOf(p, catalog)) continue;
    verdicts.set(p.file.path, "approvers" in rule ? await readForgeApproval(gate!, rule, commit, p.file, p.action) : await readApproval(repo, rule, commit, p.file, p.action.formula));
  }
  return verdicts;
}
