import { formatStatusTable, mergeStatus } from "../core/status.js";
import { CONFIG_HELP, configFrom, configOptions, type Command } from "./common.js";
import { openView, readLiveChildren, readRepoState, readUnpushed } from "./view.js";

export const statusCommand: Command = {
  summary: "table of actions: pending, running (from Nomad) and finished (from their results)",
  help: `Usage: dispatcher status [--json] [options]

One row per action in the ops repo at its tip: ID, KIND, STATE, JOB, ALLOC, NODE, AGE, EXIT.
STATE is pending (not dispatched), queued (no allocation yet), starting, running, finishing
(ended, result not pushed yet), unpushed (the result is in the ledger but did not reach the repo:
a push keeps failing or the repo refuses its path; the dispatcher's log says which), or the result's status (succeeded, failed, timeout, invalid,
rejected, lost). AGE is the time since that state began.
  --json                  print the rows as a JSON array instead

${CONFIG_HELP}`,
  options: { ...configOptions, json: { type: "boolean" } },
  async run(values) {
    const v = openView(configFrom(values));
    const repo = await readRepoState(v);
    for (const p of repo.problems) process.stderr.write(`dispatcher status: ${p}\n`);
    const pendingIds = new Set(repo.pending.map((p) => p.file.id));
    const [live, unpushed] = await Promise.all([readLiveChildren(v, pendingIds), readUnpushed(v, pendingIds)]);
    const rows = mergeStatus({
      remote: v.config.repo.runnerRemote,
      kinds: v.kinds,
      pending: repo.pending.map((p) => ({ id: p.file.id, kind: p.ok ? p.action.kind : undefined })),
      results: repo.results,
      children: [...live.values()],
      unpushed,
    });
    process.stdout.write(values.json ? `${JSON.stringify(rows, null, 2)}\n` : formatStatusTable(rows, new Date()));
    return 0;
  },
};
