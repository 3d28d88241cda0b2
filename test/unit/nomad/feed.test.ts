// The shared allocation feed against a scripted Nomad client: when a quiet wait lists the job
// (before the stream is live, after a reconnect) and when it costs nothing (covered by a live stream).
import { getEventListeners } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../../dispatcher/log.js";
import type { AllocationState, DispatchedJob, JobPlacement } from "../../../dispatcher/core/ports.js";
import type { AllocationEventBatch, NomadClient } from "../../../dispatcher/nomad/client.js";
import { createAllocationFeed, type AllocationFeed } from "../../../dispatcher/nomad/feed.js";

const running = (id: string): AllocationState => ({ id, clientStatus: "running", node: "n1" }) as AllocationState;
const complete = (id: string): AllocationState => ({ id, clientStatus: "complete", node: "n1", exitCode: 0 }) as AllocationState;

/** A Nomad client whose event stream the test writes line by line; listings are counted. */
function scriptedNomad(unplaced = new Set<string>()) {
  const listings: string[] = [];
  const connections: AbortSignal[] = [];
  const froms: number[] = [];
  let push: ((b: AllocationEventBatch | Error) => void) | undefined;
  const queue: (AllocationEventBatch | Error)[] = [];
  let index = 10;
  let dispatches = 0;
  const client = {
    async dispatch(): Promise<DispatchedJob> {
      return { jobId: `runner/dispatch-${++dispatches}`, evalId: `e${dispatches}` };
    },
    async watchJob(jobId: string): Promise<JobPlacement> {
      listings.push(jobId);
      if (unplaced.has(jobId)) return { allocations: [], blockedReason: "no node has the volume", evaluations: 1, index: ++index };
      return { allocations: [running(`${jobId}-a`)], index: ++index };
    },
    async *allocationEvents(from: number, signal: AbortSignal): AsyncGenerator<AllocationEventBatch> {
      connections.push(signal);
      froms.push(from);
      for (;;) {
        const next = queue.shift() ?? (await new Promise<AllocationEventBatch | Error | undefined>((r) => {
          push = r;
          signal.addEventListener("abort", () => r(undefined), { once: true });
        }));
        push = undefined;
        if (next === undefined || signal.aborted) return;
        if (next instanceof Error) throw next;
        yield next;
      }
    },
  };
  const send = (b: AllocationEventBatch | Error) => (push ? push(b) : queue.push(b));
  return { client: client as unknown as NomadClient, listings, connections, froms, send, nextIndex: () => ++index };
}

const silent = createLogger({ level: "silent", pretty: false });
const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
let feed: AllocationFeed | undefined;
afterEach(() => feed?.close());

describe("createAllocationFeed", () => {
  it("lists a job watched before the stream is live again after a quiet wait, and not once the stream covers it", async () => {
    const nomad = scriptedNomad();
    feed = createAllocationFeed(nomad.client, silent, { reconnectMs: 5 });
    const first = await feed.watchJob("j1", 0, 1000);
    expect(nomad.listings).toEqual(["j1"]);
    nomad.send({ heartbeat: true });
    await tick();
    // not covered (listed before the first line): the quiet wait lists it
    const second = await feed.watchJob("j1", first.index, 20);
    expect(nomad.listings).toEqual(["j1", "j1"]);
    // listed while live: covered, so quiet waits cost no listing
    const third = await feed.watchJob("j1", second.index, 20);
    await feed.watchJob("j1", third.index, 20);
    expect(nomad.listings).toEqual(["j1", "j1"]);
  });

  it("lists a covered job without an allocation again after the relist interval, then twice as long each time up to the cap: only a listing says why it waits", async () => {
    const nomad = scriptedNomad(new Set(["blocked"]));
    feed = createAllocationFeed(nomad.client, silent, { reconnectMs: 5, unplacedRelistMs: 200, unplacedRelistMaxMs: 500 });
    nomad.send({ heartbeat: true });
    await feed.watchJob("other", 0, 1000);
    await tick();
    const listed = () => nomad.listings.filter((j) => j === "blocked").length;
    let p = await feed.watchJob("blocked", 0, 1000);
    p = await feed.watchJob("blocked", p.index, 20);
    expect(listed()).toBe(1);
    await tick(200);
    p = await feed.watchJob("blocked", p.index, 20);
    expect(listed()).toBe(2);
    expect(p).toMatchObject({ allocations: [], blockedReason: "no node has the volume" });
    // the second empty listing doubles the interval: 400 ms
    await tick(200);
    p = await feed.watchJob("blocked", p.index, 20);
    expect(listed()).toBe(2);
    await tick(200);
    p = await feed.watchJob("blocked", p.index, 20);
    expect(listed()).toBe(3);
    // 800 ms would be next, the cap makes it 500
    await tick(500);
    p = await feed.watchJob("blocked", p.index, 20);
    expect(listed()).toBe(4);
  });

  it("answers from an event without listing", async () => {
    const nomad = scriptedNomad();
    feed = createAllocationFeed(nomad.client, silent, { reconnectMs: 5 });
    nomad.send({ heartbeat: true });
    const first = await feed.watchJob("j2", 0, 1000);
    await tick();
    const waiting = feed.watchJob("j2", first.index, 5000);
    nomad.send({ index: nomad.nextIndex(), allocations: [{ ...complete("j2-a"), jobId: "j2" }] });
    const placement = await waiting;
    expect(placement.allocations.map((a) => [a.id, a.clientStatus])).toEqual([["j2-a", "complete"]]);
    expect(nomad.listings).toEqual(["j2"]);
  });

  it("starts the stream at Nomad's newest index, not its whole buffer, and resumes a broken one where it stopped", async () => {
    const nomad = scriptedNomad();
    feed = createAllocationFeed(nomad.client, silent, { reconnectMs: 5 });
    const first = await feed.watchJob("j1", 0, 1000);
    expect(nomad.froms).toEqual([Number.MAX_SAFE_INTEGER]);
    // a wait keeps the stream open while it breaks off
    const waiting = feed.watchJob("j1", first.index, 1000);
    nomad.send({ index: 42, allocations: [{ ...complete("other-a"), jobId: "other" }] });
    await tick();
    nomad.send(new Error("connection reset"));
    await tick(30);
    expect(nomad.froms).toEqual([Number.MAX_SAFE_INTEGER, 42]);
    await waiting;
  });

  it("uncovers every job when the stream breaks off: the next quiet wait lists it", async () => {
    const nomad = scriptedNomad();
    feed = createAllocationFeed(nomad.client, silent, { reconnectMs: 5 });
    nomad.send({ heartbeat: true });
    await feed.watchJob("j3", 0, 1000);
    await tick();
    const covered = await feed.watchJob("j3", 0, 1000);
    const quiet = await feed.watchJob("j3", covered.index, 20);
    expect(nomad.listings).toEqual(["j3", "j3"]);
    nomad.send(new Error("connection reset"));
    await tick(20);
    expect(nomad.connections).toHaveLength(2);
    nomad.send({ heartbeat: true });
    await tick();
    await feed.watchJob("j3", quiet.index, 20);
    expect(nomad.listings).toEqual(["j3", "j3", "j3"]);
  });

  it("cuts a connection that stays silent past the silence bound and opens another", async () => {
    const nomad = scriptedNomad();
    feed = createAllocationFeed(nomad.client, silent, { reconnectMs: 5, silenceMs: 50 });
    await feed.watchJob("j4", 0, 1000);
    await tick(150);
    expect(nomad.connections[0]!.aborted).toBe(true);
    expect(nomad.connections.length).toBeGreaterThanOrEqual(2);
  });
  const request = { job: "runner", meta: {}, idempotencyToken: "t" };

  /** the first dispatch opens the stream; it is live once its first line is read */
  async function openLive(nomad: ReturnType<typeof scriptedNomad>, f: AllocationFeed): Promise<void> {
    await f.dispatch(request);
    nomad.send({ heartbeat: true });
    await tick();
  }

  it("watches a child dispatched on the live stream without listing it, from the changes held since its dispatch", async () => {
    const nomad = scriptedNomad();
    feed = createAllocationFeed(nomad.client, silent, { reconnectMs: 5 });
    await openLive(nomad, feed);
    const { jobId } = await feed.dispatch(request);
    // its allocation runs and ends before anyone watches it (the ledger records the dispatch first)
    nomad.send({ index: 50, allocations: [{ ...running(`${jobId}-a`), jobId }] });
    await tick();
    nomad.send({ index: 51, allocations: [{ ...complete(`${jobId}-a`), jobId }] });
    await tick();
    const placement = await feed.watchJob(jobId, 0, 1000);
    expect(placement).toMatchObject({ index: 51, allocations: [{ id: `${jobId}-a`, clientStatus: "complete" }] });
    expect(nomad.listings).toEqual([]);
  });

  it("waits for the first change of a covered child without listing it", async () => {
    const nomad = scriptedNomad();
    feed = createAllocationFeed(nomad.client, silent, { reconnectMs: 5, unplacedRelistMs: 200 });
    await openLive(nomad, feed);
    const { jobId } = await feed.dispatch(request);
    const quiet = await feed.watchJob(jobId, 0, 20);
    expect(quiet).toMatchObject({ allocations: [], index: 0 });
    const waiting = feed.watchJob(jobId, quiet.index, 1000);
    await tick();
    nomad.send({ index: 60, allocations: [{ ...running(`${jobId}-a`), jobId }] });
    expect(await waiting).toMatchObject({ index: 60, allocations: [{ clientStatus: "running" }] });
    expect(nomad.listings).toEqual([]);
  });

  it("lists a child dispatched before the stream was live, across a reconnect, or while held changes were dropped for room", async () => {
    const nomad = scriptedNomad();
    feed = createAllocationFeed(nomad.client, silent, { reconnectMs: 5, recentMax: 2 });
    // the first dispatch opens the stream: not live yet
    const before = await feed.dispatch(request);
    await feed.watchJob(before.jobId, 0, 1000);
    expect(nomad.listings).toEqual([before.jobId]);

    nomad.send({ heartbeat: true });
    await tick();
    const broken = await feed.dispatch(request);
    nomad.send(new Error("connection reset"));
    await tick(20);
    nomad.send({ heartbeat: true });
    await tick();
    await feed.watchJob(broken.jobId, 0, 1000);
    expect(nomad.listings).toEqual([before.jobId, broken.jobId]);

    const crowdedOut = await feed.dispatch(request);
    nomad.send({ index: 70, allocations: [{ ...running(`${crowdedOut.jobId}-a`), jobId: crowdedOut.jobId }] });
    // three other jobs' changes past the room for two: the oldest held, this child's, is dropped
    await tick();
    for (const other of ["o1", "o2", "o3"]) {
      nomad.send({ index: 71, allocations: [{ ...running(`${other}-a`), jobId: other }] });
      await tick();
    }
    await feed.watchJob(crowdedOut.jobId, 0, 1000);
    expect(nomad.listings).toEqual([before.jobId, broken.jobId, crowdedOut.jobId]);
  });

  it("rejects every wait on a signal when it aborts, with one listener on the signal however many wait", async () => {
    const nomad = scriptedNomad();
    feed = createAllocationFeed(nomad.client, silent, { reconnectMs: 5 });
    nomad.send({ heartbeat: true });
    await tick();
    const stop = new AbortController();
    const first = await Promise.all(["j1", "j2", "j3"].map((j) => feed!.watchJob(j, 0, 1000)));
    const waits = ["j1", "j2", "j3"].map((j, i) => feed!.watchJob(j, first[i]!.index, 60_000, stop.signal));
    await tick();
    expect(getEventListeners(stop.signal, "abort")).toHaveLength(1);
    stop.abort(new Error("dispatcher stopping"));
    expect(await Promise.allSettled(waits)).toEqual(["j1", "j2", "j3"].map(() => ({ status: "rejected", reason: new Error("dispatcher stopping") })));
  });
});
