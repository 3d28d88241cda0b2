import type { Wait } from "./schedule.js";
import type { LedgerEntry } from "./ports.js";

/** What this instance does with a pending action, given its ledger entry. */
export type Takeover =
  | { kind: "new" }
  | { kind: "skip"; wait: Omit<Wait, "id"> }
  /** claimed but maybe not dispatched: dispatch the same attempt again (Nomad dedups it) */
  | { kind: "resume"; entry: LedgerEntry }
  /** dispatched: follow the existing job instead of dispatching again */
  | { kind: "reattach"; entry: LedgerEntry }
  /** finished but not pushed: push the stored result (once it holds up: verify.ts storedResultProblem) */
  | { kind: "push"; entry: LedgerEntry }
  /** an entry that does not hold up: the action runs again as the entry's next attempt, at the approved commit */
  | { kind: "afresh"; entry: LedgerEntry; problem: string };

/**
 * Pure: an entry held by a live other instance is theirs; one held by this instance (a
 * previous life of it) or by an instance silent for longer than the lease is taken over. The
 * ledger records, it does not decide: what is taken over runs at the commit the pass approved,
 * never the entry's (loop.ts attemptOf). A `recorded` entry whose action is still pending (its
 * result is not at the tip) longer than the lease after it was written does not hold up: the
 * repository is the record, and the action runs afresh (a result lost to a force-push runs again;
 * a forged entry blocks nothing).
 */
export function decideTakeover(entry: LedgerEntry | undefined, me: string, ownerSeen: Date | undefined, now: Date, leaseMs: number): Takeover {
  if (!entry) return { kind: "new" };
  if (entry.state === "recorded") {
    const written = Date.parse(entry.updatedAt);
    if (!(now.getTime() - written >= leaseMs)) return { kind: "skip", wait: { kind: "recorded", reason: "result recorded; waiting for it to appear at the tip" } };
    return { kind: "afresh", entry, problem: `its result was recorded at ${entry.updatedAt || "an unknown time"} (attempt ${entry.attempt}) but is not at the tip` };
  }
  const ownerAlive = entry.owner !== me && ownerSeen !== undefined && now.getTime() - ownerSeen.getTime() < leaseMs;
  if (ownerAlive) return { kind: "skip", wait: { kind: "lease", until: new Date(ownerSeen.getTime() + leaseMs), reason: `held by ${entry.owner}` } };
  if (entry.state === "finished") return { kind: "push", entry };
  if (entry.state === "dispatched") return { kind: "reattach", entry };
  return { kind: "resume", entry };
}
