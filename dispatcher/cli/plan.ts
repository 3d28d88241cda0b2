import { readActions } from "../core/repo-read.js";
import { buildCatalog, catalogNeeds } from "../core/catalog.js";
import { formatPlan, previewPass } from "../core/preview.js";
import { loopSettings } from "../start.js";
import { CONFIG_HELP, configFrom, configOptions, type Command } from "./common.js";
import { openView } from "./view.js";

export const planCommand: Command = {
  summary: "show what the next pass would dispatch (job, meta, token scope, mounts) or refuse; dispatches nothing",
  help: `Usage: dispatcher plan [options]

For each pending action at the ops repo's tip: the job it would dispatch with its meta, the
runner-<name> policies of its wrapped token and its mounts; or why it is invalid, refused or
waiting. Decided by the same code as the loop; nothing is dispatched, minted or written.

${CONFIG_HELP}`,
  options: configOptions,
  async run(values) {
    const config = configFrom(values);
    const v = openView(config);
    const settings = loopSettings(config);
    const commit = await v.repo.sync();
    const parsed = await readActions(v.repo, commit, config.repo.actionsDir);
    const catalog = await buildCatalog(v, commit, settings, catalogNeeds(parsed));
    process.stdout.write(formatPlan(previewPass(parsed, catalog, commit, settings, settings.limits, new Date()), commit));
    return 0;
  },
};
