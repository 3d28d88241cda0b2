// How the loop ends: the order of drain (abort, say draining, let attempts end, push, free
// places), that it never throws on a failed push, and that finish rejects on one.
import { describe, expect, it } from "vitest";
import { drain, finish } from "../../../dispatcher/core/shutdown.js";
import { GitError } from "../../../dispatcher/errors.js";
import { capturingLog } from "../../helpers/manual-clock.js";

function parts(flushFails = false) {
  const calls: string[] = [];
  const controller = new AbortController();
  const p = {
    controller,
    log: capturingLog().log,
    heartbeat: { beat: async (force?: boolean) => void calls.push(`beat force=${force} aborted=${controller.signal.aborted}`) },
    attempts: { settled: async () => void calls.push("attempts settled") },
    flusher: {
      settled: async () => void calls.push("push settled"),
      flush: async () => {
        calls.push("flush");
        if (flushFails) throw new GitError("cannot push to ops: the remote is away");
      },
      flushSafely: async () => void calls.push("flush safely"),
    },
    shared: { settle: async () => void calls.push("places settled") },
  };
  return { p, calls };
}

describe("drain", () => {
  it("stops claiming first, says it drains, waits for the attempts, pushes what is held, then frees the shared places", async () => {
    const t = parts();
    await drain(t.p);
    expect(t.calls).toEqual(["beat force=true aborted=true", "attempts settled", "push settled", "flush safely", "places settled"]);
    expect(String(t.p.controller.signal.reason)).toBe("Error: dispatcher stopping");
  });

  it("goes on when the last heartbeat fails", async () => {
    const t = parts();
    t.p.heartbeat.beat = async () => {
      throw new Error("nomad away");
    };
    await drain(t.p);
    expect(t.calls).toEqual(["attempts settled", "push settled", "flush safely", "places settled"]);
  });
});

describe("finish", () => {
  it("waits for the push in progress, pushes the rest and frees the places; rejects when the push fails", async () => {
    const ok = parts();
    await finish(ok.p);
    expect(ok.calls).toEqual(["push settled", "flush", "places settled"]);
    const away = parts(true);
    await expect(finish(away.p)).rejects.toThrow("cannot push to ops: the remote is away");
    expect(away.calls).toEqual(["push settled", "flush"]);
  });
});
