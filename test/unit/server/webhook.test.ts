import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { DeliveriesPort } from "../../../dispatcher/core/ports.js";
import { createRateLimit, createReplayGuard, createSharedReplayGuard, judgeDelivery } from "../../../dispatcher/server/webhook.js";

const secret = "s3cret-s3cret-s3cret";
const body = Buffer.from(JSON.stringify({ ref: "refs/heads/main", after: "abc" }));
const hex = (key: string, b: Buffer) => createHmac("sha256", key).update(b).digest("hex");

describe("judgeDelivery", () => {
  it("accepts a GitHub push to the branch with its delivery id", () => {
    const h = { "x-hub-signature-256": `sha256=${hex(secret, body)}`, "x-github-event": "push", "x-github-delivery": "d-1" };
    expect(judgeDelivery(h, body, secret, "main")).toEqual({ kind: "push", source: "github", delivery: "d-1" });
  });

  it("accepts a Forgejo/Gitea push (hex signature, no prefix)", () => {
    const h = { "x-gitea-signature": hex(secret, body), "x-gitea-event": "push", "x-gitea-delivery": "g-1" };
    expect(judgeDelivery(h, body, secret, "main")).toEqual({ kind: "push", source: "gitea", delivery: "g-1" });
    const forgejo = { "x-forgejo-signature": hex(secret, body), "x-forgejo-event": "push" };
    expect(judgeDelivery(forgejo, body, secret, "main")).toEqual({ kind: "push", source: "gitea" });
  });

  it("names the tip the push made (after) when it is a commit id; not a deleted branch's zeros nor anything else", () => {
    const tip = "0123456789abcdef0123456789abcdef01234567";
    const judge = (after: unknown) => {
      const b = Buffer.from(JSON.stringify({ ref: "refs/heads/main", after }));
      return judgeDelivery({ "x-hub-signature-256": `sha256=${hex(secret, b)}`, "x-github-event": "push" }, b, secret, "main");
    };
    expect(judge(tip)).toEqual({ kind: "push", source: "github", tip });
    expect(judge("a".repeat(64))).toEqual({ kind: "push", source: "github", tip: "a".repeat(64) });
    for (const after of ["0".repeat(40), tip.toUpperCase(), `${tip}\n`, "HEAD", 42, undefined]) expect(judge(after)).toEqual({ kind: "push", source: "github" });
  });

  it("refuses a signature under another secret, a tampered body, a missing signature", () => {
    const wrong = { "x-hub-signature-256": `sha256=${hex("another-secret-value", body)}`, "x-github-event": "push" };
    expect(judgeDelivery(wrong, body, secret, "main")).toEqual({ kind: "unauthorized", reason: "X-Hub-Signature-256 does not match the body under the shared secret" });
    const tampered = Buffer.from(JSON.stringify({ ref: "refs/heads/main", after: "evil" }));
    expect(judgeDelivery({ "x-gitea-signature": hex(secret, body), "x-gitea-event": "push" }, tampered, secret, "main")).toEqual({
      kind: "unauthorized",
      reason: "X-Gitea-Signature does not match the body under the shared secret",
    });
    expect(judgeDelivery({ "x-github-event": "push" }, body, secret, "main")).toEqual({
      kind: "unauthorized",
      reason: "no signature: expected X-Hub-Signature-256 (GitHub) or X-Gitea-Signature (Forgejo/Gitea)",
    });
    // a signature without GitHub's sha256= prefix, or of another length, never matches
    expect(judgeDelivery({ "x-hub-signature-256": hex(secret, body), "x-github-event": "push" }, body, secret, "main").kind).toBe("unauthorized");
    expect(judgeDelivery({ "x-hub-signature-256": "sha256=abcd", "x-github-event": "push" }, body, secret, "main").kind).toBe("unauthorized");
  });

  it("reads a signed issue event (Gitea issues / issue_label, GitHub issues) as an issue pass, whatever its body; unsigned it is refused", () => {
    const issue = Buffer.from(JSON.stringify({ action: "label_updated", number: 3 }));
    expect(judgeDelivery({ "x-gitea-signature": hex(secret, issue), "x-gitea-event": "issues", "x-gitea-delivery": "g-2" }, issue, secret, "main")).toEqual({ kind: "issues", source: "gitea", delivery: "g-2" });
    expect(judgeDelivery({ "x-forgejo-signature": hex(secret, issue), "x-forgejo-event": "issue_label" }, issue, secret, "main")).toEqual({ kind: "issues", source: "gitea" });
    expect(judgeDelivery({ "x-hub-signature-256": `sha256=${hex(secret, issue)}`, "x-github-event": "issues" }, issue, secret, "main")).toEqual({ kind: "issues", source: "github" });
    expect(judgeDelivery({ "x-gitea-signature": hex("another-secret-value", issue), "x-gitea-event": "issues" }, issue, secret, "main").kind).toBe("unauthorized");
  });

  it("ignores signed deliveries that are not a push to the watched branch", () => {
    const sig = { "x-hub-signature-256": `sha256=${hex(secret, body)}` };
    expect(judgeDelivery({ ...sig, "x-github-event": "push" }, body, secret, "release")).toEqual({ kind: "ignored", reason: "push to refs/heads/main, not refs/heads/release" });
    expect(judgeDelivery({ ...sig, "x-github-event": "ping" }, body, secret, "main")).toEqual({ kind: "ignored", reason: "event ping is not a push" });
    const notJson = Buffer.from("ref=main");
    expect(judgeDelivery({ "x-hub-signature-256": `sha256=${hex(secret, notJson)}`, "x-github-event": "push" }, notJson, secret, "main")).toEqual({ kind: "ignored", reason: "body is not JSON" });
  });
});

describe("createRateLimit", () => {
  it("allows `limit` per window, then again in the next window", () => {
    let t = 0;
    const limit = createRateLimit(2, 1000, () => t);
    expect([limit.allow(), limit.allow(), limit.allow()]).toEqual([true, true, false]);
    t = 999;
    expect(limit.allow()).toBe(false);
    t = 1000;
    expect(limit.allow()).toBe(true);
  });
});

describe("createReplayGuard", () => {
  it("lets a delivery id through once and forgets the oldest beyond its capacity", () => {
    const guard = createReplayGuard(2);
    expect([guard.first("a"), guard.first("a"), guard.first("b"), guard.first("c"), guard.first("a"), guard.first("c")]).toEqual([true, false, true, true, true, false]);
  });
});

describe("createSharedReplayGuard", () => {
  /** the store as nomad/deliveries.ts keeps it: one record per key, an expired one taken over */
  function memoryDeliveries() {
    const seen = new Map<string, number>();
    const sweeps: number[] = [];
    const port: DeliveriesPort = {
      async first(key, at, expiredBefore) {
        const held = seen.get(key);
        if (held !== undefined && held >= expiredBefore.getTime()) return false;
        seen.set(key, at.getTime());
        return true;
      },
      async sweep(before) {
        sweeps.push(before.getTime());
        for (const [k, t] of seen) if (t < before.getTime()) seen.delete(k);
        return 0;
      },
    };
    return { port, seen, sweeps };
  }

  it("lets a delivery through once across guards sharing a store, again once past the window; sweeps at most once a window", async () => {
    let t = 1_000_000;
    const store = memoryDeliveries();
    const deps = { deliveries: store.port, windowSeconds: 60, now: () => t, onSweepError: () => undefined };
    const [a, b] = [createSharedReplayGuard(deps), createSharedReplayGuard(deps)];
    expect([await a.first("k1"), await b.first("k1"), await a.first("k1"), await b.first("k2")]).toEqual([true, false, false, true]);
    expect(store.sweeps).toEqual([]);
    t += 59_999;
    expect(await b.first("k1")).toBe(false);
    t += 2;
    // the window has passed: one of the two takes it, and each guard sweeps what is older than the window once
    expect([await b.first("k1"), await a.first("k1")]).toEqual([true, false]);
    expect(store.sweeps).toEqual([t - 60_000, t - 60_000]);
    t += 1000;
    await a.first("k3");
    expect(store.sweeps).toHaveLength(2);
  });

  it("reports a failed sweep and still answers", async () => {
    const errors: unknown[] = [];
    let t = 0;
    const guard = createSharedReplayGuard({
      deliveries: { first: async () => true, sweep: async () => Promise.reject(new Error("nomad: list variables failed: HTTP 500")) },
      windowSeconds: 1,
      now: () => t,
      onSweepError: (err) => void errors.push(err),
    });
    t = 1000;
    expect(await guard.first("k")).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(errors.map((e) => (e as Error).message)).toEqual(["nomad: list variables failed: HTTP 500"]);
  });
});

describe("judgeDelivery with Gitea's headers as Gitea 1.27 sends them", () => {
  // services/webhook/deliver.go: X-Gitea-Signature, X-Gogs-Signature, X-Hub-Signature(-256) and X-GitHub-Event alike
  const gitea = (sig: string) => ({ "x-gitea-signature": sig, "x-gitea-event": "push", "x-gitea-delivery": "u-1", "x-hub-signature-256": `sha256=${hex(secret, body)}`, "x-github-event": "push", "x-github-delivery": "u-1" });

  it("is read as Gitea's, by its own signature", () => {
    expect(judgeDelivery(gitea(hex(secret, body)), body, secret, "main")).toEqual({ kind: "push", source: "gitea", delivery: "u-1" });
  });

  it("is refused when its own signature is wrong, whatever the GitHub header says", () => {
    expect(judgeDelivery(gitea(hex("another-secret-value", body)), body, secret, "main")).toEqual({ kind: "unauthorized", reason: "X-Gitea-Signature does not match the body under the shared secret" });
  });
});
