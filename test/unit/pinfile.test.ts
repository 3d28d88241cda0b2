import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { buildPinFile, childProblem } from "../../dispatcher/core/pins.js";
import { readPinFile, writePinFile } from "../../dispatcher/pinfile.js";

const dir = mkdtempSync(join(tmpdir(), "pinfile-"));
afterEach(() => rmSync(join(dir, "pins.json"), { force: true }));

const job = (name: string) => ({ ID: name, Name: name, Namespace: "dispatch", TaskGroups: [{ Name: "runner", Tasks: [{ Name: "runner", Driver: "exec", Config: { command: "/usr/bin/node", args: ["/opt/dispatcher/runner.mjs"] } }] }] });

describe("the pin file", () => {
  it("round-trips the whole jobs, their specs gzipped", () => {
    const pins = buildPinFile(new Map(Array.from({ length: 32 }, (_, i) => [`runner-${i}`, job(`runner-${i}`)])), new Date("2026-01-01T00:00:00Z"));
    const path = join(dir, "pins.json");
    writePinFile(path, pins);
    expect(readPinFile(path)).toEqual(pins);
    expect(statSync(path).size).toBeLessThan(8_000);
  });

  it("refuses a version-1 file from an older dispatcher, saying what to do", () => {
    const path = join(dir, "pins.json");
    writeFileSync(path, JSON.stringify({ version: 1, pinnedAt: "x", jobs: {} }));
    expect(() => readPinFile(path)).toThrow(`${path} (DISPATCHER_JOB_PINS): version: pinned by an older dispatcher (version 1 pinned fewer fields): re-run \`dispatcher jobs pin\``);
  });
});

describe("childProblem", () => {
  const pins = buildPinFile(new Map([["runner", { ...job("runner"), Meta: { pool: "a" } }]]), new Date("2026-01-01T00:00:00Z"));
  const sent = { action_id: "deploy", commit: "c1" };
  const child = { ...job("runner/dispatch-1"), Meta: { pool: "a", ...sent } };

  it("accepts a child that is the pin plus the meta sent", () => {
    expect(childProblem(pins, "runner", sent, { jobId: "runner/dispatch-1", spec: child })).toBeUndefined();
  });

  it("names the field of a child that differs (task meta added after the pin check)", () => {
    const evil = structuredClone(child) as typeof child & { TaskGroups: { Tasks: { Meta?: Record<string, string> }[] }[] };
    evil.TaskGroups[0]!.Tasks[0]!.Meta = { commit: "evil" };
    expect(childProblem(pins, "runner", sent, { jobId: "runner/dispatch-1", spec: evil })).toBe(
      'child runner/dispatch-1 of job "runner" differs from its pin: TaskGroups[runner].Tasks[runner].Meta: pinned absent, now {"commit":"evil"}',
    );
    expect(childProblem(pins, "runner", { ...sent, commit: "c2" }, { jobId: "runner/dispatch-1", spec: child })).toBe('child runner/dispatch-1 of job "runner" differs from its pin: Meta.commit: pinned "c2", now "c1"');
  });
});
