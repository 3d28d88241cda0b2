import { describe, expect, it } from "vitest";
import { timelines } from "../../../bench/timeline.js";

const line = (time: number, msg: string, more: Record<string, unknown> = {}) => ({ time, msg, ...more });

describe("timelines", () => {
  it("splits batches at each push webhook and names each gap of an action's life", () => {
    const lines = [
      line(0, "push webhook: starting a pass"),
      line(50, "pass done", { duration_ms: 30, synced_ms: 12, read_ms: 20, started: 1 }),
      line(70, "dispatched", { action: "a" }),
      line(80, "pass done", { duration_ms: 5, started: 1 }),
      line(90, "dispatched", { action: "b" }),
      line(300, "child running", { action: "a" }),
      line(1000, "child ended: its place is free", { action: "a" }),
      line(1030, "pass done", { duration_ms: 10, started: 1 }),
      line(1045, "dispatched", { action: "c" }),
      line(1060, "action finished", { action: "a" }),
      line(1100, "results pushed", { results: ["a"] }),
      line(5000, "push webhook: starting a pass"),
      line(5010, "dispatched", { action: "d" }),
    ];
    const [first, second] = timelines(lines, 2);
    expect(first!.actions).toBe(3);
    expect(Object.fromEntries(first!.gaps)).toEqual({
      "webhook → first dispatching pass starts": [20],
      "first dispatching pass (sync, read, decide)": [30],
      "… of it: sync (the webhook's tip fetched)": [12],
      "… of it: the actions directory read": [8],
      "… of it: decide and start (catalog, approvals, ledger, plan)": [10],
      "first pass done → dispatched (first wave)": [20, 40],
      "dispatched → child running": [230],
      "child running → child ended": [700],
      "child ended → result in the ledger": [60],
      "result in the ledger → pushed": [40],
      "dispatched → pushed (service)": [1030],
      "webhook → pushed (batch)": [1100],
      "child ended → next dispatched (a freed place)": [45],
      "child ended → the next start decided (pass start, or a freed place's own start)": [20],
      "next start decided → its dispatch logged": [15],
      "freed places started by a pass (1 each)": [1],
      "pass duration (every pass)": [30, 5, 10],
    });
    expect(second!.actions).toBe(1);
  });

  it("counts a place a freed start took, without a pass, from the child's end to that start", () => {
    const lines = [
      line(0, "push webhook: starting a pass"),
      line(40, "pass done", { duration_ms: 30, started: 1 }),
      line(60, "dispatched", { action: "a" }),
      line(1000, "child ended: its place is free", { action: "a" }),
      line(1001, "a freed place started the next decided actions", { actions: ["b"] }),
      line(1030, "pass done", { duration_ms: 2, started: 0 }),
      line(1040, "dispatched", { action: "b" }),
    ];
    const gaps = timelines(lines, 1)[0]!.gaps;
    expect([gaps.get("child ended → the next start decided (pass start, or a freed place's own start)"), gaps.get("next start decided → its dispatch logged"), gaps.get("freed places started without a pass (1 each)")]).toEqual([[1], [39], [1]]);
  });
});
