import { parentJobsOf } from "../core/request.js";
import { createActionsIndex, ignoredEntries, readActions, readResults, unwritableActions, type IgnoredEntry, type ReadResult } from "../core/repo-read.js";
import type { ParsedAction } from "../actions/schema.js";
import { mountLayoutOf, type Config } from "../config.js";
import { latestAllocation, latestChildren, type Kind, type LiveChild } from "../core/status.js";
import { createLogger, type Logger } from "../log.js";
import { createNomadLedger, issuesLedgerPrefix } from "../nomad/ledger.js";
import { createEngines, viewWorkdir, type Engines } from "../start.js";

/** What the read-only commands (status, logs, plan) work on: engines on their own clone. */
export interface View extends Engines {
  config: Config;
  log: Logger;
  /** parent job → kind */
  kinds: Record<string, Kind>;
}

export function openView(config: Config): View {
  // warnings only: these commands print their answer on stdout, logs go to stderr
  const log = createLogger({ level: process.env.LOG_LEVEL ?? "warn" });
  return {
    ...createEngines(config, log, viewWorkdir(config)),
    config,
    log,
    // every parent, one per mount set: runner, runner-ssh, …
    kinds: Object.fromEntries([
      ...parentJobsOf(config.nomad.runnerJob, config.nomad.classes, mountLayoutOf(config).sets).map((p) => [p, "runner"] as const),
      ...parentJobsOf(config.nomad.sidecarJob, config.nomad.classes, mountLayoutOf(config).sets).map((p) => [p, "sidecar"] as const),
    ]),
  };
}

export interface RepoState {
  commit: string;
  pending: readonly ParsedAction[];
  results: ReadResult[];
  problems: string[];
  /** entries of the actions directory that are not part of the contract */
  ignored: { entries: IgnoredEntry[]; truncated: boolean };
  /** actions whose result's path is taken by what is no file: never dispatched, and why */
  unwritable: [string, string][];
}

/** Pending actions and results at the remote's tip. */
export async function readRepoState(v: View): Promise<RepoState> {
  const commit = await v.repo.sync();
  const index = createActionsIndex();
  const pending = await readActions(v.repo, commit, v.config.repo.actionsDir, index);
  const { results, problems } = await readResults(v.repo, commit, v.config.repo.actionsDir);
  return { commit, pending, results, problems, ignored: ignoredEntries(index), unwritable: unwritableActions(index) };
}

/**
 * Pending actions whose result waits in the ledger (state finished): when each ended. The ledger
 * is read with the caller's token; one it may not read leaves the map empty, with a warning.
 */
export async function readUnpushed(v: View, pendingIds: ReadonlySet<string>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const ledger = createNomadLedger(v.nomad, v.config.nomad.ledgerPrefix);
  try {
    const known = await ledger.list();
    for (const id of [...pendingIds].filter((i) => known.has(i))) {
      const entry = await ledger.get(id);
      if (entry?.state === "finished") out.set(id, entry.updatedAt);
    }
  } catch (err) {
    v.log.warn({ err }, "cannot read the ledger: results held there are shown as finishing");
  }
  return out;
}

/** The latest dispatched child of each pending action, with its latest allocation. */
export async function readLiveChildren(v: View, pendingIds: ReadonlySet<string>): Promise<Map<string, LiveChild>> {
  const children = (await Promise.all(Object.keys(v.kinds).map((parent) => v.nomad.listChildren(parent)))).flat();
  const latest = latestChildren(children, pendingIds, v.config.repo.runnerRemote);
  const live = new Map<string, LiveChild>();
  for (const [id, child] of latest) live.set(id, { ...child, alloc: latestAllocation((await v.nomad.allocationsOf(child.jobId)).allocations) });
  return live;
}

/**
 * Issue runs ([issues] projects): their results under the issues folder at `commit`, and the
 * runs the issue ledger holds without one (in flight, or their result not pushed yet).
 */
export async function readIssueRuns(v: View, commit: string): Promise<{ pending: string[]; results: ReadResult[]; problems: string[] }> {
  const out = { pending: [] as string[], results: [] as ReadResult[], problems: [] as string[] };
  for (const project of new Set(v.config.issues.projects.map((p) => p.name))) {
    const read = await readResults(v.repo, commit, `${v.config.issues.dir}/${project}`);
    out.results.push(...read.results);
    out.problems.push(...read.problems);
  }
  const done = new Set(out.results.map((r) => r.id));
  try {
    out.pending = [...(await createNomadLedger(v.nomad, issuesLedgerPrefix(v.config.nomad.ledgerPrefix)).list())].filter((id) => !done.has(id)).sort();
  } catch (err) {
    v.log.warn({ err }, "cannot read the issue runs' ledger: runs in flight are not shown");
  }
  return out;
}
