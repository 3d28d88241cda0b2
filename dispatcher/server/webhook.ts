// Push webhooks from Forgejo/Gitea and GitHub: the HMAC-SHA256 of the raw body under a shared
// secret. What a delivery may do is start a pass early; it carries no data the pass trusts (the
// tip it names only spares asking the remote whether it moved: the tip read is the fetched one).
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { DeliveriesPort } from "../core/ports.js";

export type Headers = Record<string, string | string[] | undefined>;

export type HookVerdict =
  /** a push to the watched branch: start a pass; `tip`: the commit the push made the branch's tip */
  | { kind: "push"; delivery?: string; source: "github" | "gitea"; tip?: string }
  /** an issue opened, labelled or edited (Forgejo/Gitea `issues`/`issue_label`, GitHub `issues`): start an issue pass */
  | { kind: "issues"; delivery?: string; source: "github" | "gitea" }
  /** signed, but nothing for us (another branch, a ping, another event) */
  | { kind: "ignored"; reason: string }
  | { kind: "unauthorized"; reason: string };

/** a commit id as GitHub and Forgejo send it in `after`: SHA-1, or SHA-256 in a SHA-256 repository */
const COMMIT_ID = /^([0-9a-f]{40}|[0-9a-f]{64})$/;

function header(h: Headers, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function signatureMatches(expectedHex: string, body: Buffer, secret: string): boolean {
  const ours = createHmac("sha256", secret).update(body).digest();
  const theirs = Buffer.from(expectedHex, "hex");
  return theirs.length === ours.length && timingSafeEqual(theirs, ours);
}

/** Verifies a delivery's signature, then decides whether it is a push to `branch`. */
export function judgeDelivery(h: Headers, body: Buffer, secret: string, branch: string): HookVerdict {
  const github = header(h, "x-hub-signature-256");
  // Forgejo sends X-Forgejo-Signature and, for compatibility, X-Gitea-Signature (same value)
  const gitea = header(h, "x-gitea-signature") ?? header(h, "x-forgejo-signature");
  let source: "github" | "gitea";
  // Gitea and Forgejo also send X-Hub-Signature-256 (and X-GitHub-Event) for GitHub's consumers:
  // their own signature decides, so a forge's delivery is read as the forge's
  if (gitea !== undefined) {
    if (!signatureMatches(gitea, body, secret)) return { kind: "unauthorized", reason: "X-Gitea-Signature does not match the body under the shared secret" };
    source = "gitea";
  } else if (github !== undefined) {
    if (!github.startsWith("sha256=") || !signatureMatches(github.slice(7), body, secret)) return { kind: "unauthorized", reason: "X-Hub-Signature-256 does not match the body under the shared secret" };
    source = "github";
  } else {
    return { kind: "unauthorized", reason: "no signature: expected X-Hub-Signature-256 (GitHub) or X-Gitea-Signature (Forgejo/Gitea)" };
  }
  const event = source === "github" ? header(h, "x-github-event") : (header(h, "x-gitea-event") ?? header(h, "x-forgejo-event"));
  const delivery = source === "github" ? header(h, "x-github-delivery") : (header(h, "x-gitea-delivery") ?? header(h, "x-forgejo-delivery"));
  // what a delivery of an issue event may do is list the issues early: it carries nothing the issue pass trusts
  if (event === "issues" || event === "issue_label") return { kind: "issues", source, ...(delivery ? { delivery } : {}) };
  if (event !== "push") return { kind: "ignored", reason: `event ${event ?? "(none)"} is not a push` };
  let ref: unknown;
  let after: unknown;
  try {
    ({ ref, after } = JSON.parse(body.toString("utf8")) as { ref?: unknown; after?: unknown });
  } catch {
    return { kind: "ignored", reason: "body is not JSON" };
  }
  if (ref !== `refs/heads/${branch}`) return { kind: "ignored", reason: `push to ${String(ref)}, not refs/heads/${branch}` };
  // a deleted branch's push names the zero commit: no tip
  const tip = typeof after === "string" && COMMIT_ID.test(after) && !/^0+$/.test(after) ? after : undefined;
  return { kind: "push", source, ...(delivery ? { delivery } : {}), ...(tip ? { tip } : {}) };
}

/** At most `limit` requests per `windowMs` (a fixed window): more get 429 without any work. */
export function createRateLimit(limit: number, windowMs: number, now: () => number) {
  let windowStart = 0;
  let count = 0;
  return {
    allow(): boolean {
      const t = now();
      if (t - windowStart >= windowMs) {
        windowStart = t;
        count = 0;
      }
      return ++count <= limit;
    },
  };
}

/** What identifies a delivery for the replay guard: the hash of its body, which the signature covers (a delivery id header is not). */
export function replayKey(body: Buffer): string {
  return createHash("sha256").update(body).digest("hex");
}

/** Delivery bodies seen lately: a replayed delivery starts no second pass. */
export function createReplayGuard(capacity = 1000) {
  const seen = new Set<string>();
  return {
    /** true the first time `id` is offered */
    first(id: string): boolean {
      if (seen.has(id)) return false;
      seen.add(id);
      // a Set iterates in insertion order: drop the oldest
      if (seen.size > capacity) seen.delete(seen.values().next().value!);
      return true;
    },
  };
}

export interface SharedReplayGuardDeps {
  deliveries: DeliveriesPort;
  /** a delivery's record counts this long; then it is taken over or swept */
  windowSeconds: number;
  now(): number;
  /** a sweep that failed (the next one tries again) */
  onSweepError(err: unknown): void;
}

/**
 * The replay guard replicas share: a check-and-set record in the ledger's store per delivery
 * body, so of the replicas behind one ingress exactly one accepts a delivery within the window
 * (a restart forgets nothing either). Records past the window are taken over as new, and swept at
 * most once per window (and at most hourly) by whichever replica receives a delivery.
 */
export function createSharedReplayGuard(deps: SharedReplayGuardDeps) {
  const windowMs = deps.windowSeconds * 1000;
  let sweptAt = deps.now();
  return {
    /** true for the one replica that saw `key` first within the window */
    async first(key: string): Promise<boolean> {
      const t = deps.now();
      const expiredBefore = new Date(t - windowMs);
      if (t - sweptAt >= Math.min(windowMs, 3_600_000)) {
        sweptAt = t;
        deps.deliveries.sweep(expiredBefore).catch(deps.onSweepError);
      }
      return deps.deliveries.first(key, new Date(t), expiredBefore);
    },
  };
}
