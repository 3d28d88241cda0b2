import { formatIgnored } from "../core/preview.js";
import { forgeOutboxOf } from "../config.js";
import { formatUnsent } from "../core/forge.js";
import { readOutbox } from "../forge/outbox.js";
import { formatInstancesTable, formatStatusTable, mergeStatus, type StatusRow } from "../core/status.js";
import { ExitError } from "../errors.js";
import { createNomadLedger } from "../nomad/ledger.js";
import { CONFIG_HELP, configFrom, configOptions, EXIT, type Command, type Values } from "./common.js";
import { openView, readLiveChildren, readRepoState, readUnpushed, type View } from "./view.js";

export const statusCommand: Command = {
  summary: "table of actions: pending, running (from Nomad) and finished (from their results); --instances: the replicas",
  help: `Usage: dispatcher status [--json] [--watch [--interval N]] [--instances] [options]

One row per action in the ops repo at its tip: ID, KIND, STATE, JOB, ALLOC, NODE, AGE, EXIT.
STATE is pending (not dispatched), queued (no allocation yet), starting, running, finishing
(ended, result not pushed yet), unpushed (the result is in the ledger but did not reach the repo:
a push keeps failing or the repo refuses its path; the dispatcher's log says which), or the result's status (succeeded, failed, timeout, invalid,
rejected, lost). AGE is the time since that state began. Below the table, entries of the
actions directory that are not part of the contract (a name with a control character, not UTF-8
or over 200 bytes, a subdirectory, a submodule, any other name): "ignored: <path>: <why>" (on
stderr with --json). With a forge (forge.url), the reports it has not taken yet (commit
statuses, pull request comments) follow.
  --json                  print the rows as a JSON array instead
  --instances             the dispatcher replicas instead: INSTANCE, STATE (alive, draining, or
                          silent: no heartbeat within the lease), LAST SEEN, IN FLIGHT, VERSION
  --watch                 print the table again every --interval seconds (default 2) until Ctrl-C
  --interval N            seconds between refreshes of --watch

${CONFIG_HELP}`,
  options: { ...configOptions, json: { type: "boolean" }, instances: { type: "boolean" }, watch: { type: "boolean" }, interval: { type: "string" } },
  async run(values) {
    const v = openView(configFrom(values));
    const render = values.instances ? () => renderInstances(v, values) : () => renderActions(v, values);
    if (!values.watch) {
      process.stdout.write(await render());
      return EXIT.ok;
    }
    const intervalMs = intervalOf(values) * 1000;
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
      while (!stop.signal.aborted) {
        const text = await render();
        // a terminal gets the table in place; a pipe or file gets each one after the last
        process.stdout.write(process.stdout.isTTY ? `\x1b[H\x1b[2J${text}` : `${text}\n`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, intervalMs);
          stop.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
        });
      }
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
    return EXIT.ok;
  },
};

function intervalOf(values: Values): number {
  const raw = values.interval ?? "2";
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new ExitError(`dispatcher status: --interval "${String(raw)}" must be a whole number of seconds ≥ 1, e.g. --interval 5`, EXIT.usage);
  return n;
}

async function renderActions(v: View, values: Values): Promise<string> {
  const repo = await readRepoState(v);
  for (const p of repo.problems) process.stderr.write(`dispatcher status: ${p}\n`);
  const pendingIds = new Set(repo.pending.map((p) => p.file.id));
  const [live, unpushed] = await Promise.all([readLiveChildren(v, pendingIds), readUnpushed(v, pendingIds)]);
  const rows: StatusRow[] = mergeStatus({
    remote: v.config.repo.runnerRemote,
    kinds: v.kinds,
    pending: repo.pending.map((p) => ({ id: p.file.id, kind: p.ok ? p.action.kind : undefined })),
    results: repo.results,
    children: [...live.values()],
    unpushed,
  });
  const ignored = formatIgnored(v.config.repo.actionsDir, repo.ignored);
  // --json keeps stdout one JSON array: what is ignored goes to stderr there
  if (values.json) {
    for (const line of ignored) process.stderr.write(`dispatcher status: ${line}\n`);
    return `${JSON.stringify(rows, null, 2)}\n`;
  }
  // the daemon's forge outbox (on its host): reports a forge outage held back
  const unsent = v.config.forge.url ? formatUnsent(readOutbox(forgeOutboxOf(v.config))) : "";
  const table = formatStatusTable(rows, new Date()) + ignored.map((l) => `${l}\n`).join("") + unsent;
  return `${values.watch ? `${new Date().toISOString()}  (every ${intervalOf(values)}s, Ctrl-C to stop)\n` : ""}${table}`;
}

async function renderInstances(v: View, values: Values): Promise<string> {
  const beats = await createNomadLedger(v.nomad, v.config.nomad.ledgerPrefix).instances();
  if (values.json) return `${JSON.stringify(beats, null, 2)}\n`;
  return formatInstancesTable(beats, new Date(), v.config.leaseSeconds * 1000);
}
