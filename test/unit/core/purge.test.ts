import { describe, expect, it } from "vitest";
import { createPurgeSchedule, entryExpired, resumable, silentInstances } from "../../../dispatcher/core/purge.js";

describe("createPurgeSchedule", () => {
  it("hands out a child only once its retention after the push has passed, and only once", () => {
    const s = createPurgeSchedule(60_000);
    s.add("a", "runner/dispatch-1", new Date("2026-12-02T10:00:00Z"));
    s.add("b", "runner/dispatch-2", new Date("2026-12-02T10:00:30Z"));
    expect(s.takeDue(new Date("2026-12-02T10:00:59Z"))).toEqual([]);
    expect(s.takeDue(new Date("2026-12-02T10:01:00Z"))).toEqual([{ id: "a", jobId: "runner/dispatch-1" }]);
    expect(s.takeDue(new Date("2026-12-02T10:01:00Z"))).toEqual([]);
    expect(s.size()).toBe(1);
    expect(s.takeDue(new Date("2026-12-02T11:00:00Z"))).toEqual([{ id: "b", jobId: "runner/dispatch-2" }]);
  });

  it("schedules nothing with a retention of 0 (purging off)", () => {
    const s = createPurgeSchedule(0);
    s.add("a", "runner/dispatch-1", new Date(0));
    expect(s.size()).toBe(0);
    expect(s.takeDue(new Date())).toEqual([]);
  });
});

describe("silentInstances", () => {
  const NOW = new Date("2024-05-01T12:00:00.000Z");
  const beat = (instance: string, agoMs: number) => ({ instance, seenAt: new Date(NOW.getTime() - agoMs) });
  it("picks the replicas silent longer than the retention, never this one", () => {
    const beats = [beat("gone", 3_600_001), beat("just", 3_600_000), beat("alive", 1000), beat("me", 9_999_999)];
    expect(silentInstances(beats, "me", NOW, 3_600_000).map((b) => b.instance)).toEqual(["gone"]);
  });
});

describe("entryExpired", () => {
  const NOW = new Date("2024-05-01T12:00:00.000Z");
  const at = (agoMs: number) => new Date(NOW.getTime() - agoMs).toISOString();
  it("lets only a recorded entry go, once the retention has passed since it was recorded", () => {
    expect(entryExpired({ state: "recorded", updatedAt: at(60_001) }, NOW, 60_000)).toBe(true);
    expect(entryExpired({ state: "recorded", updatedAt: at(60_000) }, NOW, 60_000)).toBe(false);
    for (const state of ["claimed", "dispatched", "finished"]) expect(entryExpired({ state, updatedAt: at(10 * 60_000) }, NOW, 60_000)).toBe(false);
  });
});

describe("resumable", () => {
  it("is a recorded entry with a job not yet purged, due from when it was recorded", () => {
    const e = { state: "recorded", jobId: "runner/dispatch-1", updatedAt: "2024-05-01T12:00:00.000Z" };
    expect(resumable(e)).toEqual(new Date("2024-05-01T12:00:00.000Z"));
    expect(resumable({ ...e, purgedAt: "2024-05-01T12:01:00.000Z" })).toBeUndefined();
    expect(resumable({ ...e, jobId: undefined })).toBeUndefined();
    expect(resumable({ ...e, state: "finished" })).toBeUndefined();
  });
});
