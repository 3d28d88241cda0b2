// Reading a job's allocations as they change: the one way the tracker (execute.ts) and the
// read-only CLI commands (logs -f) wait on Nomad. Blocking queries through the Nomad port; the
// dispatcher's port answers them from the shared event stream (nomad/feed.ts).
import type { AllocationState, Clock, JobPlacement, NomadPort } from "./ports.js";
import { isTerminal, latestAllocation } from "./status.js";

/** how long one blocking query may wait when nothing changes */
export const WATCH_MS = 10_000;

/** Each change of the job's allocations (or each `waitMs()` without one), as the job's placement. */
export async function* watchPlacements(nomad: Pick<NomadPort, "watchJob">, jobId: string, waitMs: () => number = () => WATCH_MS, signal?: AbortSignal): AsyncGenerator<JobPlacement> {
  let index = 0;
  for (;;) {
    if (signal?.aborted) throw signal.reason;
    const placement = await nomad.watchJob(jobId, index, waitMs(), signal);
    index = placement.index;
    yield placement;
  }
}

/**
 * The allocation `pick` chooses from the job's allocations once it chooses one, or undefined when
 * `timeoutMs` passes first (0: look once).
 */
export async function waitForAllocation(
  nomad: Pick<NomadPort, "watchJob">,
  jobId: string,
  pick: (allocs: AllocationState[]) => AllocationState | undefined,
  opts: { clock: Clock; timeoutMs: number; signal?: AbortSignal },
): Promise<AllocationState | undefined> {
  const deadline = opts.clock.now().getTime() + opts.timeoutMs;
  for await (const placement of watchPlacements(nomad, jobId, () => WATCH_MS, opts.signal)) {
    const alloc = pick(placement.allocations);
    if (alloc) return alloc;
    if (opts.clock.now().getTime() >= deadline) return undefined;
  }
  return undefined;
}

/** The latest allocation, once it has started (or already ended). */
export function startedAllocation(allocs: AllocationState[]): AllocationState | undefined {
  const a = latestAllocation(allocs);
  return a && (a.startedAt !== undefined || a.clientStatus === "running" || isTerminal(a)) ? a : undefined;
}
