// The ledger port in memory, with check-and-set on an index as Nomad Variables do it: for unit
// tests of the loop and of an attempt.
import type { LedgerEntry, LedgerFields, LedgerPort } from "../../dispatcher/core/ports.js";

export function createMemoryLedger(): LedgerPort & { entries: Map<string, LedgerEntry> } {
  const entries = new Map<string, LedgerEntry>();
  let index = 1;
  return {
    entries,
    list: async () => new Set(entries.keys()),
    get: async (id) => entries.get(id),
    async create(id, fields) {
      if (entries.has(id)) return undefined;
      const e = { id, ...fields, index: index++ };
      entries.set(id, e);
      return e;
    },
    async update(entry, changes: Partial<LedgerFields>) {
      const cur = entries.get(entry.id);
      if (!cur || cur.index !== entry.index) return undefined;
      const next = { ...cur, ...changes, index: index++ };
      entries.set(entry.id, next);
      return next;
    },
    heartbeat: async () => undefined,
    lastSeen: async () => undefined,
    instances: async () => [],
    forgetInstance: async () => false,
    written: async () => [...entries.values()].map((e) => ({ id: e.id, writtenAt: new Date(e.updatedAt) })),
    async remove(entry) {
      const cur = entries.get(entry.id);
      if (!cur || cur.index !== entry.index) return false;
      entries.delete(entry.id);
      return true;
    },
  };
}
