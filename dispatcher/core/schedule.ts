import type { Action, ActionFile } from "../actions/schema.js";

export interface Candidate {
  file: ActionFile;
  action: Action;
  /** who approved its content, when approvals are required */
  approvedBy?: string[];
}

/** What the dispatcher already holds: actions in flight, and when a retry is due. */
export interface LedgerView {
  inFlight: ReadonlyMap<string, { key: string }>;
  /** id → earliest time the next attempt may start */
  notBefore: ReadonlyMap<string, Date>;
}

export interface Limits {
  maxInFlight: number;
  serializeBy: "formula" | "id" | "none";
}

/**
 * Why a pending action does not start now. `limit` ends when something in flight ends; the
 * others at `until` (or, without one, after a short poll: Vault may come back any time).
 */
export interface Wait {
  id: string;
  /** place: a lock or slot another replica holds (core/limits.ts); looked at again at `until`; budget: the pass spent its budget of signature checks, the next one (at once) goes on */
  kind: "limit" | "backoff" | "lease" | "vault" | "recorded" | "place" | "budget";
  until?: Date;
  /** for people: logs and `dispatcher plan` */
  reason: string;
}

export interface Plan<C extends Candidate = Candidate> {
  dispatch: C[];
  waiting: Wait[];
}

export function serializationKey(action: Action, by: Limits["serializeBy"]): string {
  if (by === "none") return `id:${action.id}`;
  return `${by}:${by === "formula" ? action.formula : action.id}`;
}

/** code-unit order, as the repo is read: sorting what a pass already read in this order costs one scan */
function byId(a: Candidate, b: Candidate): number {
  return a.action.id < b.action.id ? -1 : a.action.id > b.action.id ? 1 : 0;
}

/**
 * Which pending actions start now. Pure: in id order, skipping what is in flight, what waits
 * for a backoff, and what shares a serialization key with a running or earlier-chosen action,
 * up to the global limit.
 */
export function planDispatches<C extends Candidate>(candidates: readonly C[], ledger: LedgerView, limits: Limits, now: Date): Plan<C> {
  const plan: Plan<C> = { dispatch: [], waiting: [] };
  const busyKeys = new Set([...ledger.inFlight.values()].map((e) => e.key));
  let slots = limits.maxInFlight - ledger.inFlight.size;
  const full = `max in flight (${limits.maxInFlight}) reached`;
  for (const c of [...candidates].sort(byId)) {
    const id = c.action.id;
    if (ledger.inFlight.has(id)) continue;
    const due = ledger.notBefore.get(id);
    if (due && due > now) {
      plan.waiting.push({ id, kind: "backoff", until: due, reason: `retry backoff until ${due.toISOString()}` });
      continue;
    }
    const key = serializationKey(c.action, limits.serializeBy);
    if (busyKeys.has(key)) {
      plan.waiting.push({ id, kind: "limit", reason: `serialized behind another action with ${key}` });
      continue;
    }
    if (slots <= 0) {
      plan.waiting.push({ id, kind: "limit", reason: full });
      continue;
    }
    plan.dispatch.push(c);
    busyKeys.add(key);
    slots--;
  }
  return plan;
}
