import { describe, expect, it } from "vitest";
import type { ChildIdentity, LedgerEntry } from "../../../dispatcher/core/ports.js";
import { entryProblem, finishedJobProblem, storedResultProblem, type Fence } from "../../../dispatcher/core/verify.js";

const fence: Fence = { parents: new Set(["runner", "runner-ssh", "sidecar"]), namespace: "dispatch" };
const entry: LedgerEntry = { id: "deploy", state: "dispatched", owner: "a", attempt: 1, actionSha: "sha1", commit: "c1", jobId: "runner/dispatch-1-abc", updatedAt: "", index: 7 };
const child: ChildIdentity = { jobId: "runner/dispatch-1-abc", parent: "runner", namespace: "dispatch", meta: { action_id: "deploy", action_sha: "sha1" } };

describe("entryProblem", () => {
  it("accepts our child for this action, an entry without a job, and a job Nomad forgot", () => {
    expect(entryProblem(entry, child, fence)).toBeUndefined();
    expect(entryProblem({ ...entry, jobId: undefined }, undefined, fence)).toBeUndefined();
    expect(entryProblem(entry, undefined, fence)).toBeUndefined();
  });

  it("refuses a job that is not a dispatched child of a runner/sidecar parent", () => {
    expect(entryProblem(entry, { ...child, parent: "" }, fence)).toBe('job runner/dispatch-1-abc is not a dispatched child of a runner/sidecar parent (parent: "none")');
    expect(entryProblem(entry, { ...child, parent: "billing" }, fence)).toBe('job runner/dispatch-1-abc is not a dispatched child of a runner/sidecar parent (parent: "billing")');
  });

  it("refuses another namespace and another action's child", () => {
    expect(entryProblem(entry, { ...child, namespace: "default" }, fence)).toBe('job runner/dispatch-1-abc is in namespace "default", not "dispatch"');
    expect(entryProblem(entry, { ...child, meta: { action_id: "other", action_sha: "sha1" } }, fence)).toBe(
      'job runner/dispatch-1-abc runs action "other" at sha1, not "deploy" at sha1',
    );
    expect(entryProblem(entry, { ...child, meta: { action_id: "deploy", action_sha: "sha2" } }, fence)).toBe(
      'job runner/dispatch-1-abc runs action "deploy" at sha2, not "deploy" at sha1',
    );
  });
});

describe("storedResultProblem", () => {
  it("accepts the entry's own result only", () => {
    expect(storedResultProblem({ ...entry, result: '{"id":"deploy"}' })).toBeUndefined();
    expect(storedResultProblem({ ...entry, result: '{"id":"other"}' })).toBe('the stored result names action "other", not "deploy"');
    expect(storedResultProblem({ ...entry, result: "{" })).toBe('the stored result of "deploy" is not JSON');
  });
});

describe("storedResultProblem with the action file's blob, and finishedJobProblem", () => {
  const finished: LedgerEntry = { ...entry, state: "finished", result: JSON.stringify({ id: "deploy", action_sha: "sha1", commit: "c1", status: "succeeded" }) };
  const withResult = (r: Record<string, unknown>): LedgerEntry => ({ ...finished, result: JSON.stringify({ id: "deploy", action_sha: "sha1", commit: "c1", status: "succeeded", ...r }) });

  it("accepts a stored result of this entry, for the file's blob, at the entry's commit", () => {
    expect(storedResultProblem(finished, "sha1")).toBeUndefined();
  });

  it("refuses one for another blob, another commit or with no result status", () => {
    expect(storedResultProblem(finished, "sha2")).toBe('the stored result is for "sha1" (entry sha1), not the action file\'s sha2');
    expect(storedResultProblem(withResult({ commit: "evil" }), "sha1")).toBe('the stored result names commit "evil", not the entry\'s c1');
    expect(storedResultProblem(withResult({ status: "pwned" }), "sha1")).toBe('the stored result\'s status "pwned" is not a result status');
  });

  it("pushes it only when its job is our child for this action at the entry's commit", () => {
    expect(finishedJobProblem(finished, { ...child, meta: { ...child.meta, commit: "c1" } }, fence)).toBeUndefined();
    expect(finishedJobProblem(finished, undefined, fence)).toBe("job runner/dispatch-1-abc is not known to Nomad");
    expect(finishedJobProblem({ ...finished, jobId: undefined }, undefined, fence)).toBe("the entry names no job");
    expect(finishedJobProblem(finished, { ...child, meta: { ...child.meta, commit: "c2" } }, fence)).toBe("job runner/dispatch-1-abc ran commit c2, not the entry's c1");
  });
});
