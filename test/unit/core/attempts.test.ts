// The attempts alive in this process over in-memory ports: the place each holds until its child
// ends, its backoff and failures, the hooks the loop wires (a child's end, an attempt over), and
// the push's continuation (finished → recorded, then the purge schedule).
import { setFlagsFromString } from "node:v8";
import { describe, expect, it } from "vitest";
import type { Action, ActionFile } from "../../../dispatcher/actions/schema.js";
import { createAttempts } from "../../../dispatcher/core/attempts.js";
import { createLoopEmitter } from "../../../dispatcher/core/events.js";
import type { NomadPort, VaultPort } from "../../../dispatcher/core/ports.js";
import type { ActionResult } from "../../../dispatcher/core/result.js";
import { NomadApiError } from "../../../dispatcher/errors.js";
import { createMemoryLedger } from "../../helpers/memory-ledger.js";
import { loopTestSettings, parentSpec } from "../../helpers/loop-settings.js";
import { capturingLog, manualClock } from "../../helpers/manual-clock.js";

const candidate = (id: string, formula = "deploy") => ({ file: { path: `vault/actions/${id}.toml`, id, sha: `s-${id}` } as ActionFile, action: { id, formula, context: "x", secrets: [], mounts: [], kind: "runner" } as Action });

function setup() {
  const clock = manualClock();
  const ledger = createMemoryLedger();
  const trace: string[] = [];
  /** children that end when the test says so */
  const ends = new Map<string, () => void>();
  const nomad: NomadPort = {
    async dispatch(req) {
      return { jobId: `runner/dispatch-${req.meta.action_id}`, evalId: "e" };
    },
    async watchJob(jobId) {
      const id = jobId.split("dispatch-")[1]!;
      await new Promise<void>((r) => ends.set(id, r));
      return { allocations: [{ id: `al-${id}`, node: "n1", clientStatus: "complete", exitCode: 0, startedAt: clock.now().toISOString(), createIndex: 1 }], index: 2 };
    },
    readLog: async () => "",
    stopJob: async () => undefined,
    evaluateJob: async () => undefined,
    purgeJob: async () => undefined,
    hostVolumes: async () => new Map(),
    parentSpec: async () => parentSpec,
    childJob: async () => undefined,
  };
  const vault: VaultPort = { missingPolicies: async () => [], mintWrapped: async () => ({ wrappingToken: "w", accessor: "a", policies: [] }), revokeAccessor: async () => undefined };
  const queued: { id: string; scheduled: boolean; pushed?: () => Promise<void>; deps?: unknown }[] = [];
  const purges: string[] = [];
  // spread from the ports as createLoop builds it (an object cloned this way keeps its own map)
  const ports = { nomad, vault, ledger, clock, log: capturingLog().log };
  const attempts = createAttempts({
    ...ports,
    events: createLoopEmitter(),
    fence: { parents: new Set(["runner"]), namespace: "dispatch" },
    signal: new AbortController().signal,
    settings: loopTestSettings(clock.now(), { limits: { maxInFlight: 4, serializeBy: "formula" } }),
    flusher: {
      add: (r: ActionResult, _l: string, pushed?: () => Promise<void>) => void queued.push({ id: r.id, scheduled: false, pushed }),
      // a function, not an arrow: called as the attempt's deps.queueResult, `this` is its deps object
      queue(this: unknown, r: ActionResult, _l: string, pushed?: () => Promise<void>) {
        queued.push({ id: r.id, scheduled: true, pushed, deps: this });
      },
    },
    purging: { schedule: (id, jobId) => void purges.push(`${id} ${jobId}`) },
    onEnd: () => void trace.push("end"),
    onOver: (id) => void trace.push(`over ${id}`),
  });
  /** lets the attempts run until `cond` holds */
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
    expect(cond()).toBe(true);
  };
  return { attempts, ledger, trace, ends, queued, purges, until, nomad };
}

describe("createAttempts", () => {
  it("holds an attempt's place with its key until its child ends, then frees it while its result is recorded", async () => {
    const t = setup();
    t.attempts.start(candidate("a"), "c1");
    t.attempts.start(candidate("b", "other"), "c1");
    expect([t.attempts.size(), t.attempts.ids(), [...t.attempts.holding()]]).toEqual([2, ["a", "b"], [["a", { key: "formula:deploy" }], ["b", { key: "formula:other" }]]]);
    await t.until(() => t.ends.has("a"));
    t.ends.get("a")!();
    await t.until(() => t.trace.includes("over a"));
    // the child's end first (its place frees), then the attempt is over, its result queued for a push
    expect(t.trace).toEqual(["end", "end", "over a"]);
    expect([...t.attempts.holding().keys()]).toEqual(["b"]);
    expect(t.attempts.has("a")).toBe(false);
    expect(t.queued.map((q) => [q.id, q.scheduled])).toEqual([["a", true]]);
    expect(t.ledger.entries.get("a")!.state).toBe("finished");
    // the push's continuation: finished → recorded, then the child's purge is scheduled
    await t.queued[0]!.pushed!();
    expect([t.ledger.entries.get("a")!.state, t.purges]).toEqual(["recorded", ["a runner/dispatch-a"]]);
    t.ends.get("b")?.();
    await t.until(() => t.attempts.size() === 0);
    await t.attempts.settled();
  });

  it("a failed dispatch leaves a backoff in notBefore and the attempt over without a result", async () => {
    const t = setup();
    t.nomad.dispatch = async () => {
      throw new NomadApiError("nomad: POST /v1/job/runner/dispatch failed: connect ECONNREFUSED", undefined);
    };
    t.attempts.start(candidate("a"), "c1");
    await t.attempts.settled();
    expect(t.trace).toEqual(["end", "over a"]);
    expect(t.attempts.notBefore.get("a")!.getTime()).toBeGreaterThan(Date.parse("2026-12-02T10:00:00.000Z"));
    expect(t.queued).toEqual([]);
  });

  it("a dead owner's stored result is queued without scheduling a push and without an attempt in flight; its push marks it recorded", async () => {
    const t = setup();
    const left = (await t.ledger.create("z", { state: "finished", owner: "gone", attempt: 1, actionSha: "s", commit: "c", jobId: "runner/dispatch-z", result: "{}", updatedAt: "2026-12-02T09:00:00.000Z" }))!;
    await t.attempts.pushFromLedger(left, { id: "z", status: "succeeded" } as ActionResult);
    expect([t.attempts.size(), t.trace, t.queued.map((q) => [q.id, q.scheduled])]).toEqual([0, [], [["z", false]]]);
    await t.queued[0]!.pushed!();
    expect(t.ledger.entries.get("z")).toMatchObject({ state: "recorded", owner: "me", result: undefined });
    expect(t.purges).toEqual(["z runner/dispatch-z"]);
  });

  it("gives every attempt's deps object the same hidden class and only its own fields (a map or a copy of the ports per attempt in flight costs memory at thousands)", async () => {
    setFlagsFromString("--allow-natives-syntax");
    const sameMap = new Function("a", "b", "return %HaveSameMap(a, b)") as (a: unknown, b: unknown) => boolean;
    const t = setup();
    // V8 shares the map of the first few clones; once its inline cache is warm, each clone got its own
    const ids = Array.from({ length: 20 }, (_, i) => `a${i}`);
    for (const id of ids) t.attempts.start(candidate(id, id), "c1");
    await t.until(() => ids.every((id) => t.ends.has(id)));
    for (const id of ids) t.ends.get(id)!();
    await t.until(() => t.queued.length === ids.length);
    const deps = t.queued.map((q) => q.deps);
    expect([typeof deps[0], deps[18] === deps[19], sameMap(deps[18], deps[19]), sameMap(deps[0], deps[19])]).toEqual(["object", false, true, true]);
    // its own fields only: the ports are shared, not copied per attempt
    expect(Object.keys(deps[19] as object).sort()).toEqual(["log", "me", "queueResult", "release", "retryAt", "schedulePurge"]);
    await t.attempts.settled();
  });
});
