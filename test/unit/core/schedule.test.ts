import { describe, expect, it } from "vitest";
import type { Action } from "../../../dispatcher/actions/schema.js";
import { planDispatches, serializationKey, type Candidate, type LedgerView, type Limits } from "../../../dispatcher/core/schedule.js";

const NOW = new Date("2024-05-01T12:00:00.000Z");

function cand(id: string, formula = `f-${id}`, over: Partial<Action> = {}): Candidate {
  return {
    file: { path: `vault/actions/${id}.toml`, id, sha: `sha-${id}` },
    action: { id, formula, context: "ctx", secrets: [], mounts: [], kind: "runner", ...over },
  };
}

function ledger(inFlight: Record<string, string> = {}, notBefore: Record<string, Date> = {}): LedgerView {
  return {
    inFlight: new Map(Object.entries(inFlight).map(([id, key]) => [id, { key }])),
    notBefore: new Map(Object.entries(notBefore)),
  };
}

const limits = (over: Partial<Limits> = {}): Limits => ({ maxInFlight: 10, serializeBy: "formula", ...over });
const ids = (cs: Candidate[]) => cs.map((c) => c.action.id);

describe("serializationKey", () => {
  it("keys by formula, by id, or per action when serialization is off", () => {
    const a = cand("deploy-web", "deploy").action;
    expect(serializationKey(a, "formula")).toBe("formula:deploy");
    expect(serializationKey(a, "id")).toBe("id:deploy-web");
    expect(serializationKey(a, "none")).toBe("id:deploy-web");
  });
});

describe("planDispatches", () => {
  it("dispatches in id order regardless of input order", () => {
    const plan = planDispatches([cand("charlie"), cand("alpha"), cand("bravo")], ledger(), limits(), NOW);
    expect(ids(plan.dispatch)).toEqual(["alpha", "bravo", "charlie"]);
    expect(plan.waiting).toEqual([]);
  });

  it("orders ids by code unit, as the repo is read (not by locale: a-b, a.b, a1, a_b)", () => {
    const plan = planDispatches([cand("a_b"), cand("a1"), cand("a.b"), cand("a-b")], ledger(), limits(), NOW);
    expect(ids(plan.dispatch)).toEqual(["a-b", "a.b", "a1", "a_b"]);
  });

  it("returns the candidate objects themselves", () => {
    const c = cand("alpha");
    expect(planDispatches([c], ledger(), limits(), NOW).dispatch[0]).toBe(c);
  });

  it("does not reorder the caller's array", () => {
    const input = [cand("b"), cand("a")];
    planDispatches(input, ledger(), limits(), NOW);
    expect(ids(input)).toEqual(["b", "a"]);
  });

  it("stops at the global limit and says why the rest wait", () => {
    const plan = planDispatches([cand("d"), cand("c"), cand("b"), cand("a")], ledger(), limits({ maxInFlight: 2 }), NOW);
    expect(ids(plan.dispatch)).toEqual(["a", "b"]);
    expect(plan.waiting).toEqual([
      { id: "c", kind: "limit", reason: "max in flight (2) reached" },
      { id: "d", kind: "limit", reason: "max in flight (2) reached" },
    ]);
  });

  it("counts actions already in flight against the limit", () => {
    const plan = planDispatches([cand("a"), cand("b"), cand("c")], ledger({ x: "formula:f-x", y: "formula:f-y" }), limits({ maxInFlight: 3 }), NOW);
    expect(ids(plan.dispatch)).toEqual(["a"]);
    expect(plan.waiting).toEqual([
      { id: "b", kind: "limit", reason: "max in flight (3) reached" },
      { id: "c", kind: "limit", reason: "max in flight (3) reached" },
    ]);
  });

  it("dispatches nothing when the ledger already exceeds the limit", () => {
    const plan = planDispatches([cand("a")], ledger({ x: "formula:x", y: "formula:y" }), limits({ maxInFlight: 1 }), NOW);
    expect(plan.dispatch).toEqual([]);
    expect(plan.waiting).toEqual([{ id: "a", kind: "limit", reason: "max in flight (1) reached" }]);
  });

  it("silently skips candidates that are themselves in flight (neither dispatched nor waiting)", () => {
    const plan = planDispatches([cand("a"), cand("b")], ledger({ a: "formula:f-a" }), limits(), NOW);
    expect(ids(plan.dispatch)).toEqual(["b"]);
    expect(plan.waiting).toEqual([]);
  });

  it("serializes by formula: one per formula among the chosen", () => {
    const plan = planDispatches(
      [cand("c", "deploy"), cand("a", "deploy"), cand("b", "backup"), cand("d", "deploy")],
      ledger(),
      limits(),
      NOW,
    );
    expect(ids(plan.dispatch)).toEqual(["a", "b"]);
    expect(plan.waiting).toEqual([
      { id: "c", kind: "limit", reason: "serialized behind another action with formula:deploy" },
      { id: "d", kind: "limit", reason: "serialized behind another action with formula:deploy" },
    ]);
  });

  it("serializes by formula behind an action already in flight", () => {
    const plan = planDispatches([cand("a", "deploy"), cand("b", "backup")], ledger({ z: "formula:deploy" }), limits(), NOW);
    expect(ids(plan.dispatch)).toEqual(["b"]);
    expect(plan.waiting).toEqual([{ id: "a", kind: "limit", reason: "serialized behind another action with formula:deploy" }]);
  });

  it("serializes by id: same formula runs in parallel", () => {
    const plan = planDispatches([cand("a", "deploy"), cand("b", "deploy")], ledger({ z: "id:z" }), limits({ serializeBy: "id" }), NOW);
    expect(ids(plan.dispatch)).toEqual(["a", "b"]);
    expect(plan.waiting).toEqual([]);
  });

  it("serializes by id behind an in-flight entry with the same id key", () => {
    // an entry recorded under another ledger id but holding the key of candidate a
    const plan = planDispatches([cand("a"), cand("b")], ledger({ other: "id:a" }), limits({ serializeBy: "id" }), NOW);
    expect(ids(plan.dispatch)).toEqual(["b"]);
    expect(plan.waiting).toEqual([{ id: "a", kind: "limit", reason: "serialized behind another action with id:a" }]);
  });

  it("does not serialize with serializeBy none", () => {
    const plan = planDispatches(
      [cand("b", "deploy"), cand("a", "deploy"), cand("c", "deploy")],
      ledger({ z: "formula:deploy" }),
      limits({ serializeBy: "none" }),
      NOW,
    );
    expect(ids(plan.dispatch)).toEqual(["a", "b", "c"]);
    expect(plan.waiting).toEqual([]);
  });

  it("holds back an action whose retry backoff has not elapsed, with the due time", () => {
    const due = new Date(NOW.getTime() + 1500);
    const plan = planDispatches([cand("a"), cand("b")], ledger({}, { a: due }), limits(), NOW);
    expect(ids(plan.dispatch)).toEqual(["b"]);
    expect(plan.waiting).toEqual([{ id: "a", kind: "backoff", until: new Date("2024-05-01T12:00:01.500Z"), reason: "retry backoff until 2024-05-01T12:00:01.500Z" }]);
  });

  it("dispatches when the backoff is due exactly now or in the past", () => {
    const plan = planDispatches(
      [cand("a"), cand("b")],
      ledger({}, { a: new Date(NOW.getTime()), b: new Date(NOW.getTime() - 1) }),
      limits(),
      NOW,
    );
    expect(ids(plan.dispatch)).toEqual(["a", "b"]);
    expect(plan.waiting).toEqual([]);
  });

  it("a waiting (backoff) action neither takes a slot nor claims its key", () => {
    const due = new Date(NOW.getTime() + 60_000);
    const plan = planDispatches(
      [cand("a", "deploy"), cand("b", "deploy"), cand("c", "other")],
      ledger({}, { a: due }),
      limits({ maxInFlight: 2 }),
      NOW,
    );
    expect(ids(plan.dispatch)).toEqual(["b", "c"]);
    expect(plan.waiting).toEqual([{ id: "a", kind: "backoff", until: new Date("2024-05-01T12:01:00.000Z"), reason: "retry backoff until 2024-05-01T12:01:00.000Z" }]);
  });

  it("a serialized action does not take a slot", () => {
    const plan = planDispatches(
      [cand("a", "deploy"), cand("b", "deploy"), cand("c", "x"), cand("d", "y")],
      ledger(),
      limits({ maxInFlight: 2 }),
      NOW,
    );
    expect(ids(plan.dispatch)).toEqual(["a", "c"]);
    expect(plan.waiting).toEqual([
      { id: "b", kind: "limit", reason: "serialized behind another action with formula:deploy" },
      { id: "d", kind: "limit", reason: "max in flight (2) reached" },
    ]);
  });

  it("reports the first reason that applies: backoff before serialization before the limit", () => {
    const due = new Date(NOW.getTime() + 10_000);
    const plan = planDispatches(
      [cand("a", "deploy"), cand("b", "deploy"), cand("c", "deploy"), cand("d", "zz")],
      ledger({ run: "formula:deploy" }, { b: due }),
      limits({ maxInFlight: 1 }),
      NOW,
    );
    expect(plan.dispatch).toEqual([]);
    expect(plan.waiting).toEqual([
      { id: "a", kind: "limit", reason: "serialized behind another action with formula:deploy" },
      { id: "b", kind: "backoff", until: new Date("2024-05-01T12:00:10.000Z"), reason: "retry backoff until 2024-05-01T12:00:10.000Z" },
      { id: "c", kind: "limit", reason: "serialized behind another action with formula:deploy" },
      { id: "d", kind: "limit", reason: "max in flight (1) reached" },
    ]);
  });

  it("returns an empty plan for no candidates", () => {
    expect(planDispatches([], ledger({ a: "formula:x" }), limits(), NOW)).toEqual({ dispatch: [], waiting: [] });
  });
});
