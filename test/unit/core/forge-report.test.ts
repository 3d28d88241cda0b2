import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLoopEmitter } from "../../../dispatcher/core/events.js";
import type { ForgeReport } from "../../../dispatcher/core/forge.js";
import { createForgeReporter } from "../../../dispatcher/core/forge-report.js";
import type { ForgePort, ForgeStatus, LedgerEntry } from "../../../dispatcher/core/ports.js";
import type { ActionResult } from "../../../dispatcher/core/result.js";
import { systemClock } from "../../../dispatcher/clock.js";
import { ForgeApiError } from "../../../dispatcher/errors.js";
import { createLogger } from "../../../dispatcher/log.js";

const quiet = createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }), level: "debug", pretty: false });
const tip = "c".repeat(40);
const changed = "d".repeat(40);

function setup(opts: { down?: () => boolean; pr?: number } = {}) {
  const events = createLoopEmitter();
  const calls: string[] = [];
  const comments = new Map<number, Map<string, string>>();
  const forge: ForgePort = {
    async setStatus(commit: string, s: ForgeStatus) {
      if (opts.down?.()) throw new ForgeApiError("forge: down", undefined);
      calls.push(`status ${commit.slice(0, 1)} ${s.context} ${s.state}`);
    },
    async mergedPullRequest() {
      if (opts.down?.()) throw new ForgeApiError("forge: down", undefined);
      return opts.pr;
    },
    async upsertComment(pr, marker, body) {
      const on = comments.get(pr) ?? new Map<string, string>();
      comments.set(pr, on);
      const had = on.has(marker);
      on.set(marker, body);
      calls.push(`comment #${pr} ${had ? "updated" : "created"}`);
      return had ? "updated" : "created";
    },
  };
  let saved: ForgeReport[] = [];
  const result: ActionResult = { id: "x", exit_code: 0, timestamp: "", logs: "ok", status: "succeeded", attempts: 1, action_sha: "a", commit: tip, duration_ms: 1000, policies: [], dispatcher: { version: "v", instance: "i" } };
  const reporter = createForgeReporter({
    events,
    forge,
    ledger: { get: async (id) => ({ id, commit: tip }) as LedgerEntry },
    history: {
      lastChange: async (commit, path) => (commit === tip && path === "vault/actions/x.toml" ? changed : undefined),
      readAtTip: async (path) => (path === "vault/actions/x.result.json" ? Buffer.from(JSON.stringify(result)) : undefined),
    },
    outbox: { load: () => saved, save: (r) => void (saved = [...r]) },
    clock: systemClock,
    log: quiet,
    actionsDir: "vault/actions",
  });
  return { events, calls, reporter, outbox: () => saved, comments };
}

describe("createForgeReporter", () => {
  it("sets pending on the commit that changed the action file, then the result, and comments once on the merged pull request", async () => {
    const { events, calls, reporter, outbox } = setup({ pr: 7 });
    events.emit("action:dispatched", { id: "x", attempt: 1, jobId: "runner/dispatch-1", policies: [], duplicate: false, queuedMs: 0 });
    await reporter.settled();
    events.emit("results:pushed", { ids: ["x"], rejections: 0 });
    await reporter.settled();
    expect(calls).toEqual(["status d dispatcher/x pending", "status d dispatcher/x success", "comment #7 created"]);
    expect(outbox()).toEqual([]);
    reporter.close();
  });

  it("keeps what the forge did not take in the outbox and sends it once when the forge is back, none doubled", async () => {
    let down = true;
    const { events, calls, reporter, outbox } = setup({ down: () => down, pr: 3 });
    events.emit("action:dispatched", { id: "x", attempt: 1, jobId: "j", policies: [], duplicate: false, queuedMs: 0 });
    events.emit("results:pushed", { ids: ["x"], rejections: 0 });
    await reporter.settled();
    expect(calls).toEqual([]);
    // the result took the pending's place: one report waits, with the error
    expect(outbox().map((r) => [r.id, r.status.state, r.tries, r.lastError])).toEqual([["x", "success", 1, "forge: down"]]);
    expect(reporter.unsent().map((r) => r.status.state)).toEqual(["success"]);
    down = false;
    events.emit("pass:done", { durationMs: 1, commit: tip, started: 0, refused: 0, waiting: 0 });
    await reporter.settled();
    // a pass with the retry timer pending leaves it to the timer
    await new Promise((r) => setTimeout(r, 700));
    await reporter.settled();
    expect(calls).toEqual(["status d dispatcher/x success", "comment #3 created"]);
    expect(outbox()).toEqual([]);
    reporter.close();
  });

  it("a report loaded from the outbox of a previous life is sent without any event", async () => {
    const first = setup({ down: () => true });
    first.events.emit("results:pushed", { ids: ["x"], rejections: 0 });
    await first.reporter.settled();
    first.reporter.close();
    expect(first.outbox()).toHaveLength(1);
    const again = setup({ pr: 5 });
    const events = again.events;
    // the next life starts from the saved outbox
    const reporter2 = createForgeReporter({
      events,
      forge: { setStatus: async (c, s) => void again.calls.push(`status ${c.slice(0, 1)} ${s.context} ${s.state}`), mergedPullRequest: async () => 5, upsertComment: async () => (again.calls.push("comment #5"), "created") },
      ledger: { get: async () => undefined },
      history: { lastChange: async () => undefined, readAtTip: async () => undefined },
      outbox: { load: () => first.outbox(), save: () => undefined },
      clock: systemClock,
      log: quiet,
      actionsDir: "vault/actions",
    });
    events.emit("pass:done", { durationMs: 1, commit: tip, started: 0, refused: 0, waiting: 0 });
    await reporter2.settled();
    expect(again.calls).toEqual(["status d dispatcher/x success", "comment #5"]);
    reporter2.close();
    again.reporter.close();
  });

  it("a direct push (no pull request merged as the commit) gets the status and no comment", async () => {
    const { events, calls, reporter } = setup({});
    events.emit("results:pushed", { ids: ["x"], rejections: 0 });
    await reporter.settled();
    expect(calls).toEqual(["status d dispatcher/x success"]);
    reporter.close();
  });
});

describe("createForgeReporter and a report the forge refuses for good", () => {
  it("drops it (a 4xx such as an unknown commit) and sends the ones behind it", async () => {
    const events = createLoopEmitter();
    const sent: string[] = [];
    let saved: ForgeReport[] = [];
    const reporter = createForgeReporter({
      events,
      forge: {
        async setStatus(commit, s) {
          if (commit === "unknown") throw new ForgeApiError("forge: setting status failed: HTTP 422", 422);
          sent.push(`${s.context} ${s.state}`);
        },
        mergedPullRequest: async () => undefined,
        upsertComment: async () => "created",
      },
      ledger: { get: async (id) => ({ id, commit: id === "a" ? "unknown" : tip }) as LedgerEntry },
      history: { lastChange: async (commit) => commit, readAtTip: async () => undefined },
      outbox: { load: () => saved, save: (r) => void (saved = [...r]) },
      clock: systemClock,
      log: quiet,
      actionsDir: "vault/actions",
    });
    events.emit("action:dispatched", { id: "a", attempt: 1, jobId: "j1", policies: [], duplicate: false, queuedMs: 0 });
    events.emit("action:dispatched", { id: "b", attempt: 1, jobId: "j2", policies: [], duplicate: false, queuedMs: 0 });
    await reporter.settled();
    expect(sent).toEqual(["dispatcher/b pending"]);
    expect(saved).toEqual([]);
    reporter.close();
  });
});
