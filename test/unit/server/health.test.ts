import { describe, expect, it } from "vitest";
import { createLoopEmitter } from "../../../dispatcher/core/events.js";
import { createReadiness } from "../../../dispatcher/server/health.js";

function setup() {
  let t = Date.parse("2026-12-02T10:00:00Z");
  const events = createLoopEmitter();
  const engines = { vault: async () => 3600, nomad: async () => "127.0.0.1:4647" };
  const r = createReadiness({
    events,
    clock: { now: () => new Date(t), sleep: async () => undefined },
    maxPassAgeMs: 90_000,
    vaultTokenSeconds: () => engines.vault(),
    nomadLeader: () => engines.nomad(),
  });
  return { r, events, engines, advance: (ms: number) => (t += ms) };
}

const pass = { durationMs: 5, commit: "c", started: 0, refused: 0, waiting: 0 };

describe("createReadiness", () => {
  it("is ready after a good pass with a valid Vault token and Nomad answering", async () => {
    const { r, events } = setup();
    expect(await r.check()).toEqual({
      ready: false,
      checks: [
        { name: "pass", ok: false, detail: "no pass has finished yet" },
        { name: "vault", ok: true, detail: "token valid for 3600s" },
        { name: "nomad", ok: true, detail: "leader 127.0.0.1:4647" },
      ],
    });
    events.emit("pass:done", pass);
    expect((await r.check()).ready).toBe(true);
  });

  it("turns unready when Vault fails, the last pass failed, or no pass came for too long", async () => {
    const { r, events, engines, advance } = setup();
    events.emit("pass:done", pass);
    engines.vault = async () => {
      throw new Error("connect ECONNREFUSED 127.0.0.1:8200");
    };
    expect((await r.check()).checks[1]).toEqual({ name: "vault", ok: false, detail: "connect ECONNREFUSED 127.0.0.1:8200" });
    engines.vault = async () => 0;
    expect(await r.check()).toMatchObject({ ready: true, checks: [{ ok: true }, { detail: "token valid, no expiry" }, { ok: true }] });
    events.emit("pass:failed", { durationMs: 1, class: "infra", err: new Error("git fetch failed") });
    expect((await r.check()).checks[0]).toEqual({ name: "pass", ok: false, detail: "the last pass failed: git fetch failed" });
    events.emit("pass:done", pass);
    advance(91_000);
    expect((await r.check()).checks[0]).toEqual({ name: "pass", ok: false, detail: "last good pass 91s ago (more than 90s)" });
  });

  it("reads a hung engine as unready within its bound", async () => {
    const { r, events, engines } = setup();
    events.emit("pass:done", pass);
    engines.nomad = () => new Promise(() => undefined);
    expect((await r.check()).checks[2]).toEqual({ name: "nomad", ok: false, detail: "nomad did not answer within 2000 ms" });
  });
});
