import { describe, expect, it } from "vitest";
import {
  AllocationLost,
  backoffFor,
  ConfigInvalid,
  DispatcherError,
  ExitError,
  failureClassOf,
  GitError,
  NomadApiError,
  PermanentFailure,
  retryTable,
  SecretMissing,
  TimeoutExceeded,
  VaultApiError,
  type FailureClass,
} from "../../../dispatcher/errors.js";

const ALL_CLASSES: FailureClass[] = [
  "invalid",
  "rejected",
  "secret_unknown",
  "secret_missing",
  "rate_limited",
  "auth",
  "timeout",
  "infra",
  "agent",
  "lost",
  "tampered",
  "not_allowed",
  "unapproved",
  "parent_changed",
  "config",
];

describe("HTTP status classification", () => {
  const cases: [number | undefined, FailureClass][] = [
    [429, "rate_limited"],
    [401, "auth"],
    [403, "auth"],
    [500, "infra"],
    [502, "infra"],
    [503, "infra"],
    [undefined, "infra"],
    [400, "rejected"],
    [404, "rejected"],
    [409, "rejected"],
    [422, "rejected"],
  ];

  for (const [status, cls] of cases) {
    it(`classifies ${String(status)} as ${cls} for Nomad and Vault`, () => {
      const n = new NomadApiError("nomad said no", status);
      const v = new VaultApiError("vault said no", status);
      expect(n.class).toBe(cls);
      expect(v.class).toBe(cls);
      expect(n.status).toBe(status);
      expect(v.status).toBe(status);
      expect(failureClassOf(n)).toBe(cls);
      expect(failureClassOf(v)).toBe(cls);
    });
  }

  it("keeps message, name and cause", () => {
    const cause = new Error("ECONNREFUSED");
    const e = new NomadApiError("GET /v1/jobs: connection refused", undefined, { cause });
    expect(e).toBeInstanceOf(DispatcherError);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("NomadApiError");
    expect(e.message).toBe("GET /v1/jobs: connection refused");
    expect(e.cause).toBe(cause);
    expect(new VaultApiError("x", 403).name).toBe("VaultApiError");
  });
});

describe("error classes", () => {
  it("each carries its failure class and its own name", () => {
    const cases: [DispatcherError, FailureClass, string][] = [
      [new SecretMissing("x"), "secret_missing", "SecretMissing"],
      [new ConfigInvalid("x"), "config", "ConfigInvalid"],
      [new GitError("x"), "infra", "GitError"],
      [new TimeoutExceeded("x"), "timeout", "TimeoutExceeded"],
      [new AllocationLost("x"), "lost", "AllocationLost"],
      [new PermanentFailure("x", "auth"), "auth", "PermanentFailure"],
    ];
    for (const [err, cls, name] of cases) {
      expect(err.class).toBe(cls);
      expect(err.name).toBe(name);
      expect(failureClassOf(err)).toBe(cls);
    }
  });

  it("ExitError carries an exit code and is not a failure class", () => {
    const e = new ExitError("2 actions invalid", 2);
    expect(e.exitCode).toBe(2);
    expect(e.name).toBe("ExitError");
    expect(failureClassOf(e)).toBe("agent");
  });
});

describe("failureClassOf", () => {
  it("treats anything that is not a DispatcherError as an agent failure", () => {
    expect(failureClassOf(new Error("boom"))).toBe("agent");
    expect(failureClassOf(new TypeError("x is undefined"))).toBe("agent");
    expect(failureClassOf("a string")).toBe("agent");
    expect(failureClassOf(undefined)).toBe("agent");
    expect(failureClassOf({ class: "auth" })).toBe("agent");
  });
});

describe("retryTable", () => {
  it("has a rule for every failure class", () => {
    expect(Object.keys(retryTable).sort()).toEqual([...ALL_CLASSES].sort());
  });

  it("never retries what a retry cannot fix", () => {
    for (const cls of ["invalid", "rejected", "secret_unknown", "secret_missing", "config", "timeout"] as const) {
      expect(retryTable[cls].retries).toBe(0);
      expect(backoffFor(cls, 1)).toBeUndefined();
    }
  });

  it("retries transient classes", () => {
    for (const cls of ["auth", "rate_limited", "infra", "agent", "lost"] as const) {
      expect(retryTable[cls].retries).toBeGreaterThan(0);
      expect(backoffFor(cls, 1)).toBe(retryTable[cls].baseMs);
    }
  });
});

describe("backoffFor", () => {
  it("doubles from the base and stops at the max", () => {
    // infra: 500 ms base, 30 s cap
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffFor("infra", n))).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    // rate_limited: 1 s base, 60 s cap
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffFor("rate_limited", n))).toEqual([
      1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000,
    ]);
  });

  it("is undefined once the retries are used up", () => {
    // auth: 2 retries, 2 s base
    expect(backoffFor("auth", 1)).toBe(2000);
    expect(backoffFor("auth", 2)).toBe(4000);
    expect(backoffFor("auth", 3)).toBeUndefined();
    // agent and lost: one retry each, fixed delay
    expect(backoffFor("agent", 1)).toBe(5000);
    expect(backoffFor("agent", 2)).toBeUndefined();
    expect(backoffFor("lost", 1)).toBe(2000);
    expect(backoffFor("lost", 2)).toBeUndefined();
  });

  it("follows the table for every class and attempt: min(max, base·2^(n-1)) while retries remain", () => {
    for (const cls of ALL_CLASSES) {
      const rule = retryTable[cls];
      const last = Number.isFinite(rule.retries) ? rule.retries : 40;
      for (let n = 1; n <= last; n++) {
        const d = backoffFor(cls, n);
        expect(d).toBe(Math.min(rule.maxMs, rule.baseMs * 2 ** Math.min(n - 1, 30)));
        expect(d).toBeLessThanOrEqual(rule.maxMs);
      }
      if (Number.isFinite(rule.retries)) expect(backoffFor(cls, rule.retries + 1)).toBeUndefined();
    }
  });

  it("waits out engine outages: infra and rate_limited never run out, staying at the cap", () => {
    for (const n of [100, 1_000, 1_000_000]) {
      expect(backoffFor("infra", n)).toBe(30_000);
      expect(backoffFor("rate_limited", n)).toBe(60_000);
    }
  });

  it("never decreases with the attempt number", () => {
    for (const cls of ["auth", "rate_limited", "infra"] as const) {
      let prev = 0;
      for (let n = 1; n <= Math.min(retryTable[cls].retries, 50); n++) {
        const d = backoffFor(cls, n)!;
        expect(d).toBeGreaterThanOrEqual(prev);
        prev = d;
      }
    }
  });
});
