import { Writable } from "node:stream";
import { beforeEach, describe, expect, it } from "vitest";
import { createLoopEmitter, type LoopEmitter } from "../../../dispatcher/core/events.js";
import { logLoopEvents } from "../../../dispatcher/core/log-events.js";
import { createLogger } from "../../../dispatcher/log.js";

let lines: Record<string, unknown>[];
let events: LoopEmitter;

beforeEach(() => {
  lines = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      const { time: _t, pid: _p, hostname: _h, ...rest } = JSON.parse(chunk.toString("utf8")) as Record<string, unknown>;
      lines.push(rest);
      done();
    },
  });
  events = createLoopEmitter();
  logLoopEvents(events, createLogger({ destination, level: "debug", pretty: false }));
});

describe("logLoopEvents", () => {
  it("logs a refusal with the action, its class and the problem", () => {
    events.emit("action:refused", { id: "deploy", class: "not_allowed", problem: "vault/actions/deploy.toml: secrets[0] …" });
    expect(lines).toEqual([{ level: 40, action: "deploy", class: "not_allowed", problem: "vault/actions/deploy.toml: secrets[0] …", msg: "action refused" }]);
  });

  it("logs a dispatch on the action's logger, and a duplicate first", () => {
    events.emit("action:dispatched", { id: "deploy", attempt: 2, jobId: "runner/dispatch-1", policies: ["runner-a"], duplicate: true, queuedMs: 0 });
    expect(lines).toEqual([
      { level: 40, action: "deploy", attempt: 2, job_id: "runner/dispatch-1", msg: "dispatch was a duplicate: re-attached to the existing child" },
      { level: 30, action: "deploy", attempt: 2, job_id: "runner/dispatch-1", policies: ["runner-a"], msg: "dispatched" },
    ]);
  });

  it("logs a retry by its class: a lost allocation, a changed parent (an incident), an outage", () => {
    events.emit("action:retrying", { id: "a", attempt: 1, class: "lost", delayMs: 2000, jobId: "runner/dispatch-1" });
    events.emit("action:retrying", { id: "b", attempt: 1, class: "parent_changed", delayMs: 10000, err: new Error('job "runner" differs from its pin') });
    events.emit("action:retrying", { id: "c", attempt: 1, class: "infra", delayMs: 500, err: new Error("nomad down") });
    expect(lines.map((l) => [l.level, l.action, l.msg, l.retry_in_ms])).toEqual([
      [40, "a", "allocation lost; retrying", 2000],
      [50, "b", "the runner parent differs from its pin: nothing minted or dispatched", 10000],
      [40, "c", "dispatch failed; will retry", 500],
    ]);
    expect(lines[1]).toMatchObject({ class: "parent_changed", problem: 'job "runner" differs from its pin' });
  });

  it("logs a finished action, a tampered one as an incident, and one that failed before it ran", () => {
    events.emit("action:finished", { id: "a", attempt: 1, status: "succeeded", ran: true, jobId: "runner/dispatch-1", allocId: "al", exitCode: 0 });
    events.emit("action:finished", { id: "b", attempt: 1, status: "failed", ran: true, class: "tampered", jobId: "j", problem: "unwrapped by someone else" });
    events.emit("action:finished", { id: "c", attempt: 1, status: "rejected", ran: false, class: "rejected", problem: "no", err: new Error("no") });
    expect(lines.map((l) => [l.level, l.action, l.msg, l.status, l.class])).toEqual([
      [30, "a", "action finished", "succeeded", undefined],
      [50, "b", "action finished: its wrapping token was tampered with", "failed", "tampered"],
      [50, "c", "action failed before it ran", undefined, "rejected"],
    ]);
  });

  it("logs a distrusted ledger entry as an error, naming its job when it has one", () => {
    events.emit("ledger:distrusted", { id: "x", problem: "job is not a child of runner", owner: "ghost", jobId: "victim", attempt: 1 });
    events.emit("ledger:distrusted", { id: "y", problem: "result names another action", owner: "ghost" });
    expect(lines.map((l) => [l.level, l.action, l.job_id, l.msg])).toEqual([
      [50, "x", "victim", "ledger entry does not match its job: not acting on it"],
      [50, "y", undefined, "ledger entry does not hold this action's result: not pushing it"],
    ]);
  });

  it("logs pushed and kept results", () => {
    events.emit("results:pushed", { ids: ["a", "b"], rejections: 0 });
    events.emit("results:kept", { waiting: 2, err: new Error("remote down") });
    expect(lines.map((l) => [l.level, l.msg, l.results ?? l.waiting])).toEqual([
      [30, "results pushed", ["a", "b"]],
      [50, "could not push results; they are kept and retried on the next pass", 2],
    ]);
  });

  it("logs the timeline's points at debug: child running, its place freed, a token minted, a freed place's start, a pass done", () => {
    events.emit("action:started", { id: "a", attempt: 1, jobId: "runner/dispatch-1", allocId: "al", node: "n1", sinceDispatchMs: 120 });
    events.emit("action:released", { id: "a" });
    events.emit("token:minted", { id: "b", attempt: 2, policies: ["runner-x"] });
    events.emit("pass:freed-start", { ids: ["c"] });
    events.emit("pass:done", { durationMs: 35, commit: "c0ffee", started: 3, refused: 0, waiting: 1, syncedMs: 20, readMs: 30 });
    expect(lines).toEqual([
      { level: 20, action: "a", attempt: 1, job_id: "runner/dispatch-1", alloc_id: "al", since_dispatch_ms: 120, msg: "child running" },
      { level: 20, action: "a", msg: "child ended: its place is free" },
      { level: 20, action: "b", attempt: 2, policies: ["runner-x"], msg: "token minted" },
      { level: 20, actions: ["c"], msg: "a freed place started the next decided actions" },
      { level: 20, commit: "c0ffee", duration_ms: 35, synced_ms: 20, read_ms: 30, started: 3, waiting: 1, msg: "pass done" },
    ]);
  });
});
