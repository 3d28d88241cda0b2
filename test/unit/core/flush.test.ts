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
  /** paths already at the tip, and whether the remote is away */
  const state = { existing: new Set<string>(), away: false };
  const repo = {
    async writeFiles(files: RepoFile[], message: string) {
      if (state.away) throw new GitError("cannot push to ops: the remote is away");
      commits.push(message);
      return { commit: `c${commits.length}`, skipped: files.filter((f) => state.existing.has(f.path)).map((f) => f.path), rejections: 0 };
    },
  } as unknown as OpsRepoPort;
  const f = createFlusher({ repo, clock, events, log: capturingLog().log, settings: { actionsDir: "vault/actions", maxLogBytes: 1024, commitWindowMs: 200, pushIntervalMs: 0 }, inFlight: () => 0 });
  return { f, clock, seen, commits, state };
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
    expect([t.commits, marked]).toEqual([["vault: result for a"], ["a"]]);
  });
});
