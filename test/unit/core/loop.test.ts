// The loop over in-memory ports: a pass refuses, plans and starts; once() runs everything to
// pushed results; results finished together share one commit; what is purged after the push.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { LoopEventName } from "../../../dispatcher/core/events.js";
import { createLoop, type LoopDeps } from "../../../dispatcher/core/loop.js";
import type { NomadPort, SyncHint, VaultPort } from "../../../dispatcher/core/ports.js";
import { GitError, NomadApiError } from "../../../dispatcher/errors.js";
import { createLogger } from "../../../dispatcher/log.js";
import { createMemoryLedger } from "../../helpers/memory-ledger.js";
import { memoryRepo } from "../../helpers/memory-repo.js";
import { loopTestSettings, parentSpec as spec } from "../../helpers/loop-settings.js";

const action = (id: string, formula = "deploy", secrets = "[]") => `id = "${id}"\nformula = "${formula}"\ncontext = "loop test"\nsecrets = ${secrets}\n`;

function setup(files: Record<string, string>, over: { purgeAfterMs?: number; exitCodes?: Record<string, number>; runsUntil?: Record<string, number>; maxInFlight?: number; readsPerPass?: number } = {}) {
  const repo = memoryRepo(files);
  const ledger = createMemoryLedger();
  const dispatched: string[] = [];
  /** virtual ms since the start at each dispatch */
  const dispatchedAt: number[] = [];
  const purged: string[] = [];
  let t = Date.parse("2026-12-02T10:00:00Z");
  const t0 = t;
  // a virtual clock a thousand times faster than real time: a sleep ends, in order with the
  // others, at its own deadline, so work done meanwhile (the other attempts) lands inside a
  // commit window as it would
  const clock = {
    now: () => new Date(t),
    sleep: (ms: number, signal?: AbortSignal) =>
      new Promise<void>((resolve, reject) => {
        const deadline = t + ms;
        const timer = setTimeout(() => resolve(void (t = Math.max(t, deadline))), Math.max(1, ms / 1000));
        signal?.addEventListener("abort", () => (clearTimeout(timer), reject(signal.reason)), { once: true });
      }),
  };
  const nomad: NomadPort = {
    async dispatch(req) {
      const jobId = `${req.job}/dispatch-${req.meta.action_id}`;
      dispatched.push(jobId);
      dispatchedAt.push(t - t0);
      return { jobId, evalId: "e" };
    },
    async watchJob(jobId, _index, waitMs) {
      const id = jobId.split("dispatch-")[1]!;
      // a long job: runs until that many ms after the start, each look waiting as Nomad would
      if (t - t0 < (over.runsUntil?.[id] ?? 0)) {
        await clock.sleep(waitMs);
        return { allocations: [{ id: `al-${id}`, node: "n1", clientStatus: "running", startedAt: new Date(t0).toISOString(), createIndex: 1 }], index: 1 };
      }
      return { allocations: [{ id: `al-${id}`, node: "n1", clientStatus: "complete", exitCode: over.exitCodes?.[id] ?? 0, startedAt: new Date(t).toISOString(), createIndex: 1 }], index: 1 };
    },
    readLog: async (allocId, _t, type) => (type === "stdout" ? `ran ${allocId}\n` : ""),
    stopJob: async () => undefined,
    evaluateJob: async () => undefined,
    purgeJob: async (jobId) => void purged.push(jobId),
    hostVolumes: async () => new Map(),
    parentSpec: async () => spec,
    childJob: async () => undefined,
  };
  const vault: VaultPort = {
    missingPolicies: async (p) => p.filter((x) => x !== "runner-github_token"),
    mintWrapped: async () => ({ wrappingToken: "w", accessor: "acc", policies: [] }),
    revokeAccessor: async () => undefined,
  };
  const seen: LoopEventName[] = [];
  const deps: LoopDeps = {
    nomad,
    vault,
    repo: repo.port,
    ledger,
    clock,
    log: createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }), level: "debug", pretty: false }),
    settings: loopTestSettings(new Date(t), {
      limits: { maxInFlight: over.maxInFlight ?? 4, serializeBy: "none" },
      purgeAfterMs: over.purgeAfterMs ?? 0,
      ...(over.readsPerPass === undefined ? {} : { readsPerPass: over.readsPerPass }),
    }),
  };
  const loop = createLoop(deps);
  for (const name of ["action:refused", "action:dispatched", "action:finished", "results:pushed", "job:purged"] as const) loop.events.on(name, () => seen.push(name));
  return { loop, deps, repo, ledger, dispatched, dispatchedAt, purged, seen, advance: (ms: number) => (t += ms), elapsed: () => t - t0 };
}

/** Nomad's looks at a running child end after 1 s (not the 10 s a blocking query may wait): a short child's end is seen within a full read's 10 s */
function quickLooks(t: ReturnType<typeof setup>): void {
  const watch = t.deps.nomad.watchJob.bind(t.deps.nomad);
  t.deps.nomad.watchJob = (jobId, index, waitMs, signal) => watch(jobId, index, Math.min(waitMs, 1000), signal);
}

const files = {
  "formulas/deploy.sh": "#!/bin/sh\n",
  "vault/actions/a.toml": action("a"),
  "vault/actions/b.toml": action("b", "deploy", '["GITHUB_TOKEN"]'),
  "vault/actions/bad.toml": action("bad", "missing"),
};

describe("createLoop with hostile input (issue 31)", () => {
  it("reads at most readsPerPass action files a pass; the next pass comes at once and reads on, until every one has its result", async () => {
    const many: Record<string, string> = { "formulas/deploy.sh": "#!/bin/sh\n" };
    for (const id of ["a", "b", "c", "d", "e"]) many[`vault/actions/${id}.toml`] = action(id, id < "c" ? "missing" : "deploy");
    const t = setup(many, { readsPerPass: 2 });
    const first = await t.loop.pass();
    expect(first.refused).toEqual(["a", "b"]);
    expect(first.deferred).toBe(3);
    await t.loop.once();
    for (const id of ["a", "b"]) expect(JSON.parse(t.repo.tree.get(`vault/actions/${id}.result.json`)!.toString()), id).toMatchObject({ status: "invalid" });
    for (const id of ["c", "d", "e"]) expect(JSON.parse(t.repo.tree.get(`vault/actions/${id}.result.json`)!.toString()), id).toMatchObject({ status: "succeeded" });
  });

  it("skips an action whose check throws on its input and goes on with the others in the same pass", async () => {
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n", "vault/actions/a.toml": action("a"), "vault/actions/boom.toml": action("boom"), "vault/actions/c.toml": action("c") });
    t.deps.settings.approvals = { allowedSigners: "/etc/allowed", approvals: 1 };
    t.deps.repo.provenance = async (_commit, path) => {
      if (path === "vault/actions/boom.toml") throw new TypeError("Cannot read properties of undefined");
      return { path, later: [] };
    };
    const skipped: string[] = [];
    t.loop.events.on("action:skipped", (e) => skipped.push(`${e.id} ${e.class}`));
    const summary = await t.loop.pass();
    expect(summary.refused.sort()).toEqual(["a", "c"]);
    expect(skipped).toEqual(["boom agent"]);
  });
});

describe("createLoop", () => {
  it("once(): refuses the invalid action, runs the others, pushes every result and marks the ledger recorded", async () => {
    const t = setup(files);
    await t.loop.once();
    expect(t.dispatched.sort()).toEqual(["runner/dispatch-a", "runner/dispatch-b"]);
    expect(JSON.parse(t.repo.tree.get("vault/actions/bad.result.json")!.toString())).toMatchObject({ status: "invalid" });
    expect(JSON.parse(t.repo.tree.get("vault/actions/a.result.json")!.toString())).toMatchObject({ status: "succeeded", logs: "ran al-a" });
    expect([...t.ledger.entries.values()].map((e) => [e.id, e.state, e.result])).toEqual([
      ["a", "recorded", undefined],
      ["b", "recorded", undefined],
    ]);
    expect(t.seen.filter((s) => s === "action:finished")).toHaveLength(2);
    expect(t.seen.filter((s) => s === "action:refused")).toHaveLength(1);
  });

  it("group commit: a result is pushed as soon as it is recorded, while others still run; what finishes during a push shares the next commit", async () => {
    const slow = { "formulas/deploy.sh": "#!/bin/sh\n", "vault/actions/a.toml": action("a"), "vault/actions/c.toml": action("c"), "vault/actions/d.toml": action("d"), "vault/actions/e.toml": action("e") };
    // a ends at once, c and d during a's push (10 s), e long after
    const t = setup(slow, { runsUntil: { c: 2_000, d: 4_000, e: 60_000 } });
    const write = t.repo.port.writeFiles;
    const pushedAt: number[] = [];
    t.repo.port.writeFiles = async (files, message) => (pushedAt.push(t.elapsed()), await t.deps.clock.sleep(10_000), write(files, message));
    await t.loop.once();
    expect(t.repo.commits.map((c) => c.message)).toEqual(["vault: result for a", "vault: results for c, d", "vault: result for e"]);
    // no window and no interval: each push starts when the first result waits and no push runs
    expect(pushedAt[0]).toBe(0);
    expect(pushedAt[1]).toBe(10_000);
    expect(pushedAt[2]).toBeGreaterThanOrEqual(60_000);
    expect(pushedAt[2]).toBeLessThan(61_000);
  });

  it("once() ends at once when a pass ran while the last result was being pushed", async () => {
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n", "vault/actions/a.toml": action("a") });
    const write = t.repo.port.writeFiles;
    // a push takes a while: the pass woken by the attempt's end runs meanwhile
    t.repo.port.writeFiles = async (files, message) => (await new Promise((r) => setTimeout(r, 20)), write(files, message));
    await t.loop.once();
    expect(t.repo.commits.map((c) => c.message)).toEqual(["vault: result for a"]);
    expect(t.elapsed()).toBeLessThan(1_000);
  });

  it("pushes the results a failed push kept at the next pass, though nothing is pending at that tip", async () => {
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n", "vault/actions/a.toml": action("a") });
    const push = t.repo.port.writeFiles.bind(t.repo.port);
    let away = true;
    t.repo.port.writeFiles = async (files, message) => {
      if (away) throw new GitError("git push failed: the remote is away");
      return push(files, message);
    };
    let kept = 0;
    t.loop.events.on("results:kept", () => kept++);
    await t.loop.pass();
    await expect.poll(() => kept).toBe(1);
    away = false;
    // the remote was away longer than a full read is leaned on: the next pass reads afresh, finds nothing pending
    t.advance(60_000);
    await t.loop.pass();
    const quiet = await t.loop.pass();
    expect(quiet).toMatchObject({ started: [], refused: [], waiting: [] });
    await expect.poll(() => t.repo.tree.has("vault/actions/a.result.json")).toBe(true);
    expect(t.repo.commits.map((c) => c.message)).toEqual(["vault: result for a"]);
  });

  it("a pass at a tip with nothing pending does nothing more", async () => {
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n" });
    const first = await t.loop.pass();
    const second = await t.loop.pass();
    expect(first).toMatchObject({ started: [], refused: [], waiting: [] });
    expect(second).toEqual({ ...first });
    expect(t.dispatched).toEqual([]);
  });

  it("purges a child only once its result is pushed and the retention has passed", async () => {
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n", "vault/actions/a.toml": action("a") }, { purgeAfterMs: 60_000 });
    await t.loop.once();
    expect(t.repo.tree.has("vault/actions/a.result.json")).toBe(true);
    await t.loop.pass();
    expect(t.purged).toEqual([]);
    t.advance(60_000);
    await t.loop.pass();
    expect(t.purged).toEqual(["runner/dispatch-a"]);
    expect(t.seen.at(-1)).toBe("job:purged");
  });

  it("leaves an action that has a result alone: not dispatched, its result untouched", async () => {
    const t = setup({ ...files, "vault/actions/a.result.json": '{"by":"a human"}\n' });
    await t.loop.once();
    expect(t.repo.tree.get("vault/actions/a.result.json")!.toString()).toBe('{"by":"a human"}\n');
    expect(t.dispatched).not.toContain("runner/dispatch-a");
  });

  it("once() waits out refused passes (429) and finishes; past five failed passes in a row of an outage it gives up", async () => {
    const t = setup(files);
    const heartbeat = t.ledger.heartbeat.bind(t.ledger);
    // more than five in a row: Nomad is answering, so a refusal never ends `once`
    let refusals = 8;
    t.ledger.heartbeat = async (...args) => {
      if (refusals-- > 0) throw new NomadApiError("nomad: PUT /v1/var/dispatcher/instances/me failed: HTTP 429: Your IP is issuing too many concurrent connections", 429);
      return heartbeat(...args);
    };
    await t.loop.once();
    expect(t.dispatched.sort()).toEqual(["runner/dispatch-a", "runner/dispatch-b"]);

    const down = setup(files);
    let calls = 0;
    down.ledger.heartbeat = async () => {
      calls++;
      throw new NomadApiError("nomad: PUT /v1/var/dispatcher/instances/me failed: connect ECONNREFUSED", undefined);
    };
    await expect(down.loop.once()).rejects.toThrow("connect ECONNREFUSED");
    expect(calls).toBe(6);
  });
  it("a child's end frees its place under max_in_flight: the next action is dispatched while the result is still being recorded", async () => {
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n", "vault/actions/a.toml": action("a"), "vault/actions/c.toml": action("c") }, { maxInFlight: 1 });
    const update = t.ledger.update.bind(t.ledger);
    const dispatchedBeforeStored: string[][] = [];
    t.ledger.update = async (entry, changes) => {
      if (changes.state === "finished") {
        // the result's ledger write is slow: let the loop run meanwhile
        for (let i = 0; i < 20 && t.dispatched.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
        dispatchedBeforeStored.push([entry.id, ...t.dispatched]);
      }
      return update(entry, changes);
    };
    await t.loop.once();
    // the first result's write saw both children dispatched, with a limit of one
    expect(dispatchedBeforeStored[0]!.slice(1).sort()).toEqual(["runner/dispatch-a", "runner/dispatch-c"]);
    expect([...t.ledger.entries.values()].map((e) => [e.id, e.state])).toEqual([
      ["a", "recorded"],
      ["c", "recorded"],
    ]);
  });
  it("a child's end frees its place before its logs are read: the next action is dispatched meanwhile", async () => {
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n", "vault/actions/a.toml": action("a"), "vault/actions/c.toml": action("c") }, { maxInFlight: 1 });
    const readLog = t.deps.nomad.readLog;
    const dispatchedAtRead: string[][] = [];
    t.deps.nomad.readLog = async (allocId, task, type, max) => {
      if (allocId === "al-a" && type === "stdout") {
        // reading the first child's log is slow: let the loop run meanwhile
        for (let i = 0; i < 20 && t.dispatched.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
        dispatchedAtRead.push([...t.dispatched]);
      }
      return readLog(allocId, task, type, max);
    };
    await t.loop.once();
    expect(dispatchedAtRead).toEqual([["runner/dispatch-a", "runner/dispatch-c"]]);
    expect(JSON.parse(t.repo.tree.get("vault/actions/a.result.json")!.toString())).toMatchObject({ status: "succeeded", logs: "ran al-a" });
  });

  it("run(): a child's end starts the next pass at once, not at the next poll; the pass takes the tip the poll confirmed, without asking the remote", async () => {
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n", "vault/actions/a.toml": action("a"), "vault/actions/c.toml": action("c") }, { maxInFlight: 1, runsUntil: { a: 30_000 } });
    const syncs: (number | undefined)[] = [];
    const sync = t.repo.port.sync;
    t.repo.port.sync = (o) => (syncs.push(o?.maxAgeMs), sync(o));
    const stop = new AbortController();
    const POLL_MS = 3_600_000;
    const running = t.loop.run(stop.signal, POLL_MS);
    while (t.dispatched.length < 2 && t.elapsed() < POLL_MS) await new Promise((r) => setTimeout(r, 5));
    stop.abort();
    await running;
    expect(t.dispatched).toEqual(["runner/dispatch-a", "runner/dispatch-c"]);
    // a ran 30 s and its end was seen at the next look; the poll was an hour away
    expect(t.dispatchedAt[1]).toBeLessThan(POLL_MS / 10);
    expect(syncs.slice(0, 2)).toEqual([undefined, POLL_MS]);
  });

  it("run(): a freed place starts the next action the pass decided at once, without a pass of its own (issue 36)", async () => {
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n", "vault/actions/a.toml": action("a"), "vault/actions/c.toml": action("c"), "vault/actions/d.toml": action("d") }, { maxInFlight: 1, runsUntil: { a: 3_000 } });
    quickLooks(t);
    let syncs = 0;
    const sync = t.repo.port.sync;
    t.repo.port.sync = (o) => (syncs++, sync(o));
    /** the passes begun before each dispatch */
    const passesAtDispatch: number[] = [];
    const dispatch = t.deps.nomad.dispatch;
    t.deps.nomad.dispatch = (req) => (passesAtDispatch.push(syncs), dispatch(req));
    const stop = new AbortController();
    const running = t.loop.run(stop.signal, 3_600_000);
    while (t.dispatched.length < 3 && t.elapsed() < 600_000) await new Promise((r) => setTimeout(r, 5));
    stop.abort();
    await running;
    expect(t.dispatched).toEqual(["runner/dispatch-a", "runner/dispatch-c", "runner/dispatch-d"]);
    // c started when a's place freed, from the first pass's decisions: before the pass a's end woke
    expect(passesAtDispatch.slice(0, 2)).toEqual([1, 1]);
  });

  it("run(): a freed place starts nothing the passes decided at an older tip: a pass since found the action gone (issue 36)", async () => {
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n", "vault/actions/a.toml": action("a"), "vault/actions/c.toml": action("c") }, { maxInFlight: 1, runsUntil: { a: 3_000 } });
    quickLooks(t);
    let syncs = 0;
    const sync = t.repo.port.sync;
    t.repo.port.sync = (o) => (syncs++, sync(o));
    const stop = new AbortController();
    const running = t.loop.run(stop.signal, 3_600_000);
    while (syncs < 1) await new Promise((r) => setTimeout(r, 1));
    // someone else's commit removes c while a runs; its webhook's pass finds nothing pending
    t.repo.tree.delete("vault/actions/c.toml");
    await t.repo.port.writeFiles([{ path: "README", content: Buffer.from("c withdrawn\n") }], "withdraw c");
    t.loop.wake();
    while (syncs < 2) await new Promise((r) => setTimeout(r, 1));
    while (!t.repo.tree.has("vault/actions/a.result.json") && t.elapsed() < 600_000) await new Promise((r) => setTimeout(r, 5));
    stop.abort();
    await running;
    expect(t.dispatched).toEqual(["runner/dispatch-a"]);
  });

  it("run(): after a failed pass a freed place starts nothing until a pass succeeds, as the loop waits it out (issue 36)", async () => {
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n", "vault/actions/a.toml": action("a"), "vault/actions/c.toml": action("c") }, { maxInFlight: 1, runsUntil: { a: 3_000 } });
    quickLooks(t);
    let syncs = 0;
    const sync = t.repo.port.sync;
    t.repo.port.sync = (o) => (++syncs > 1 ? Promise.reject(new Error("remote unreachable")) : sync(o));
    const stop = new AbortController();
    const running = t.loop.run(stop.signal, 3_600_000);
    while (syncs < 1) await new Promise((r) => setTimeout(r, 1));
    t.loop.wake();
    while (syncs < 2) await new Promise((r) => setTimeout(r, 1));
    while (!t.repo.tree.has("vault/actions/a.result.json") && t.elapsed() < 600_000) await new Promise((r) => setTimeout(r, 5));
    stop.abort();
    await running;
    expect(t.repo.tree.has("vault/actions/a.result.json")).toBe(true);
    expect(t.dispatched).toEqual(["runner/dispatch-a"]);
  });

  it("once(): the passes woken by a completion take a tip confirmed within 10 s; the first and the last ask the remote", async () => {
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n", "vault/actions/a.toml": action("a"), "vault/actions/c.toml": action("c") }, { runsUntil: { a: 30_000, c: 60_000 } });
    const syncs: (number | undefined)[] = [];
    const sync = t.repo.port.sync;
    t.repo.port.sync = (o) => (syncs.push(o?.maxAgeMs), sync(o));
    await t.loop.once();
    expect(syncs.at(0)).toBeUndefined();
    expect(syncs.at(-1)).toBeUndefined();
    expect(syncs.length).toBeGreaterThan(2);
    expect(new Set(syncs.slice(1, -1))).toEqual(new Set([10_000]));
  });

  it("run(): a webhook's tip is a hint to sync; differing tips before a pass ask the remote; a hinted pass leaves the poll due", async () => {
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n" });
    const syncs: [number, SyncHint | undefined][] = [];
    const sync = t.repo.port.sync;
    t.repo.port.sync = (o) => (syncs.push([t.elapsed(), o]), sync(o));
    const until = async (n: number) => {
      while (syncs.length < n) await new Promise((r) => setTimeout(r, 1));
    };
    const stop = new AbortController();
    const running = t.loop.run(stop.signal, 60_000);
    await until(1);
    t.advance(10_000);
    t.loop.wake("c7");
    t.loop.wake("c8");
    await until(2);
    t.advance(10_000);
    t.loop.wake("c9");
    await until(4);
    stop.abort();
    await running;
    // the poll at 70 s is the one the pass at 10 s set: the hinted pass at 20 s did not move it
    expect(syncs).toEqual([
      [0, undefined],
      [10_000, undefined],
      [20_000, { pushed: "c9" }],
      [70_000, undefined],
    ]);
  });

  it("after a full read, a pass at the same commit reads only as far as the free places reach; the order stays the ids'", async () => {
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`vault/actions/x${String(i).padStart(2, "0")}.toml`, action(`x${String(i).padStart(2, "0")}`)]));
    // one ending after the other, so something is always in flight and results are pushed
    // once per (long) push interval: most passes are at a commit an earlier pass read
    const runsUntil = Object.fromEntries(Object.keys(many).map((p, i) => [p.slice("vault/actions/".length, -".toml".length), (i + 1) * 100]));
    const t = setup({ "formulas/deploy.sh": "#!/bin/sh\n", ...many }, { maxInFlight: 2, runsUntil });
    const passes: { commit: string; waiting: number }[] = [];
    t.loop.events.on("pass:done", (e) => passes.push({ commit: e.commit, waiting: e.waiting }));
    await t.loop.once();
    expect(t.dispatched).toEqual(Object.keys(many).map((p) => `runner/dispatch-${p.slice("vault/actions/".length, -".toml".length)}`));
    expect(t.repo.tree.has("vault/actions/x39.result.json")).toBe(true);
    // the first pass found 38 waiting on the limit. Each pass after a completion read all that were
    // left again (about 40 × 40 ÷ 2 waits in all); now a full read is redone at a new commit or
    // 10 s after the last (here once, at the first completion, a 10 s look later), and the other
    // passes read only as far as the free place
    expect(passes[0]).toEqual({ commit: "c1", waiting: 38 });
    const later = passes.filter((p, i) => i > 0 && p.commit === passes[i - 1]!.commit);
    expect(later.length).toBeGreaterThan(30);
    expect(later.map((p) => p.waiting).filter((w) => w > 1)).toEqual([37]);
  });

  it("never lists the ledger nor reads a new action's entry: the claim finds an entry there is, and the next pass reads it", async () => {
    const three = { "formulas/deploy.sh": "#!/bin/sh\n", "vault/actions/a.toml": action("a"), "vault/actions/c.toml": action("c"), "vault/actions/d.toml": action("d") };
    /** the ledger's listings and the entries read, in order */
    const count = (t: ReturnType<typeof setup>) => {
      const list = t.ledger.list.bind(t.ledger);
      const get = t.ledger.get.bind(t.ledger);
      const seen = { lists: 0, read: [] as string[] };
      t.ledger.list = async () => (seen.lists++, list());
      t.ledger.get = async (id) => (seen.read.push(id), get(id));
      return seen;
    };
    const plain = setup(three, { maxInFlight: 1 });
    const plainSeen = count(plain);
    await plain.loop.once();
    expect([plain.dispatched.length, plainSeen]).toEqual([3, { lists: 0, read: [] }]);
    // a later action, passes that ask the remote: still nothing listed or read
    await plain.repo.port.writeFiles([{ path: "vault/actions/e.toml", content: Buffer.from(action("e")) }], "one more");
    await plain.loop.once();
    expect([plain.dispatched.length, plainSeen]).toEqual([4, { lists: 0, read: [] }]);

    const raced = setup(three, { maxInFlight: 1 });
    const racedSeen = count(raced);
    const create = raced.ledger.create.bind(raced.ledger);
    let taken = false;
    // another instance claims "c" before we do, and finishes it at once
    raced.ledger.create = async (id, fields) => {
      if (id !== "c" || taken) return create(id, fields);
      taken = true;
      await create(id, { ...fields, owner: "other", state: "recorded" });
      await raced.repo.port.writeFiles([{ path: "vault/actions/c.result.json", content: Buffer.from('{"id":"c","status":"succeeded"}\n') }], "other's result");
      return undefined;
    };
    await raced.loop.once();
    expect(raced.dispatched.sort()).toEqual(["runner/dispatch-a", "runner/dispatch-d"]);
    // its result is at the tip by the next pass: nothing left to read
    expect(racedSeen).toEqual({ lists: 0, read: [] });

    // another instance claims "c" first and dies (no heartbeat): the lost claim makes the next
    // pass read "c"'s entry and take it over
    const left = setup(three, { maxInFlight: 1 });
    const leftSeen = count(left);
    const leftCreate = left.ledger.create.bind(left.ledger);
    let claimed = false;
    left.ledger.create = async (id, fields) => {
      if (id !== "c" || claimed) return leftCreate(id, fields);
      claimed = true;
      await leftCreate(id, { ...fields, owner: "gone" });
      return undefined;
    };
    await left.loop.once();
    expect(left.dispatched.sort()).toEqual(["runner/dispatch-a", "runner/dispatch-c", "runner/dispatch-d"]);
    expect(leftSeen.lists).toBe(0);
    expect(leftSeen.read).toContain("c");
  });
});
