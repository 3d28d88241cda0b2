import { describe, expect, it } from "vitest";
import { policiesFor, policyFor } from "../../../dispatcher/core/catalog.js";
import { idempotencyToken, parentJobFor, parentJobsOf } from "../../../dispatcher/core/request.js";

describe("idempotencyToken", () => {
  it("is 32 lower-case hex characters", () => {
    expect(idempotencyToken("release", "0123abcd", 1)).toMatch(/^[0-9a-f]{32}$/);
  });

  it("is deterministic", () => {
    expect(idempotencyToken("release", "0123abcd", 1)).toBe(idempotencyToken("release", "0123abcd", 1));
  });

  it("is the first half of sha256(id NUL sha NUL attempt)", () => {
    // sha256("a\0b\0" + "1"), computed independently
    expect(idempotencyToken("a", "b", 1)).toBe("784ae3f14ae3a4224eee1ccba4420818");
  });

  it("differs per attempt, per content sha and per id", () => {
    const base = idempotencyToken("release", "0123abcd", 1);
    expect(idempotencyToken("release", "0123abcd", 2)).not.toBe(base);
    expect(idempotencyToken("release", "0123abce", 1)).not.toBe(base);
    expect(idempotencyToken("releases", "0123abcd", 1)).not.toBe(base);
  });

  it("does not confuse fields when their boundary moves", () => {
    expect(idempotencyToken("ab", "c", 1)).not.toBe(idempotencyToken("a", "bc", 1));
    expect(idempotencyToken("a", "b1", 1)).not.toBe(idempotencyToken("a", "b", 11));
  });

  it("gives distinct tokens across many attempts", () => {
    const tokens = new Set(Array.from({ length: 100 }, (_, i) => idempotencyToken("release", "sha", i + 1)));
    expect(tokens.size).toBe(100);
  });
});

describe("policyFor / policiesFor", () => {
  it("names the runner policy in lower case, as Vault stores it", () => {
    expect(policyFor("GITHUB_TOKEN")).toBe("runner-github_token");
    expect(policyFor("AWS_KEY_2")).toBe("runner-aws_key_2");
  });

  it("maps each secret in order", () => {
    expect(policiesFor(["NPM_TOKEN", "GITHUB_TOKEN"])).toEqual(["runner-npm_token", "runner-github_token"]);
  });

  it("has no policies for no secrets", () => {
    expect(policiesFor([])).toEqual([]);
  });
});

describe("parentJobFor / parentJobsOf", () => {
  it("names the parent after the class and the sorted mount set", () => {
    expect(parentJobFor("runner", [])).toBe("runner");
    expect(parentJobFor("runner", ["ssh", "gpg", "ssh"])).toBe("runner-gpg-ssh");
    expect(parentJobFor("runner", [], "big")).toBe("runner.big");
    expect(parentJobFor("sidecar", ["sops"], "big")).toBe("sidecar.big-sops");
  });

  it("lists one parent per class (the default first) and mount set", () => {
    const all = parentJobsOf("runner", ["big"]);
    expect(all).toHaveLength(16);
    expect(all.slice(0, 2)).toEqual(["runner", "runner-ssh"]);
    expect(all).toContain("runner.big-gpg-sops-ssh");
    expect(new Set(all).size).toBe(16);
    expect(parentJobsOf("runner")).toHaveLength(8);
  });
});
