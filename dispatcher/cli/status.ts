import { formatIgnored, formatUnwritable } from "../core/preview.js";
import { forgeOutboxOf } from "../config.js";
import { formatUnsent } from "../core/forge.js";
import { readOutbox } from "../forge/outbox.js";
import { formatInstancesTable, formatStatusTable, mergeStatus, type StatusRow } from "../core/status.js";
import { ExitError } from "../errors.js";
import { createNomadLedger } from "../nomad/ledger.js";
import { CONFIG_HELP, configFrom, configOptions, EXIT, type Command, type Values } from "./common.js";
import { openView, readIssueRuns, readLiveChildren, readRepoState, readUnpushed, type RepoState, type View } from "./view.js";
import { placeHolder, readPlaces, sharedWaits } from "../core/limits.js";
import { serializationKey } from "../core/schedule.js";
import { createNomadPlaces } from "../nomad/places.js";

export const statusCommand: Command = {
  summary: "table of actions: pending, running (from Nomad) and finished (from their results); --instances: the replicas",
  help: `Usage: dispatcher status [--json] [--watch [--interval N]] [--instances] [options]

One row per action in the ops repo at its tip: ID, KIND, STATE, JOB, ALLOC, NODE, AGE, EXIT.
STATE is pending (not dispatched), queued (no allocation yet), starting, running, finishing
(ended, result not pushed yet), unpushed (the result is in the ledger but did not reach the repo:
a push keeps failing or the repo refuses its path; the dispatcher's log says which), unwritable
(its result's path is taken by a directory, symlink or submodule: never dispatched, the line
"unwritable: <id>: <why>" below the table says which), or the result's status (succeeded, failed, timeout, invalid,
rejected, lost). AGE is the time since that state began. Below the table, entries of the
actions directory that are not part of the contract (a name with a control character, not UTF-8
or over 200 bytes, a subdirectory, a submodule, any other name): "ignored: <path>: <why>" (on
stderr with --json). With a forge (forge.url), the reports it has not taken yet (commit
statuses, pull request comments) follow. With [issues] projects, the issue runs follow in a table
of their own (ID <project>/<issue>-<label>-<event>, KIND sidecar), and --json adds them to the array.
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
    unwritable: repo.unwritable.map(([id]) => id),
  });
  const issueRows = v.config.issues.projects.length > 0 ? await readIssueRows(v, repo.commit) : [];
  const ignored = [...formatIgnored(v.config.repo.actionsDir, repo.ignored), ...formatUnwritable(repo.unwritable)];
  // --json keeps stdout one JSON array: what is ignored goes to stderr there
  if (values.json) {
    for (const line of ignored) process.stderr.write(`dispatcher status: ${line}\n`);
    return `${JSON.stringify([...rows, ...issueRows], null, 2)}\n`;
  }
  // the daemon's forge outbox (on its host): reports a forge outage held back
  const unsent = v.config.forge.url ? formatUnsent(readOutbox(forgeOutboxOf(v.config))) : "";
  const shared = await sharedLimitLines(v, repo.pending);
  const issues = issueRows.length > 0 ? `\nissue runs (${v.config.issues.dir}/<project>/<issue>-<label>-<event>):\n${formatStatusTable(issueRows, new Date())}` : "";
  const table = formatStatusTable(rows, new Date()) + issues + ignored.map((l) => `${l}\n`).join("") + shared + unsent;
  return `${values.watch ? `${new Date().toISOString()}  (every ${intervalOf(values)}s, Ctrl-C to stop)\n` : ""}${table}`;
}

/**
 * The limits replicas share (core/limits.ts): the locks and slots held, and why pending actions
 * wait on them, in the loop's own words. Nothing when nothing is held.
 */
async function sharedLimitLines(v: View, pending: RepoState["pending"]): Promise<string> {
  const prefix = v.config.nomad.ledgerPrefix;
  const now = new Date();
  const leaseMs = v.config.leaseSeconds * 1000;
  const all = await readPlaces(createNomadPlaces(v.nomad, prefix), createNomadLedger(v.nomad, prefix));
  // the places of this repo's actions (a running one is pending until its result lands)
  const ids = new Set(pending.map((p) => p.file.id));
  const snap = { ...all, places: all.places.filter((p) => ids.has(p.action)) };
  if (snap.places.length === 0) return "";
  const limits = v.config.limits;
  const held = snap.places.map((p) => {
    const h = placeHolder(p, { instance: "", session: "" }, snap.seen.get(p.owner), now, leaseMs);
    return `  ${p.name} held by ${p.owner} for ${p.action} since ${p.since}${h.kind === "held" ? "" : " (owner silent past the lease: free to take over)"}`;
  });
  // one candidate per key, in id order, as a pass plans them; what a child of this action runs already is not pending
  const byKey = new Map<string, string>();
  for (const p of [...pending].sort((a, b) => (a.file.id < b.file.id ? -1 : 1))) if (p.ok) byKey.set(serializationKey(p.action, limits.serializeBy), byKey.get(serializationKey(p.action, limits.serializeBy)) ?? p.action.id);
  const planned = [...byKey].map(([key, id]) => ({ id, key })).sort((a, b) => (a.id < b.id ? -1 : 1));
  const waits = sharedWaits(planned, snap, limits.maxInFlight, now, leaseMs).map((w) => `  ${w.id}: ${w.reason}`);
  return ["", `shared limits (max in flight ${limits.maxInFlight}, serialize_by ${limits.serializeBy}):`, ...held, ...waits, ""].join("\n");
}

/** Issue runs as status rows: the ledger's runs without a result (their sidecar child's state), then the results. */
async function readIssueRows(v: View, commit: string): Promise<StatusRow[]> {
  const runs = await readIssueRuns(v, commit);
  for (const p of runs.problems) process.stderr.write(`dispatcher status: ${p}\n`);
  const live = await readLiveChildren(v, new Set(runs.pending));
  return mergeStatus({ remote: v.config.repo.runnerRemote, kinds: v.kinds, pending: runs.pending.map((id) => ({ id, kind: "sidecar" as const })), results: runs.results, children: [...live.values()] });
}

async function renderInstances(v: View, values: Values): Promise<string> {
  const beats = await createNomadLedger(v.nomad, v.config.nomad.ledgerPrefix).instances();
  if (values.json) return `${JSON.stringify(beats, null, 2)}\n`;
  return formatInstancesTable(beats, new Date(), v.config.leaseSeconds * 1000);
}
