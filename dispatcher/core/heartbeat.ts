// This instance's heartbeat in the ledger (its lease: a silent owner's actions are taken over),
// and the ledger's retention sweep that rides on it: heartbeats of replicas silent past theirs,
// recorded entries past theirs (purging.ts removes those).
import type { Logger } from "../log.js";
import type { LoopEmitter } from "./events.js";
import type { Clock, LedgerPort } from "./ports.js";
import { silentInstances } from "./purge.js";

/** the retention sweep runs at most this often (or each retention, when shorter) */
const SWEEP_MS = 3_600_000;

export interface HeartbeatDeps {
  ledger: LedgerPort;
  clock: Clock;
  events: LoopEmitter;
  log: Logger;
  me: string;
  version: string;
  /** an owner silent this long is presumed dead: beat at least every third of it */
  leaseMs: number;
  /** a replica's heartbeat silent this long is removed from the ledger */
  instanceRetentionMs?: number;
  /** a recorded entry is removed this long after it was recorded (`removeExpired` does it) */
  ledgerRetentionMs?: number;
  removeExpired(): Promise<void>;
  /** what the beat says of this instance */
  status(): { inFlight: number; draining: boolean };
}

export function createHeartbeat(d: HeartbeatDeps) {
  let lastBeat = 0;
  /** when the ledger was last swept */
  let lastSweep = Number.NEGATIVE_INFINITY;
  const now = () => d.clock.now();

  /** `force`: say so now (draining starts), not at the next beat */
  async function beat(force = false): Promise<void> {
    if (!force && now().getTime() - lastBeat < d.leaseMs / 3) return;
    await d.ledger.heartbeat(d.me, now(), { ...d.status(), version: d.version });
    lastBeat = now().getTime();
    await sweep();
  }

  /** The ledger's retention, at most hourly (or each retention, when shorter) and at the first beat. */
  async function sweep(): Promise<void> {
    const retentions = [d.instanceRetentionMs, d.ledgerRetentionMs].filter((r): r is number => r !== undefined && r > 0);
    if (retentions.length === 0 || now().getTime() - lastSweep < Math.min(...retentions, SWEEP_MS)) return;
    lastSweep = now().getTime();
    try {
      if (d.instanceRetentionMs) {
        for (const b of silentInstances(await d.ledger.instances(), d.me, now(), d.instanceRetentionMs)) {
          if (await d.ledger.forgetInstance(b)) d.events.emit("ledger:instance-forgotten", { instance: b.instance, seenAt: b.seenAt.toISOString() });
        }
      }
      if (d.ledgerRetentionMs) await d.removeExpired();
    } catch (err) {
      d.log.warn({ err }, "could not sweep the ledger (silent replicas' heartbeats, recorded entries); trying again at the next sweep");
    }
  }

  return {
    beat,
    /** Keeps this instance's lease alive while it waits on long jobs; returns the stop. */
    start(): () => void {
      const timer = setInterval(() => void beat().catch((err: unknown) => d.log.warn({ err }, "heartbeat failed")), Math.max(250, d.leaseMs / 3));
      timer.unref();
      return () => clearInterval(timer);
    },
  };
}

export type Heartbeat = ReturnType<typeof createHeartbeat>;
