import { describe, expect, it } from "vitest";
import { commentMarker, forgeStateOf, formatUnsent, pendingReport, resultComment, resultReport, supersedes } from "../../../dispatcher/core/forge.js";
import type { ActionResult } from "../../../dispatcher/core/result.js";

const now = new Date("2026-12-07T20:00:00Z");
const result = (over: Partial<ActionResult> = {}): ActionResult => ({
  id: "deploy",
  exit_code: 0,
  timestamp: now.toISOString(),
  logs: "line 1\nline 2 [redacted]\n",
  status: "succeeded",
  attempts: 1,
  action_sha: "a".repeat(40),
  commit: "c".repeat(40),
  duration_ms: 3210,
  policies: [],
  dispatcher: { version: "0.1.0", instance: "i" },
  ...over,
});

describe("forge reports", () => {
  it("map each result status to a commit status: the action's own failure is failure, a lost allocation error", () => {
    expect(["succeeded", "failed", "timeout", "invalid", "rejected", "lost"].map((s) => forgeStateOf(s as ActionResult["status"]))).toEqual(["success", "failure", "failure", "failure", "failure", "error"]);
  });

  it("a pending status names the attempt under the action's context", () => {
    expect(pendingReport("deploy", "b".repeat(40), 2, now)).toEqual({ id: "deploy", commit: "b".repeat(40), status: { state: "pending", context: "dispatcher/deploy", description: "dispatched (attempt 2)" }, queuedAt: now.toISOString() });
  });

  it("a result's status is one line with exit code, duration and attempts; a refusal says its class and why", () => {
    expect(resultReport(result(), "b".repeat(40), now).status).toEqual({ state: "success", context: "dispatcher/deploy", description: "succeeded: exit 0, in 3.2 s, attempt 1" });
    expect(resultReport(result({ status: "failed", exit_code: 3, attempts: 2, error: { class: "agent", message: "x" } }), "b", now).status.description).toBe("failed: exit 3, in 3.2 s, attempts 2, (agent)");
    const refused = result({ status: "rejected", exit_code: -1, duration_ms: undefined, error: { class: "unapproved", message: "vault/actions/deploy.toml: commit 1234 is not signed\nby an allowed key" } });
    expect(resultReport(refused, "b", now).status).toEqual({ state: "failure", context: "dispatcher/deploy", description: "rejected (unapproved): vault/actions/deploy.toml: commit 1234 is not signed by an allowed key" });
    const long = resultReport(result({ status: "rejected", error: { class: "invalid", message: "x".repeat(300) } }), "b", now).status.description;
    expect(long.length).toBe(140);
    expect(long.endsWith("…")).toBe(true);
  });

  it("the comment starts with its marker and holds status, exit code, duration, attempts and the masked tail in a fence the log cannot close", () => {
    const body = resultComment(result({ logs: "before ```` inside\nsecret: [redacted]" }));
    expect(body.startsWith(`${commentMarker("deploy")}\n`)).toBe(true);
    expect(body).toContain("| status | succeeded |\n| exit code | 0 |\n| duration | 3.2 s |\n| attempts | 1 |");
    expect(body).toContain("\n`````\nbefore ```` inside\nsecret: [redacted]\n`````\n");
  });

  it("a result replaces a queued pending; a pending never replaces an unsent result on the same commit", () => {
    const pending = pendingReport("deploy", "b", 1, now);
    const done = resultReport(result(), "b", now);
    expect(supersedes(done, pending)).toBe(true);
    expect(supersedes(pending, done)).toBe(false);
    expect(supersedes(pending, undefined)).toBe(true);
  });
});

describe("formatUnsent", () => {
  it("is empty without reports, else one line per report with what waits and the last error", () => {
    expect(formatUnsent([])).toBe("");
    const r = { ...resultReport(result(), "b".repeat(40), now), tries: 2, lastError: "forge: setting status failed: ECONNREFUSED" };
    const p = pendingReport("other", "e".repeat(40), 1, now);
    expect(formatUnsent([r, p])).toBe(
      `forge: 2 reports not sent yet (retried by the daemon):\n  deploy  success + comment on bbbbbbbbbbbb since ${now.toISOString()}, 2 tries: forge: setting status failed: ECONNREFUSED\n  other  pending on eeeeeeeeeeee since ${now.toISOString()}\n`,
    );
  });
});
