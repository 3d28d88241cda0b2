import { describe, expect, it } from "vitest";
import type { AllocationState } from "../../../dispatcher/core/ports.js";
import { formatAge, formatInstancesTable, formatStatusTable, mergeStatus, type LiveChild, type StatusInput } from "../../../dispatcher/core/status.js";

const REMOTE = "git@example.test:ops.git";
const now = new Date("2026-03-01T12:00:00Z");

function child(id: string, jobId: string, submitted: string, alloc?: Partial<AllocationState>, meta: Record<string, string> = {}): LiveChild {
  return {
    jobId,
    parent: jobId.split("/")[0]!,
    meta: { action_id: id, ops_repo: REMOTE, ...meta },
    submittedAt: new Date(submitted),
    alloc: alloc && { id: `${jobId.slice(-4)}aaaa-1111-2222-3333-444455556666`, node: "node-1", clientStatus: "running", createIndex: 1, ...alloc },
  };
}

const base: StatusInput = { remote: REMOTE, kinds: { runner: "runner", sidecar: "sidecar" }, pending: [], results: [], children: [] };

describe("mergeStatus", () => {
  it("shows a pending action without a child as pending", () => {
    expect(mergeStatus({ ...base, pending: [{ id: "a", kind: "runner" }] })).toEqual([{ id: "a", kind: "runner", state: "pending" }]);
  });

  it("follows the child's latest allocation: queued, starting, running, finishing", () => {
    const rows = mergeStatus({
      ...base,
      pending: [{ id: "q" }, { id: "s", kind: "runner" }, { id: "r", kind: "sidecar" }, { id: "f", kind: "runner" }],
      children: [
        child("q", "runner/dispatch-1-q000", "2026-03-01T11:59:00Z"),
        child("s", "runner/dispatch-1-s000", "2026-03-01T11:58:00Z", { clientStatus: "pending" }),
        child("r", "sidecar/dispatch-1-r000", "2026-03-01T11:00:00Z", { clientStatus: "running", startedAt: "2026-03-01T11:30:00Z" }),
        child("f", "runner/dispatch-1-f000", "2026-03-01T11:00:00Z", { clientStatus: "failed", finishedAt: "2026-03-01T11:59:50Z", exitCode: 3 }),
      ],
    });
    expect(rows.map((r) => [r.id, r.state, r.since, r.exitCode])).toEqual([
      ["f", "finishing", "2026-03-01T11:59:50Z", 3],
      ["q", "queued", "2026-03-01T11:59:00.000Z", undefined],
      ["r", "running", "2026-03-01T11:30:00Z", undefined],
      ["s", "starting", "2026-03-01T11:58:00.000Z", undefined],
    ]);
    expect(rows.find((r) => r.id === "r")).toMatchObject({ kind: "sidecar", job: "sidecar/dispatch-1-r000", node: "node-1" });
  });

  it("shows an ended action whose result is held in the ledger as unpushed, since it ended; a running one stays running", () => {
    const rows = mergeStatus({
      ...base,
      pending: [{ id: "f", kind: "runner" }, { id: "g", kind: "runner" }, { id: "r", kind: "runner" }],
      children: [
        child("f", "runner/dispatch-1-f000", "2026-03-01T11:00:00Z", { clientStatus: "complete", finishedAt: "2026-03-01T11:10:00Z", exitCode: 0 }),
        child("r", "runner/dispatch-1-r000", "2026-03-01T11:00:00Z", { clientStatus: "running" }),
      ],
      unpushed: new Map([
        ["f", "2026-03-01T11:10:01Z"],
        ["g", "2026-03-01T10:00:00Z"],
        ["r", "2026-03-01T11:20:00Z"],
      ]),
    });
    expect(rows.map((r) => [r.id, r.state, r.since, r.exitCode])).toEqual([
      ["f", "unpushed", "2026-03-01T11:10:01Z", 0],
      ["g", "unpushed", "2026-03-01T10:00:00Z", undefined],
      ["r", "running", "2026-03-01T11:00:00.000Z", undefined],
    ]);
  });

  it("shows an action held back because its result's path is taken by what is no file as unwritable, in id order", () => {
    const rows = mergeStatus({ ...base, pending: [{ id: "b", kind: "runner" }], unwritable: ["c", "a"] });
    expect(rows).toEqual([
      { id: "a", state: "unwritable" },
      { id: "b", kind: "runner", state: "pending" },
      { id: "c", state: "unwritable" },
    ]);
    expect(formatStatusTable(rows, now).split("\n")[1]).toBe("a   -       unwritable  -    -      -     -    -");
  });

  it("takes the latest child of a retried action, and ignores children of other ops repos and other actions", () => {
    const rows = mergeStatus({
      ...base,
      pending: [{ id: "a", kind: "runner" }],
      children: [
        child("a", "runner/dispatch-1-old0", "2026-03-01T10:00:00Z", { clientStatus: "lost" }),
        child("a", "runner/dispatch-2-new0", "2026-03-01T11:00:00Z", { clientStatus: "running" }),
        child("a", "runner/dispatch-3-othr", "2026-03-01T11:30:00Z", { clientStatus: "running" }, { ops_repo: "/elsewhere.git" }),
        child("zzz", "runner/dispatch-4-zzz0", "2026-03-01T11:30:00Z", { clientStatus: "running" }),
      ],
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: "a", state: "running", job: "runner/dispatch-2-new0" });
  });

  it("shows a finished action from its result: status, job, exit code; kind from the job's parent", () => {
    const rows = mergeStatus({
      ...base,
      results: [
        { id: "done", status: "succeeded", exit_code: 0, timestamp: "2026-03-01T11:00:05Z", job_id: "sidecar/dispatch-9-d000", alloc_id: "abc", node: "n", finished_at: "2026-03-01T11:00:00Z" },
        { id: "bad", status: "invalid", exit_code: -1, timestamp: "2026-03-01T10:00:00Z" },
      ],
    });
    expect(rows).toEqual([
      { id: "bad", kind: undefined, state: "invalid", job: undefined, alloc: undefined, node: undefined, since: "2026-03-01T10:00:00Z", exitCode: undefined },
      { id: "done", kind: "sidecar", state: "succeeded", job: "sidecar/dispatch-9-d000", alloc: "abc", node: "n", since: "2026-03-01T11:00:00Z", exitCode: 0 },
    ]);
  });
});

describe("formatStatusTable", () => {
  it("prints aligned columns with short allocation ids and - for unknowns", () => {
    const rows = mergeStatus({
      ...base,
      pending: [{ id: "deploy", kind: "runner" }, { id: "hello", kind: "runner" }],
      results: [{ id: "old", status: "failed", exit_code: 3, timestamp: "2026-03-01T09:00:00Z", job_id: "runner/dispatch-1-a", alloc_id: "0baeb616-1111-2222-3333-444455556666", node: "vm", finished_at: "2026-03-01T09:00:00Z" }],
      children: [child("hello", "runner/dispatch-7-h000", "2026-03-01T11:59:00Z", { clientStatus: "running", startedAt: "2026-03-01T11:59:15Z" })],
    });
    expect(formatStatusTable(rows, now)).toBe(
      [
        "ID      KIND    STATE    JOB                     ALLOC     NODE    AGE  EXIT",
        "deploy  runner  pending  -                       -         -       -    -",
        "hello   runner  running  runner/dispatch-7-h000  h000aaaa  node-1  45s  -",
        "old     runner  failed   runner/dispatch-1-a     0baeb616  vm      3h   3",
        "",
      ].join("\n"),
    );
  });

  it("says so when there is nothing", () => {
    expect(formatStatusTable([], now)).toBe("no actions\n");
  });
});

describe("formatAge", () => {
  it.each([
    ["2026-03-01T11:59:59Z", "1s"],
    ["2026-03-01T11:58:01Z", "119s"],
    ["2026-03-01T11:58:00Z", "2m"],
    ["2026-03-01T10:00:01Z", "119m"],
    ["2026-03-01T10:00:00Z", "2h"],
    ["2026-02-27T12:00:00Z", "2d"],
    [undefined, "-"],
  ])("%s → %s", (since, age) => {
    expect(formatAge(since, now)).toBe(age);
  });
});

describe("formatInstancesTable", () => {
  const now = new Date("2026-12-02T10:00:00Z");
  it("lists replicas newest first: alive, draining, or silent past the lease", () => {
    const beats = [
      { instance: "old-1", seenAt: new Date("2026-12-02T09:50:00Z"), inFlight: 2, draining: false, version: "0.1.0" },
      { instance: "host-a-12", seenAt: new Date("2026-12-02T09:59:50Z"), inFlight: 3, draining: false, version: "0.1.0" },
      { instance: "host-b-7", seenAt: new Date("2026-12-02T09:59:40Z"), inFlight: 1, draining: true, version: "0.1.0" },
      { instance: "legacy", seenAt: new Date("2026-12-02T09:59:55Z") },
    ];
    expect(formatInstancesTable(beats, now, 60_000)).toBe(
      [
        "INSTANCE   STATE     LAST SEEN  IN FLIGHT  VERSION",
        "legacy     alive     5s         -          -",
        "host-a-12  alive     10s        3          0.1.0",
        "host-b-7   draining  20s        1          0.1.0",
        "old-1      silent    10m        2          0.1.0",
        "",
      ].join("\n"),
    );
  });

  it("says so when no replica ever beat", () => {
    expect(formatInstancesTable([], now, 60_000)).toBe("no instances have beaten under this ledger\n");
  });
});
