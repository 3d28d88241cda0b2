// One pass over an ops repo in memory, with the attempts, the pushes and the heartbeat as
// recorders: what it refuses, starts and leaves waiting, and what it keeps for the next pass.
import { describe, expect, it } from "vitest";
import { createLoopEmitter } from "../../../dispatcher/core/events.js";
import { createPass } from "../../../dispatcher/core/pass.js";
import type { LedgerEntry, NomadPort, VaultPort } from "../../../dispatcher/core/ports.js";
import type { ActionResult } from "../../../dispatcher/core/result.js";
import type { Candidate } from "../../../dispatcher/core/schedule.js";
import { createMemoryLedger } from "../../helpers/memory-ledger.js";
import { memoryRepo } from "../../helpers/memory-repo.js";
import { loopTestSettings } from "../../helpers/loop-settings.js";
import { capturingLog, manualClock } from "../../helpers/manual-clock.js";

const action = (id: string, formula = "deploy") => `id = "${id}"\nformula = "${formula}"\ncontext = "pass test"\nsecrets = []\n`;

function setup(files: Record<string, string>, maxInFlight = 2) {
  const clock = manualClock();
  const repo = memoryRepo(files);
  const listings: string[] = [];
  const list = repo.port.listFiles;
  repo.port.listFiles = (commit, dir) => (listings.push(commit), list(commit, dir));
  const ledger = createMemoryLedger();
  const trace: string[] = [];
  const added: ActionResult[] = [];
  const holding = new Map<string, { key: string }>();
  const pass = createPass({
    nomad: { childJob: async () => undefined } as unknown as NomadPort,
    vault: { missingPolicies: async () => [] } as unknown as VaultPort,
    repo: repo.port,
    ledger,
    clock,
    log: capturingLog().log,
    settings: loopTestSettings(clock.now(), { limits: { maxInFlight, serializeBy: "formula" } }),
    events: createLoopEmitter(),
    fence: { parents: new Set(["runner"]), namespace: "dispatch" },
    attempts: {
      start: (c: Candidate, commit: string, previous?: LedgerEntry) => void (trace.push(`start ${c.action.id} at ${commit}${previous ? " resuming" : ""}`), holding.set(c.action.id, { key: `formula:${c.action.formula}` })),
      reattach: (c: Candidate) => void trace.push(`reattach ${c.action.id}`),
      pushFromLedger: async (e: LedgerEntry) => void trace.push(`push from ledger ${e.id}`),
      seen: () => undefined,
      has: (id: string) => holding.has(id),
      size: () => holding.size,
      holding: () => holding,
      notBefore: new Map(),
    },
    flusher: { add: (r: ActionResult) => void added.push(r), holds: (id: string) => added.some((r) => r.id === id), schedule: () => void trace.push("schedule push") },
    heartbeat: { beat: async () => void trace.push("beat") },
    purging: { due: async () => void trace.push("purges due") },
    waits: { passBegins: () => void trace.push("pass begins") },
  });
  return { pass, repo, ledger, trace, added, holding, listings };
}

describe("createPass", () => {
  it("beats, purges, refuses the invalid, starts what the limits allow at the tip, and schedules the push", async () => {
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n", "formulas/other.sh": "#!/bin/sh\n", "vault/actions/a.toml": action("a"), "vault/actions/b.toml": action("b"), "vault/actions/bad.toml": action("bad", "missing"), "vault/actions/c.toml": action("c", "other") });
    const summary = await t.pass.pass();
    expect(t.trace).toEqual(["pass begins", "beat", "purges due", "start a at c1", "start c at c1", "schedule push"]);
    expect(t.added.map((r) => [r.id, r.status])).toEqual([["bad", "invalid"]]);
    // b waits on a's serialization key (the formula)
    expect(summary).toMatchObject({ commit: "c1", started: ["a", "c"], refused: ["bad"], inFlight: 2 });
    expect(summary.waiting.map((w) => [w.id, w.kind])).toEqual([["b", "limit"]]);
  });

  it("a tip with nothing pending is not read again; an attempt over without a result makes the next pass read it", async () => {
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n", "vault/actions/a.toml": action("a") });
    t.holding.set("a", { key: "formula:deploy" });
    await t.pass.pass();
    await t.pass.pass();
    expect(t.listings).toEqual(["c1"]);
    // a's attempt ends in a retry: it is pending again, and its ledger entry is read before deciding
    t.holding.delete("a");
    await t.ledger.create("a", { state: "claimed", owner: "other", attempt: 1, actionSha: "s", commit: "c1", updatedAt: "2026-12-02T10:00:00.000Z" });
    t.pass.attemptOver("a");
    await t.pass.pass();
    expect(t.listings).toEqual(["c1", "c1"]);
    // the entry was read: a claim of an owner never seen beating is resumed (same attempt, same idempotency key)
    expect(t.trace.filter((l) => l.startsWith("start"))).toEqual(["start a at c1 resuming"]);
  });

  it("what it knew of a tip holds at a commit our push made on it; a commit of someone else's is read", async () => {
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n", "vault/actions/a.toml": action("a") });
    t.holding.set("a", { key: "formula:deploy" });
    await t.pass.pass();
    const ours = await t.repo.port.writeFiles([{ path: "vault/actions/a.result.json", content: Buffer.from("{}") }], "vault: result for a");
    t.pass.ownCommit(ours.base!, ours.commit);
    await t.pass.pass();
    expect(t.listings).toEqual(["c1"]);
    t.holding.delete("a");
    await t.repo.port.writeFiles([{ path: "vault/actions/b.toml", content: Buffer.from(action("b")) }], "an operator's action");
    await t.pass.pass();
    expect([...new Set(t.listings)]).toEqual(["c1", "c3"]);
    expect(t.trace.filter((l) => l.startsWith("start"))).toEqual(["start b at c3"]);
  });

  it("dueOf: at once with files left unread, at the earliest timed wait, never for a limit alone", () => {
    const t = setup({});
    const base = { commit: "c1", started: [], reattached: [], refused: [], inFlight: 0 };
    const now = Date.parse("2026-12-02T10:00:00.000Z");
    expect(t.pass.dueOf({ ...base, waiting: [], deferred: 3 })).toBe(now);
    expect(t.pass.dueOf({ ...base, waiting: [{ id: "a", kind: "limit", reason: "x" }] })).toBe(Number.POSITIVE_INFINITY);
    expect(t.pass.dueOf({ ...base, waiting: [{ id: "a", kind: "backoff", reason: "x", until: new Date(now + 5000) }, { id: "b", kind: "vault", reason: "x" }] })).toBe(now + 1000);
  });
});
