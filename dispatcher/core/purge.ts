// When each finished child may leave Nomad: `retentionMs` after its result was pushed, never
// before. The schedule is kept in the ledger: a recorded entry with a job and no `purgedAt` is a
// purge to come, due `retentionMs` after it was recorded; a restart reads back those recorded
// within the retention and an hour before (`resumable`), and a child it still misses (a longer
// downtime) is left to Nomad's own GC (job_gc_threshold), as safe: its result is in the repo.

/** Pure: the heartbeats of replicas silent longer than `retentionMs` (never this instance's own). */
export function silentInstances<B extends { instance: string; seenAt: Date }>(beats: readonly B[], me: string, now: Date, retentionMs: number): B[] {
  return beats.filter((b) => b.instance !== me && now.getTime() - b.seenAt.getTime() > retentionMs);
}

/**
 * Pure: a ledger entry that may go. Only a recorded one (its result is in the repo, the record;
 * an action with a result at the tip is never pending, so never claimed again) last written
 * longer than `retentionMs` ago; any other state is work in hand.
 */
export function entryExpired(entry: { state: string; updatedAt: string }, now: Date, retentionMs: number): boolean {
  return entry.state === "recorded" && now.getTime() - Date.parse(entry.updatedAt) > retentionMs;
}

/** how far before the retention a restart looks back for purges to resume (its own downtime) */
export const PURGE_RESUME_MARGIN_MS = 3_600_000;

/** Pure: a ledger entry whose child's purge is still to come, and when it was recorded. */
export function resumable(entry: { state: string; jobId?: string; purgedAt?: string; updatedAt: string }): Date | undefined {
  return entry.state === "recorded" && entry.jobId && !entry.purgedAt ? new Date(entry.updatedAt) : undefined;
}

export interface PurgeSchedule {
  /** the result of `id`, run by `jobId`, was pushed at `pushedAt` */
  add(id: string, jobId: string, pushedAt: Date): void;
  /** children whose retention has passed by `now`, taken off the schedule */
  takeDue(now: Date): { id: string; jobId: string }[];
  size(): number;
}

export function createPurgeSchedule(retentionMs: number): PurgeSchedule {
  const due = new Map<string, { id: string; at: number }>();
  return {
    add(id, jobId, pushedAt) {
      if (retentionMs > 0) due.set(jobId, { id, at: pushedAt.getTime() + retentionMs });
    },
    takeDue(now) {
      const out: { id: string; jobId: string }[] = [];
      for (const [jobId, p] of due) {
        if (p.at > now.getTime()) continue;
        due.delete(jobId);
        out.push({ id: p.id, jobId });
      }
      return out;
    },
    size: () => due.size,
  };
}
