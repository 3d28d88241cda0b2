// The lifecycle's interpreter over in-memory ports: what it calls, in which order, and what the
// ledger holds when a port fails part-way (the crash points of core/lifecycle.ts, for real).
import { decodePayload } from "../../../dispatcher/contract.js";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { Action, ActionFile } from "../../../dispatcher/actions/schema.js";
import { runAttempt, type AttemptDeps } from "../../../dispatcher/core/attempt.js";
import { createLoopEmitter, type LoopEventName } from "../../../dispatcher/core/events.js";
import { beginClaim, beginPushFromLedger, beginReattach, type AttemptStart } from "../../../dispatcher/core/lifecycle.js";
import { buildPinFile, digestOf } from "../../../dispatcher/core/pins.js";
import type { NomadPort, VaultPort } from "../../../dispatcher/core/ports.js";
import type { ActionResult } from "../../../dispatcher/core/result.js";
import { NomadApiError, VaultApiError } from "../../../dispatcher/errors.js";
import { createLogger } from "../../../dispatcher/log.js";
import { createMemoryLedger } from "../../helpers/memory-ledger.js";
import { loopTestSettings } from "../../helpers/loop-settings.js";

const NOW = new Date("2026-12-02T10:00:00.000Z");
const file: ActionFile = { path: "vault/actions/deploy.toml", id: "deploy", sha: "a1" };
const action: Action = { id: "deploy", formula: "deploy", context: "ship", secrets: ["GITHUB_TOKEN"], mounts: [], kind: "runner" };
const spec = { Driver: "exec", args: ["/opt/dispatcher/runner.mjs"] };
const start: AttemptStart = { id: "deploy", attempt: 1, actionSha: "a1", commit: "c1", policies: ["runner-github_token"], seenAt: NOW.getTime(), dispatcher: { version: "0.1.0", instance: "me" } };

function setup(over: { nomad?: Partial<NomadPort>; vault?: Partial<VaultPort> } = {}) {
  const calls: string[] = [];
  const ledger = createMemoryLedger();
  const queued: { result: ActionResult; pushed: () => Promise<void> }[] = [];
  const purges: [string, string][] = [];
  const retries: Date[] = [];
  const events = createLoopEmitter();
  const seen: LoopEventName[] = [];
  for (const name of ["action:dispatched", "action:finished", "action:retrying", "action:reattached", "token:minted", "token:revoked", "ledger:conflict"] as const) events.on(name, () => seen.push(name));
  const nomad: NomadPort = {
    async dispatch(req) {
      calls.push(`dispatch ${req.job} payload=${decodePayload(req.payload).wrappingToken ?? "-"}`);
      return { jobId: "runner/dispatch-1", evalId: "e1" };
    },
    async watchJob() {
      return { allocations: [{ id: "al-1", node: "n1", clientStatus: "complete", exitCode: 0, startedAt: NOW.toISOString(), createIndex: 1 }], index: 2 };
    },
    readLog: async (_a, _t, type) => {
      calls.push(`read ${type}`);
      return type === "stdout" ? "deployed\n" : "";
    },
    stopJob: async () => undefined,
    evaluateJob: async () => undefined,
    purgeJob: async () => undefined,
    hostVolumes: async () => new Map(),
    parentSpec: async () => spec,
    childJob: async (jobId) => ({ jobId, parent: "runner", namespace: "dispatch", meta: { action_id: "deploy", action_sha: "a1", attempt: "1" } }),
    ...over.nomad,
  };
  const vault: VaultPort = {
    missingPolicies: async () => [],
    async mintWrapped() {
      calls.push("mint");
      return { wrappingToken: "wrap-1", accessor: "acc-1", policies: ["runner-github_token"] };
    },
    async revokeAccessor(accessor) {
      calls.push(`revoke ${accessor}`);
    },
    ...over.vault,
  };
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const deps: AttemptDeps = {
    nomad,
    vault,
    ledger,
    clock: { now: () => NOW, sleep: async () => undefined },
    log: createLogger({ destination: sink, level: "debug", pretty: false }),
    events,
    me: "me",
    fence: { parents: new Set(["runner"]), namespace: "dispatch" },
    signal: new AbortController().signal,
    queueResult: (result, _log, pushed) => void queued.push({ result, pushed }),
    schedulePurge: (id, jobId) => void purges.push([id, jobId]),
    retryAt: (at) => void retries.push(at),
    release: () => void calls.push("release"),
    settings: { ...loopTestSettings(NOW), pins: buildPinFile(new Map([["runner", spec]]), NOW) },
  };
  return { deps, calls, ledger, queued, retries, seen, purges };
}

describe("runAttempt", () => {
  it("runs a fresh claim to a stored, queued result, minting before and revoking after the run", async () => {
    const t = setup();
    const end = await runAttempt(beginClaim(start, false), { file, action }, t.deps);
    expect(end.phase).toBe("finished");
    // the place is free as soon as the child has ended: its logs and its token come after
    expect(t.calls).toEqual(["mint", "dispatch runner payload=wrap-1", "release", "read stdout", "read stderr", "revoke acc-1"]);
    expect(t.ledger.entries.get("deploy")).toMatchObject({ state: "finished", owner: "me", attempt: 1, jobId: "runner/dispatch-1", accessor: "acc-1", dispatchedAt: NOW.toISOString() });
    expect(JSON.parse(t.ledger.entries.get("deploy")!.result!)).toMatchObject({ id: "deploy", status: "succeeded", logs: "deployed" });
    expect(t.queued).toHaveLength(1);
    expect(t.seen).toEqual(["token:minted", "action:dispatched", "token:revoked", "action:finished"]);
    // finished → recorded is the lifecycle's step too, once the push put the result at the tip
    expect(t.purges).toEqual([]);
    await t.queued[0]!.pushed();
    expect(t.ledger.entries.get("deploy")).toMatchObject({ state: "recorded", owner: "me", jobId: "runner/dispatch-1", result: undefined });
    expect(t.purges).toEqual([["deploy", "runner/dispatch-1"]]);
  });

  it("a result taken from a dead owner's finished entry is queued as it is and marked recorded once pushed; nothing is dispatched", async () => {
    const t = setup();
    const left = await t.ledger.create("deploy", { state: "finished", owner: "gone", attempt: 2, actionSha: "a1", commit: "c1", jobId: "runner/dispatch-9", result: '{"id":"deploy"}', updatedAt: NOW.toISOString() });
    const stored = { id: "deploy", status: "succeeded", exit_code: 0 } as ActionResult;
    const end = await runAttempt(beginPushFromLedger({ ...start, attempt: 2, jobId: "runner/dispatch-9" }, stored), { entry: left }, t.deps);
    expect([end.phase, t.calls, t.queued.map((q) => q.result)]).toEqual(["finished", [], [stored]]);
    await t.queued[0]!.pushed();
    expect(t.ledger.entries.get("deploy")).toMatchObject({ state: "recorded", owner: "me", attempt: 2, result: undefined });
    expect(t.purges).toEqual([["deploy", "runner/dispatch-9"]]);
  });

  it("leaves the entry claimed with the accessor recorded when the dispatch fails, and revokes the spare token", async () => {
    const t = setup({ nomad: { dispatch: async () => Promise.reject(new NomadApiError("nomad: dispatch: connect ECONNREFUSED", undefined)) } });
    const end = await runAttempt(beginClaim(start, false), { file, action }, t.deps);
    expect(end).toMatchObject({ phase: "waiting", failures: 1 });
    expect(t.ledger.entries.get("deploy")).toMatchObject({ state: "claimed", accessor: "acc-1" });
    expect(t.calls).toEqual(["mint", "revoke acc-1"]);
    expect(t.retries).toEqual([new Date(NOW.getTime() + 500)]);
    expect(t.queued).toEqual([]);
  });

  it("keeps the running child's token when following it fails with a retried class (no Nomad leader): the retry re-attaches to a child that still needs it", async () => {
    // what a leader election looks like to a follower of the child: HTTP 500 "no cluster leader"
    const t = setup({ nomad: { watchJob: async () => Promise.reject(new NomadApiError("nomad: GET /v1/job/runner%2Fdispatch-1/allocations failed: HTTP 500: rpc error: No cluster leader", 500)) } });
    const end = await runAttempt(beginClaim(start, false), { file, action }, t.deps);
    expect(end).toMatchObject({ phase: "waiting", failures: 1 });
    expect(t.ledger.entries.get("deploy")).toMatchObject({ state: "dispatched", jobId: "runner/dispatch-1", accessor: "acc-1" });
    expect(t.calls).toEqual(["mint", "dispatch runner payload=wrap-1"]);
    expect(t.seen).not.toContain("token:revoked");
  });

  it("mints nothing and dispatches nothing for a parent that differs from its pin", async () => {
    const t = setup({ nomad: { parentSpec: async () => ({ ...spec, args: ["/tmp/evil.js"] }) } });
    const end = await runAttempt(beginClaim(start, false), { file, action }, t.deps);
    expect(end.phase).toBe("waiting");
    expect(t.calls).toEqual([]);
    expect(t.ledger.entries.get("deploy")).toMatchObject({ state: "claimed" });
    expect(digestOf(spec)).not.toBe(digestOf({ ...spec, args: ["/tmp/evil.js"] }));
  });

  it("revokes the token of a child that differs from the pin and records the result as tampered, naming the field", async () => {
    const sent: Record<string, string>[] = [];
    const t = setup({
      nomad: {
        dispatch: async (req) => (sent.push(req.meta), { jobId: "runner/dispatch-1", evalId: "e1" }),
        childJob: async (jobId) => ({ jobId, parent: "runner", namespace: "dispatch", meta: {}, spec: { ...spec, Meta: sent[0], args: ["/tmp/evil.js"] } }),
      },
    });
    const end = await runAttempt(beginClaim(start, false), { file, action }, t.deps);
    expect(end.phase).toBe("finished");
    expect(t.calls).toEqual(["mint", "revoke acc-1"]);
    expect(JSON.parse(t.ledger.entries.get("deploy")!.result!)).toMatchObject({
      status: "failed",
      error: { class: "tampered", message: 'child runner/dispatch-1 of job "runner" differs from its pin: args: pinned ["/opt/dispatcher/runner.mjs"], now ["/tmp/evil.js"]' },
    });
  });

  it("reads the parent while the claim is written, and checks it before minting", async () => {
    const order: string[] = [];
    const t = setup({
      nomad: {
        parentSpec: async () => {
          order.push("parent read");
          return spec;
        },
      },
    });
    const create = t.ledger.create.bind(t.ledger);
    t.ledger.create = async (id, fields) => {
      order.push("claim sent");
      await new Promise((r) => setTimeout(r, 20));
      order.push("claim written");
      return create(id, fields);
    };
    const mint = t.deps.vault.mintWrapped;
    t.deps.vault = { ...t.deps.vault, mintWrapped: (req) => (order.push("mint"), mint(req)) };
    await runAttempt(beginClaim(start, false), { file, action }, t.deps);
    expect(order).toEqual(["parent read", "claim sent", "claim written", "mint"]);
  });

  it("lets a lost claim drop its parent read, failed or not", async () => {
    const unhandled: unknown[] = [];
    const note = (e: unknown) => void unhandled.push(e);
    process.on("unhandledRejection", note);
    try {
      const t = setup({ nomad: { parentSpec: async () => Promise.reject(new NomadApiError("nomad: read job runner: connect ECONNREFUSED", undefined)) } });
      t.ledger.entries.set("deploy", { id: "deploy", state: "claimed", owner: "other", attempt: 1, actionSha: "a1", commit: "c1", updatedAt: NOW.toISOString(), index: 1 });
      const end = await runAttempt(beginClaim(start, false), { file, action }, t.deps);
      await new Promise((r) => setTimeout(r, 10));
      expect(end.phase).toBe("released");
      expect(t.calls).toEqual([]);
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", note);
    }
  });

  it("stops at a lost check-and-set: another instance's write wins, our unrecorded token is revoked", async () => {
    const t = setup();
    const mint = t.deps.vault.mintWrapped;
    t.deps.vault = {
      ...t.deps.vault,
      async mintWrapped(req) {
        const token = await mint(req);
        // another instance takes the entry over between our claim and our accessor write
        const cur = t.ledger.entries.get("deploy")!;
        t.ledger.entries.set("deploy", { ...cur, owner: "other", index: cur.index + 100 });
        return token;
      },
    };
    const end = await runAttempt(beginClaim(start, false), { file, action }, t.deps);
    expect(end.phase).toBe("released");
    expect(t.calls).toEqual(["mint", "revoke acc-1"]);
    expect(t.ledger.entries.get("deploy")).toMatchObject({ owner: "other", state: "claimed" });
    expect(t.seen).toEqual(["token:minted", "ledger:conflict"]);
  });

  it("records a mint refused for good as the action's result", async () => {
    const t = setup({ vault: { mintWrapped: async () => Promise.reject(new VaultApiError("vault: mint: role does not allow policy runner-github_token", 400)) } });
    const end = await runAttempt(beginClaim(start, false), { file, action }, t.deps);
    expect(end.phase).toBe("finished");
    expect(t.ledger.entries.get("deploy")).toMatchObject({ state: "finished" });
    expect(t.queued[0]!.result).toMatchObject({ status: "rejected", error: { class: "rejected" } });
    expect(t.calls).toEqual([]);
  });

  it("re-attaches to a child left by a silent owner: takes the entry over, follows it, revokes its token", async () => {
    const t = setup();
    const left = await t.ledger.create("deploy", { state: "dispatched", owner: "dead", attempt: 1, actionSha: "a1", commit: "c1", jobId: "runner/dispatch-1", accessor: "acc-old", dispatchedAt: NOW.toISOString(), updatedAt: NOW.toISOString() });
    const end = await runAttempt(beginReattach({ ...start, jobId: "runner/dispatch-1", accessor: "acc-old", dispatchedAt: NOW.toISOString(), from: "dead" }), { file, action, entry: left }, t.deps);
    expect(end.phase).toBe("finished");
    expect(t.calls).toEqual(["release", "read stdout", "read stderr", "revoke acc-old"]);
    expect(t.ledger.entries.get("deploy")).toMatchObject({ state: "finished", owner: "me" });
    expect(t.seen).toEqual(["action:reattached", "token:revoked", "action:finished"]);
  });
});
