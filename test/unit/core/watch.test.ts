import { describe, expect, it } from "vitest";
import type { AllocationState, JobPlacement, NomadPort } from "../../../dispatcher/core/ports.js";
import { startedAllocation, waitForAllocation, watchPlacements } from "../../../dispatcher/core/watch.js";

const alloc = (id: string, clientStatus: AllocationState["clientStatus"], createIndex: number, startedAt?: string): AllocationState => ({ id, node: "n1", clientStatus, createIndex, ...(startedAt ? { startedAt } : {}) });

/** A Nomad port whose blocking query answers from a script, recording the indexes asked. */
function scripted(placements: JobPlacement[]) {
  const asked: number[] = [];
  const nomad: Pick<NomadPort, "watchJob"> = {
    async watchJob(_jobId, index) {
      asked.push(index);
      return placements[Math.min(asked.length - 1, placements.length - 1)]!;
    },
  };
  return { nomad, asked };
}

function clock(stepMs: number) {
  let t = 0;
  return { now: () => new Date((t += stepMs)), sleep: async () => undefined };
}

describe("watchPlacements", () => {
  it("passes each answer's index into the next blocking query", async () => {
    const { nomad, asked } = scripted([
      { allocations: [], index: 5 },
      { allocations: [], index: 9 },
    ]);
    const it = watchPlacements(nomad, "j");
    await it.next();
    await it.next();
    await it.next();
    expect(asked).toEqual([0, 5, 9]);
  });
});

describe("waitForAllocation", () => {
  it("returns the latest allocation once it has started", async () => {
    const { nomad } = scripted([
      { allocations: [], index: 1 },
      { allocations: [alloc("a", "pending", 3)], index: 2 },
      { allocations: [alloc("a", "running", 3, "2026-12-02T10:00:00Z")], index: 3 },
    ]);
    expect(await waitForAllocation(nomad, "j", startedAllocation, { clock: clock(1), timeoutMs: 1000 })).toMatchObject({ id: "a", clientStatus: "running" });
  });

  it("follows the allocation it was given even when a newer one appears", async () => {
    const { nomad } = scripted([
      { allocations: [alloc("a", "running", 3)], index: 1 },
      { allocations: [alloc("a", "failed", 3), alloc("b", "pending", 7)], index: 2 },
    ]);
    const ended = (allocs: AllocationState[]) => allocs.find((x) => x.id === "a" && x.clientStatus === "failed");
    expect(await waitForAllocation(nomad, "j", ended, { clock: clock(1), timeoutMs: Infinity })).toMatchObject({ id: "a", clientStatus: "failed" });
  });

  it("gives up after its timeout, and looks once with 0", async () => {
    const { nomad, asked } = scripted([{ allocations: [alloc("a", "pending", 1)], index: 1 }]);
    expect(await waitForAllocation(nomad, "j", startedAllocation, { clock: clock(400), timeoutMs: 1000 })).toBeUndefined();
    // the clock reads 400, then 800, 1200, 1600 after each answer: the deadline (1400) passes on the third
    expect(asked).toEqual([0, 1, 1]);
    const once = scripted([{ allocations: [], index: 1 }]);
    expect(await waitForAllocation(once.nomad, "j", startedAllocation, { clock: clock(1), timeoutMs: 0 })).toBeUndefined();
    expect(once.asked).toEqual([0]);
  });
});
