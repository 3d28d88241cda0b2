// Result pushes over a repo port in memory: what runs once a result is at the tip, what a failed
// push keeps, and when a push starts.
import { describe, expect, it } from "vitest";
import { createLoopEmitter } from "../../../dispatcher/core/events.js";
import { createFlusher } from "../../../dispatcher/core/flush.js";
import type { OpsRepoPort, RepoFile } from "../../../dispatcher/core/ports.js";
import type { ActionResult } from "../../../dispatcher/core/result.js";
import { GitError } from "../../../dispatcher/errors.js";
import { capturingLog, manualClock } from "../../helpers/manual-clock.js";

const result = (id: string) => ({ id, status: "succeeded", exit_code: 0 }) as ActionResult;

function setup() {
  const clock = manualClock();
  const events = createLoopEmitter();
  const seen: string[] = [];
  events.on("results:pushed", (e) => seen.push(`pushed ${e.ids.join(",")}`));
  events.on("results:kept", (e) => seen.push(`kept ${e.waiting}`));
  events.on("results:unwritable", (e) => seen.push(`unwritable ${e.ids.join(",")}`));
  const commits: string[] = [];
  /** paths already at the tip, whether the remote is away, whether pushes are held open until released */
  const state = { existing: new Set<string>(), away: false, hold: false };
  /** pushes started and held open: the test ends each one */
  const held: (() => void)[] = [];
  const repo = {
    async writeFiles(files: RepoFile[], message: string) {
      commits.push(message);
      if (state.hold) await new Promise<void>((r) => held.push(r));
      if (state.away) throw new GitError("cannot push to ops: the remote is away");
      return { commit: `c${commits.length}`, skipped: files.filter((f) => state.existing.has(f.path)).map((f) => f.path), rejections: 0 };
    },
  } as unknown as OpsRepoPort;
  const f = createFlusher({ repo, events, log: capturingLog().log, settings: { actionsDir: "vault/actions", maxLogBytes: 1024 } });
  /** lets the flusher run what is pending (no time passes: the clock never moves) */
  const settle = async () => {
    for (let i = 0; i < 50; i++) await Promise.resolve();
  };
  return { f, clock, seen, commits, state, held, settle };
}

describe("createFlusher", () => {
  it("once pushed, runs each result's continuation: written and skipped (already at the tip) alike", async () => {
    const t = setup();
    const marked: string[] = [];
    t.state.existing.add("vault/actions/b.result.json");
    t.f.add(result("a"), "", async () => void marked.push("a"));
    t.f.add(result("b"), "", async () => void marked.push("b"));
    t.f.add(result("refused"), "");
    await t.f.flush();
    expect([t.commits, t.seen, marked]).toEqual([["vault: results for a, b, refused"], ["pushed a,refused"], ["a", "b"]]);
    expect([t.f.size(), t.f.holds("a"), t.f.holds("never")]).toEqual([0, true, false]);
  });

  it("a failed push keeps the results queued and their continuations for the next push; flushSafely reports it", async () => {
    const t = setup();
    const marked: string[] = [];
    t.f.add(result("a"), "", async () => void marked.push("a"));
    t.state.away = true;
    await expect(t.f.flush()).rejects.toThrow("cannot push to ops: the remote is away");
    await t.f.flushSafely();
    expect([t.seen, marked, t.f.size()]).toEqual([["kept 1"], [], 1]);
    t.state.away = false;
    await t.f.flush();
    expect([t.commits.at(-1), marked]).toEqual(["vault: result for a", ["a"]]);
  });
});

describe("createFlusher: group commit", () => {
  it("a lone result is pushed at once: no window, no interval, no timer", async () => {
    const t = setup();
    t.f.queue(result("a"), "");
    await t.settle();
    expect([t.commits, t.seen, t.clock.sleeping()]).toEqual([["vault: result for a"], ["pushed a"], []]);
  });

  it("what is queued during a push lands in exactly one next push, started as soon as the first ends", async () => {
    const t = setup();
    t.state.hold = true;
    const marked: string[] = [];
    const mark = (id: string) => async () => void marked.push(id);
    t.f.queue(result("a"), "", mark("a"));
    await t.settle();
    expect(t.commits).toEqual(["vault: result for a"]);
    // b, c and d finish while a's push is held open: no second push starts meanwhile
    for (const id of ["b", "c", "d"]) t.f.queue(result(id), "", mark(id));
    t.f.schedule();
    await t.settle();
    expect([t.commits.length, t.held.length]).toEqual([1, 1]);
    t.held.shift()!();
    await t.settle();
    expect(t.commits).toEqual(["vault: result for a", "vault: results for b, c, d"]);
    expect(marked).toEqual(["a"]);
    t.held.shift()!();
    await t.f.settled();
    expect([t.commits.length, t.seen, marked, t.f.size(), t.clock.sleeping()]).toEqual([2, ["pushed a", "pushed b,c,d"], ["a", "b", "c", "d"], 0, []]);
  });

  it("the next push does not wait for the ledger marks of the last; settled() waits for both", async () => {
    const t = setup();
    let release = () => {};
    const markA = () => new Promise<void>((r) => (release = r));
    t.f.queue(result("a"), "", markA);
    await t.settle();
    t.f.queue(result("b"), "");
    await t.settle();
    expect(t.commits).toEqual(["vault: result for a", "vault: result for b"]);
    let settled = false;
    const done = t.f.settled().then(() => (settled = true));
    await t.settle();
    expect(settled).toBe(false);
    release();
    await done;
    expect(settled).toBe(true);
  });

  it("a failed push ends the round, the results kept; the next result (or pass) pushes them with it", async () => {
    const t = setup();
    t.state.away = true;
    t.f.queue(result("a"), "");
    await t.f.settled();
    expect([t.commits, t.seen, t.f.size()]).toEqual([["vault: result for a"], ["kept 1"], 1]);
    t.state.away = false;
    t.f.queue(result("b"), "");
    await t.f.settled();
    expect(t.commits).toEqual(["vault: result for a", "vault: results for a, b"]);
    expect(t.seen).toEqual(["kept 1", "pushed a,b"]);
  });
});
