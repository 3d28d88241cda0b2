import { describe, expect, it } from "vitest";
import type { FailureClass } from "../../../dispatcher/errors.js";
import { buildRefusal, buildRunResult, logPath, RESULT_STATUSES, resultPath, statusOf, type ResultBase, type RunOutcome } from "../../../dispatcher/core/result.js";

const NOW = new Date("2024-05-01T12:00:00.000Z");
const base: ResultBase = {
  id: "release",
  actionSha: "0123456789abcdef0123456789abcdef01234567",
  commit: "fedcba9876543210fedcba9876543210fedcba98",
  attempts: 2,
  dispatcher: { version: "0.1.0", instance: "host-1" },
};

const run = (over: Partial<RunOutcome> = {}): RunOutcome => ({
  jobId: "runner/dispatch-1714564800-abcd",
  allocId: "alloc-1",
  node: "node-1",
  exitCode: 0,
  startedAt: "2024-05-01T11:58:00.000Z",
  finishedAt: "2024-05-01T11:59:30.250Z",
  status: "succeeded",
  policies: ["runner-github_token"],
  tokenAccessor: "acc-1",
  ...over,
});

/** what is actually written to the repo */
const asJson = (v: unknown) => JSON.parse(JSON.stringify(v)) as Record<string, unknown>;

describe("buildRefusal", () => {
  it("records a refusal with no process: exit -1, the message as logs and error", () => {
    const r = buildRefusal(base, NOW, "invalid", "vault/actions/release.toml: formula: required");
    expect(r).toStrictEqual({
      id: "release",
      exit_code: -1,
      timestamp: "2024-05-01T12:00:00.000Z",
      logs: "vault/actions/release.toml: formula: required",
      status: "invalid",
      error: { class: "invalid", message: "vault/actions/release.toml: formula: required" },
      attempts: 2,
      action_sha: base.actionSha,
      commit: base.commit,
      policies: [],
      dispatcher: { version: "0.1.0", instance: "host-1" },
    });
  });

  it("takes the status from the class: one table for every class", () => {
    const r = buildRefusal(base, NOW, "secret_unknown", 'secrets[0] "X" is not a known secret');
    expect(r.status).toBe("failed");
    expect(r.error).toEqual({ class: "secret_unknown", message: 'secrets[0] "X" is not a known secret' });
    expect(buildRefusal(base, NOW, "not_allowed", "no").status).toBe("rejected");
    expect(buildRefusal(base, NOW, "unapproved", "no").status).toBe("rejected");
    expect(buildRefusal(base, NOW, "infra", "nomad unreachable").status).toBe("failed");
  });

  it("maps every failure class to a status a result may have", () => {
    const classes: FailureClass[] = ["invalid", "rejected", "secret_unknown", "secret_missing", "rate_limited", "auth", "timeout", "infra", "agent", "lost", "tampered", "not_allowed", "unapproved", "parent_changed", "config"];
    expect(Object.fromEntries(classes.map((c) => [c, statusOf(c)]))).toEqual({
      invalid: "invalid",
      rejected: "rejected",
      secret_unknown: "failed",
      secret_missing: "failed",
      rate_limited: "failed",
      auth: "failed",
      timeout: "timeout",
      infra: "failed",
      agent: "failed",
      lost: "lost",
      tampered: "failed",
      not_allowed: "rejected",
      unapproved: "rejected",
      parent_changed: "failed",
      config: "failed",
    });
    for (const c of classes) expect(RESULT_STATUSES).toContain(statusOf(c));
  });

  it("has none of the run fields", () => {
    const r = buildRefusal(base, NOW, "invalid", "bad");
    for (const k of ["job_id", "alloc_id", "node", "started_at", "finished_at", "duration_ms", "token_accessor", "log_file"]) {
      expect(r).not.toHaveProperty(k);
    }
  });

  it("puts the disinto fields first", () => {
    const r = buildRefusal(base, NOW, "invalid", "bad");
    expect(Object.keys(r).slice(0, 4)).toEqual(["id", "exit_code", "timestamp", "logs"]);
  });
});

describe("buildRunResult", () => {
  it("records a finished run with every field and the duration in ms", () => {
    const r = buildRunResult(base, NOW, run(), "hello\n", "vault/actions/release.log");
    expect(r).toStrictEqual({
      id: "release",
      exit_code: 0,
      timestamp: "2024-05-01T12:00:00.000Z",
      logs: "hello\n",
      status: "succeeded",
      attempts: 2,
      action_sha: base.actionSha,
      commit: base.commit,
      job_id: "runner/dispatch-1714564800-abcd",
      alloc_id: "alloc-1",
      node: "node-1",
      started_at: "2024-05-01T11:58:00.000Z",
      finished_at: "2024-05-01T11:59:30.250Z",
      duration_ms: 90_250,
      policies: ["runner-github_token"],
      token_accessor: "acc-1",
      log_file: "vault/actions/release.log",
      dispatcher: { version: "0.1.0", instance: "host-1" },
    });
  });

  it("puts the disinto fields first", () => {
    const r = buildRunResult(base, NOW, run(), "");
    expect(Object.keys(r).slice(0, 4)).toEqual(["id", "exit_code", "timestamp", "logs"]);
  });

  it("has no error when the run has none, and no log_file without one", () => {
    const r = buildRunResult(base, NOW, run(), "out");
    expect(r).not.toHaveProperty("error");
    expect(r).not.toHaveProperty("log_file");
    expect(buildRunResult(base, NOW, run(), "out", "")).not.toHaveProperty("log_file");
  });

  it("carries the run's error and status", () => {
    const r = buildRunResult(base, NOW, run({ status: "failed", exitCode: 3, error: { class: "agent", message: "exit 3" } }), "boom");
    expect(r.status).toBe("failed");
    expect(r.exit_code).toBe(3);
    expect(r.error).toEqual({ class: "agent", message: "exit 3" });
  });

  it("records exit -1 when the exit code is unknown", () => {
    const r = buildRunResult(base, NOW, run({ status: "lost", exitCode: undefined }), "");
    expect(r.exit_code).toBe(-1);
  });

  it("keeps an exit code of 0 (not mistaken for missing)", () => {
    expect(buildRunResult(base, NOW, run({ exitCode: 0 }), "").exit_code).toBe(0);
  });

  it("has no duration when either end is unknown or unparseable", () => {
    expect(buildRunResult(base, NOW, run({ startedAt: undefined }), "").duration_ms).toBeUndefined();
    expect(buildRunResult(base, NOW, run({ finishedAt: undefined }), "").duration_ms).toBeUndefined();
    expect(buildRunResult(base, NOW, run({ finishedAt: "not a date" }), "").duration_ms).toBeUndefined();
  });

  it("computes a zero duration", () => {
    const at = "2024-05-01T11:00:00.000Z";
    expect(buildRunResult(base, NOW, run({ startedAt: at, finishedAt: at }), "").duration_ms).toBe(0);
  });

  it("drops unknown optional fields from the written JSON", () => {
    const r = buildRunResult(
      base,
      NOW,
      { jobId: "runner/dispatch-x", status: "timeout", error: { class: "timeout", message: "ran past 60m" }, policies: [] },
      "",
    );
    expect(asJson(r)).toStrictEqual({
      id: "release",
      exit_code: -1,
      timestamp: "2024-05-01T12:00:00.000Z",
      logs: "",
      status: "timeout",
      error: { class: "timeout", message: "ran past 60m" },
      attempts: 2,
      action_sha: base.actionSha,
      commit: base.commit,
      job_id: "runner/dispatch-x",
      policies: [],
      dispatcher: { version: "0.1.0", instance: "host-1" },
    });
  });
});

describe("paths", () => {
  it("places results and logs beside the action", () => {
    expect(resultPath("vault/actions", "release")).toBe("vault/actions/release.result.json");
    expect(logPath("vault/actions", "release")).toBe("vault/actions/release.log");
  });
});
