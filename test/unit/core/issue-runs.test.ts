import { describe, expect, it } from "vitest";
import { decideIssueRun, issueAction, issueComment, issueRunId, labelsAfter, outcomeOf, triggersOf, type IssueTrigger } from "../../../dispatcher/core/issue-runs.js";
import type { LedgerEntry } from "../../../dispatcher/core/ports.js";
import type { ActionResult } from "../../../dispatcher/core/result.js";
import { buildDispatchSpec } from "../../../dispatcher/core/request.js";

const [reproduce] = triggersOf([{ name: "disinto", projectToml: "projects/disinto.toml", repo: "disinto-admin/disinto", labels: { "bug-report": "reproduce" } }]) as [IssueTrigger];
const now = new Date("2026-12-07T12:00:00Z");

function entry(fields: Partial<LedgerEntry>): LedgerEntry {
  return { id: "disinto/12-bug-report-345", state: "dispatched", owner: "b", attempt: 1, actionSha: "f".repeat(40), commit: "c".repeat(40), updatedAt: now.toISOString(), index: 7, ...fields };
}

function result(status: ActionResult["status"], logs: string): ActionResult {
  return { id: "disinto/12-bug-report-345", exit_code: status === "succeeded" ? 0 : 1, timestamp: now.toISOString(), logs, status, attempts: 1, action_sha: "f".repeat(40), commit: "c".repeat(40), policies: [], dispatcher: { version: "t", instance: "a" } };
}

describe("issue-runs", () => {
  it("maps each project's labels to triggers, with the formula's outcome labels (or its own names)", () => {
    const t = triggersOf([{ name: "p", projectToml: "projects/p.toml", repo: "o/p", labels: { "needs-triage": "triage", "fix-proposed": "verify", "kind/odd label": "sweep" }, outcomes: { verify: ["fixed", "still-broken", "duplicate"] } }]);
    expect(t.map((x) => [x.label, x.formula, x.outcomes])).toEqual([
      ["needs-triage", "triage", ["triaged", "needs-info"]],
      ["fix-proposed", "verify", ["fixed", "still-broken", "duplicate"]],
      ["kind/odd label", "sweep", ["sweep-succeeded", "sweep-failed"]],
    ]);
  });

  it("keys a run by project, issue, label and the label's event: a label added again is a new key; no action id can be one", () => {
    expect(issueRunId(reproduce, 12, { id: 345, at: "" })).toBe("disinto/12-bug-report-345");
    expect(issueRunId(reproduce, 12, { id: 351, at: "" })).toBe("disinto/12-bug-report-351");
    expect(issueRunId({ project: "p", label: "Kind/Odd Label" }, 3, { id: 9, at: "" })).toBe("p/3-kind-odd-label-9");
  });

  it("dispatches the sidecar parent with issue_number and project_toml, checked at the project file's blob, and the bot policy only", () => {
    const { file, action } = issueAction(reproduce, { number: 12, title: "it breaks", labels: ["bug-report"] }, "disinto/12-bug-report-345", "b".repeat(40));
    const spec = buildDispatchSpec(
      { file, action, commit: "c".repeat(40), attempt: 1, identity: { policy: "sidecar-bot", bot: { path: "kv/data/disinto/bots/dev", field: "token", env: "FORGE_BOT_TOKEN" } } },
      { runnerJob: "runner", sidecarJob: "sidecar", runnerRemote: "git://h/ops.git", kvMount: "kv", defaultTimeoutMinutes: 60, tokenGraceSeconds: 300 },
    );
    expect(spec.job).toBe("sidecar");
    expect(spec.policies).toEqual(["sidecar-bot"]);
    expect(spec.meta).toMatchObject({ action_id: "disinto/12-bug-report-345", action_path: "projects/disinto.toml", action_sha: "b".repeat(40), formula: "reproduce", issue_number: "12", project_toml: "projects/disinto.toml" });
    // the bot's path travels in the payload, never in meta
    expect(JSON.stringify(spec.meta)).not.toContain("bots/dev");
  });

  it("decides: a result at the tip is a follow-up; otherwise the action ledger's rule (a live owner's run is theirs)", () => {
    expect(decideIssueRun(undefined, false, "a", undefined, now, 60_000)).toEqual({ kind: "new" });
    expect(decideIssueRun(entry({ state: "finished" }), true, "a", now, now, 60_000).kind).toBe("follow_up");
    expect(decideIssueRun(entry({}), false, "a", now, now, 60_000).kind).toBe("skip");
    expect(decideIssueRun(entry({}), false, "a", new Date(now.getTime() - 120_000), now, 60_000).kind).toBe("reattach");
    expect(decideIssueRun(entry({ state: "claimed", owner: "a" }), false, "a", undefined, now, 60_000).kind).toBe("resume");
  });

  it("takes the formula's verdict when it is one of its outcomes, else success or failure", () => {
    expect(outcomeOf(reproduce, result("succeeded", "tried\n[outcome] not-reproduced"))).toEqual({ label: "not-reproduced", verdict: "not-reproduced" });
    expect(outcomeOf(reproduce, result("succeeded", "tried"))).toEqual({ label: "reproduced" });
    expect(outcomeOf(reproduce, result("failed", "tried\n[stderr]\nboom"))).toEqual({ label: "not-reproduced" });
    // a verdict outside its outcomes is no label; one printed on stderr is not the runner's line
    expect(outcomeOf(reproduce, result("succeeded", "[outcome] wontfix"))).toEqual({ label: "reproduced", verdict: "wontfix" });
    expect(outcomeOf(reproduce, result("succeeded", "ok\n[stderr]\n[outcome] not-reproduced"))).toEqual({ label: "reproduced" });
  });

  it("moves the issue on: trigger and progress labels off, the outcome on; one comment by marker", () => {
    expect(labelsAfter(reproduce, "in-progress", "reproduced")).toEqual({ remove: ["in-progress", "bug-report"], add: ["reproduced"] });
    expect(labelsAfter(reproduce, "", "reproduced")).toEqual({ remove: ["bug-report"], add: ["reproduced"] });
    const body = issueComment(reproduce, "disinto/12-bug-report-345", result("succeeded", "bot token: [redacted]"), "reproduced", "vault/issues/disinto/12-bug-report-345.result.json");
    expect(body.split("\n").slice(0, 2)).toEqual(["<!-- nomad-dispatcher:issue-run:disinto/12-bug-report-345 -->", "**reproduce** ran for this issue (label `bug-report`): **reproduced**"]);
    expect(body).toContain("| result | `vault/issues/disinto/12-bug-report-345.result.json` |");
    expect(body.endsWith("```\nbot token: [redacted]\n```")).toBe(true);
  });
});
