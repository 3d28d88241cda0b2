import { describe, expect, it } from "vitest";
import { buildPinFile, canonicalJson, diffSpecs, digestOf, pinProblem } from "../../../dispatcher/core/pins.js";

const spec = (args: string[], user = "nobody") => ({
  ID: "runner",
  Namespace: "dispatch",
  TaskGroups: [{ Name: "runner", Volumes: { runner: { ReadOnly: true } }, Tasks: [{ Name: "runner", Driver: "exec", User: user, Config: { command: "/usr/bin/node", args } }] }],
});
const pins = buildPinFile(new Map([["runner", spec(["/opt/dispatcher/runner.mjs"])]]), new Date("2026-01-01T00:00:00Z"));

describe("canonicalJson", () => {
  it("does not depend on key order, and drops undefined keys", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: undefined } })).toBe('{"a":{"d":[1,{"x":1,"y":2}]},"b":1}');
    expect(digestOf({ a: 1, b: 2 })).toBe(digestOf({ b: 2, a: 1 }));
  });
});

describe("pinProblem", () => {
  it("accepts the pinned spec", () => {
    expect(pinProblem(pins, "runner", spec(["/opt/dispatcher/runner.mjs"]))).toBeUndefined();
  });

  it("names the fields that differ, by group and task name", () => {
    expect(pinProblem(pins, "runner", spec(["/tmp/evil.js"], "root"))).toBe(
      'job "runner" differs from its pin: TaskGroups[runner].Tasks[runner].Config.args: pinned ["/opt/dispatcher/runner.mjs"], now ["/tmp/evil.js"]; TaskGroups[runner].Tasks[runner].User: pinned "nobody", now "root"',
    );
  });

  it("names an added task and a removed volume", () => {
    const live = spec(["/opt/dispatcher/runner.mjs"]);
    live.TaskGroups[0]!.Tasks.push({ Name: "miner", Driver: "raw_exec", User: "", Config: { command: "/bin/sh", args: [] } });
    (live.TaskGroups[0] as { Volumes?: unknown }).Volumes = undefined;
    expect(diffSpecs(pins.jobs.runner!.spec, live)).toEqual([
      'TaskGroups[runner].Tasks[miner]: pinned absent, now {"Name":"miner","Driver":"raw_exec","User":"","Config":{"command":"/bin/sh","...',
      'TaskGroups[runner].Volumes: pinned {"runner":{"ReadOnly":true}}, now absent',
    ]);
  });

  it("refuses without a pin file, an unpinned job or an unregistered one", () => {
    expect(pinProblem(undefined, "runner", spec([]))).toBe("no pin file: run `dispatcher jobs pin --out FILE` after registering the runner jobs and set DISPATCHER_JOB_PINS");
    expect(pinProblem(pins, "runner-ssh", spec([]))).toBe('job "runner-ssh" is not pinned (pinned: runner); re-run `dispatcher jobs pin`');
    expect(pinProblem(pins, "runner", undefined)).toBe('job "runner" is not registered in Nomad');
  });
});
