// Carries out what purge.ts decides: children purged from Nomad a retention after their result
// was pushed (the schedule read back from the ledger at the first pass), recorded ledger entries
// removed a retention after they were recorded.
import { failureClassOf } from "../errors.js";
import type { Logger } from "../log.js";
import type { LoopEmitter } from "./events.js";
import type { Clock, LedgerPort, NomadPort } from "./ports.js";
import { createPurgeSchedule, entryExpired, PURGE_RESUME_MARGIN_MS, resumable } from "./purge.js";

export interface PurgingDeps {
  nomad: Pick<NomadPort, "purgeJob">;
  ledger: LedgerPort;
  clock: Clock;
  events: LoopEmitter;
  log: Logger;
  me: string;
  /** a child is purged from Nomad this long after its result was pushed (0: never) */
  purgeAfterMs: number;
  /** a recorded action's ledger entry is removed this long after it was recorded (0 or absent: kept) */
  ledgerRetentionMs?: number;
}

export function createPurging(d: PurgingDeps) {
  const purges = createPurgeSchedule(d.purgeAfterMs);
  /** the purge schedule was read back from the ledger (at the first pass) */
  let resumed = false;
  const now = () => d.clock.now();

  /** Purges a previous life (or a dead replica) scheduled: recorded entries with a job, not yet purged, recorded recently. */
  async function resume(): Promise<void> {
    if (resumed || d.purgeAfterMs <= 0) return;
    resumed = true;
    try {
      const since = now().getTime() - d.purgeAfterMs - PURGE_RESUME_MARGIN_MS;
      for (const w of (await d.ledger.written()).filter((x) => x.writtenAt.getTime() >= since)) {
        const entry = await d.ledger.get(w.id);
        // its own only (a stable DISPATCHER_INSTANCE): another replica's are that replica's to resume
        const recordedAt = entry && entry.owner === d.me ? resumable(entry) : undefined;
        if (recordedAt && entry?.jobId) purges.add(w.id, entry.jobId, recordedAt);
      }
    } catch (err) {
      d.log.warn({ err }, "could not read the purge schedule back from the ledger; those children are left to Nomad's GC");
    }
  }

  return {
    /** the result of `id`, run by `jobId`, is at the tip from now */
    schedule(id: string, jobId: string): void {
      purges.add(id, jobId, now());
    },
    /** Children whose retention passed since their result was pushed leave Nomad. */
    async due(): Promise<void> {
      await resume();
      for (const p of purges.takeDue(now())) {
        try {
          await d.nomad.purgeJob(p.jobId);
          d.events.emit("job:purged", p);
          // done with it: a restart does not purge it again
          const entry = await d.ledger.get(p.id).catch(() => undefined);
          if (entry?.jobId === p.jobId && !entry.purgedAt) await d.ledger.update(entry, { purgedAt: now().toISOString() }).catch(() => undefined);
        } catch (err) {
          d.events.emit("job:purge-failed", { ...p, class: failureClassOf(err), err });
        }
      }
    },
    /** Recorded entries past the ledger retention leave the ledger (check-and-set: one written meanwhile stays). */
    async removeExpired(): Promise<void> {
      const retention = d.ledgerRetentionMs;
      if (!retention) return;
      const written = await d.ledger.written();
      let removed = 0;
      // only entries last written before the retention are read: a recorded one has not changed since
      for (const { id } of written.filter((w) => now().getTime() - w.writtenAt.getTime() > retention)) {
        const entry = await d.ledger.get(id);
        if (entry && entryExpired(entry, now(), retention) && (await d.ledger.remove(entry))) {
          removed++;
          d.events.emit("ledger:entry-removed", { id, recordedAt: entry.updatedAt });
        }
      }
      d.events.emit("ledger:size", { entries: written.length - removed });
    },
  };
}

export type Purging = ReturnType<typeof createPurging>;
