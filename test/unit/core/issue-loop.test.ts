import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLoopEmitter } from "../../../dispatcher/core/events.js";
import { createIssueLoop, type IssueLoopDeps } from "../../../dispatcher/core/issue-loop.js";
import type { ForgeIssue, IssueForgePort, ListedFile, NomadPort, VaultPort } from "../../../dispatcher/core/ports.js";
import type { ActionResult } from "../../../dispatcher/core/result.js";
import { createLogger } from "../../../dispatcher/log.js";
import { createMemoryLedger } from "../../helpers/memory-ledger.js";

const now = new Date("2026-12-07T12:00:00Z");
const commit = "c".repeat(40);
const id = "disinto/12-bug-report-345";

/** The forge's issues in memory: labels per issue, comments per marker, and every call. */
function memoryForge(labels: string[]) {
  const calls: string[] = [];
  const comments = new Map<string, string>();
  const issue: ForgeIssue = { number: 12, title: "it breaks", labels };
  const forge: IssueForgePort = {
    openIssuesWithLabel: async (_repo, label) => (issue.labels.includes(label) ? [issue] : []),
    labelAdded: async () => ({ id: 345, at: now.toISOString() }),
    addLabels: async (_r, _n, add) => void (calls.push(`add ${add.join(",")}`), issue.labels.push(...add.filter((l) => !issue.labels.includes(l)))),
    removeLabel: async (_r, _n, label) => void (calls.push(`remove ${label}`), (issue.labels = issue.labels.filter((l) => l !== label))),
    upsertIssueComment: async (_r, _n, marker, body) => (calls.push("comment"), comments.set(marker, body), "created"),
  };
  return { forge, calls, comments, issue };
}

function loopWith(forge: IssueForgePort, files: Record<string, string>, ledger = createMemoryLedger(), approve?: IssueLoopDeps["approve"]) {
  const dispatched: string[] = [];
  /** results handed to the action loop's push: id and folder */
  const queued: string[] = [];
  const nomad = { dispatch: async () => (dispatched.push("dispatch"), { jobId: "x", evalId: "e" }), parentSpec: async () => undefined } as unknown as NomadPort;
  const listFiles = async (_c: string, dir: string) => Object.keys(files).filter((p) => p.startsWith(`${dir}/`) && !p.slice(dir.length + 1).includes("/")).map((path): ListedFile => ({ path, sha: "b".repeat(40) }));
  const loop = createIssueLoop({
    forge,
    repo: { listFiles: listFiles as never, readFile: async (_c, p) => (files[p] === undefined ? undefined : Buffer.from(files[p])) },
    ledger,
    nomad,
    vault: {} as VaultPort,
    clock: { now: () => now, sleep: async () => undefined },
    log: createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }), level: "debug", pretty: false }),
    attemptEvents: createLoopEmitter(),
    events: createLoopEmitter(),
    me: "a",
    fence: { parents: new Set(["sidecar"]), namespace: "dispatch" },
    signal: new AbortController().signal,
    settings: { runnerJob: "runner", sidecarJob: "sidecar", runnerRemote: "git://h/ops", kvMount: "kv", defaultTimeoutMinutes: 60, tokenGraceSeconds: 300, actionsDir: "vault/issues", placementSeconds: 60, reevaluateSeconds: 0, maxLogBytes: 1 << 20, tailBytes: 4096 },
    queueResult: (r, _log, dir) => void queued.push(`${r.id} ${dir}`),
    ...(approve ? { approve } : {}),
    issues: { dir: "vault/issues", progressLabel: "in-progress", pollMs: 60_000, maxInFlight: 2, leaseMs: 60_000, projects: [{ name: "disinto", projectToml: "projects/disinto.toml", repo: "o/disinto", labels: { "bug-report": "reproduce" } }], dispatcher: { version: "t", instance: "a" } },
  });
  return { loop, dispatched, queued, ledger };
}

const result: ActionResult = { id, exit_code: 0, timestamp: now.toISOString(), logs: "tried\n[outcome] not-reproduced", status: "succeeded", attempts: 1, action_sha: "b".repeat(40), commit, policies: [], dispatcher: { version: "t", instance: "b" } };

describe("issue-loop", () => {
  it("a result at the tip with the trigger label still on (a crash before the follow-up): the issue is told, nothing is dispatched again", async () => {
    const f = memoryForge(["bug-report", "in-progress"]);
    const ledger = createMemoryLedger();
    await ledger.create(id, { state: "recorded", owner: "b", attempt: 1, actionSha: "b".repeat(40), commit, updatedAt: now.toISOString() });
    const { loop, dispatched } = loopWith(f.forge, { "projects/disinto.toml": "", [`vault/issues/${id}.result.json`]: JSON.stringify(result) }, ledger);
    await loop.pass(commit);
    expect(dispatched).toEqual([]);
    expect(f.calls).toEqual(["comment", "add not-reproduced", "remove in-progress", "remove bug-report"]);
    expect(f.issue.labels).toEqual(["not-reproduced"]);
    expect([...f.comments.keys()]).toEqual([`<!-- nomad-dispatcher:issue-run:${id} -->`]);
  });

  it("a result a dead replica finished but never pushed: pushed by the lifecycle, recorded by this instance once at the tip, then the issue is told", async () => {
    const f = memoryForge(["bug-report", "in-progress"]);
    const ledger = createMemoryLedger();
    await ledger.create(id, { state: "finished", owner: "b", attempt: 1, actionSha: "b".repeat(40), commit, jobId: "sidecar/dispatch-1", result: JSON.stringify(result), updatedAt: now.toISOString() });
    const { loop, dispatched, queued } = loopWith(f.forge, { "projects/disinto.toml": "" }, ledger);
    await loop.pass(commit);
    expect(dispatched).toEqual([]);
    expect(queued).toEqual([`${id} vault/issues`]);
    expect(f.calls).toEqual([]);
    await loop.pushed([id]);
    expect(await ledger.get(id)).toMatchObject({ state: "recorded", owner: "a" });
    expect(f.calls).toEqual(["comment", "add not-reproduced", "remove in-progress", "remove bug-report"]);
  });

  it("a run another live replica holds is left to it: no label, no dispatch", async () => {
    const f = memoryForge(["bug-report"]);
    const ledger = { ...createMemoryLedger(), lastSeen: async () => now };
    await ledger.create(id, { state: "dispatched", owner: "b", attempt: 1, actionSha: "b".repeat(40), commit, jobId: "sidecar/dispatch-1", updatedAt: now.toISOString() });
    const { loop, dispatched } = loopWith(f.forge, { "projects/disinto.toml": "" }, ledger);
    await loop.pass(commit);
    expect([dispatched, f.calls]).toEqual([[], []]);
  });

  it("with an approval rule, code it refuses starts nothing and labels nothing: the issue waits, saying why", async () => {
    const f = memoryForge(["bug-report"]);
    const asked: string[] = [];
    const { loop, dispatched, ledger } = loopWith(f.forge, { "projects/disinto.toml": "" }, createMemoryLedger(), async (c, file, action) => {
      asked.push(`${c.slice(0, 4)} ${file.path} ${action.formula}`);
      return { ok: false, problem: "everything outside vault/actions/ was last changed by commit 0123456789ab, which is not signed" };
    });
    const waits: string[] = [];
    await loop.pass(commit);
    expect(asked).toEqual(["cccc projects/disinto.toml reproduce"]);
    expect([dispatched, f.calls, await ledger.get(id)]).toEqual([[], [], undefined]);
    const rows = await loop.survey(commit);
    waits.push(...rows.map((r) => r.unapproved ?? ""));
    expect(waits).toEqual(["unapproved at cccccccccccc: everything outside vault/actions/ was last changed by commit 0123456789ab, which is not signed"]);
  });

  it("a missing project file starts nothing and labels nothing", async () => {
    const f = memoryForge(["bug-report"]);
    const { loop, dispatched, ledger } = loopWith(f.forge, {});
    await loop.pass(commit);
    expect([dispatched, f.calls, await ledger.get(id)]).toEqual([[], [], undefined]);
  });
});
