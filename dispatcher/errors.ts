// The dispatcher's error vocabulary. Every failure that reaches a result or the CLI is one of
// these; `class` is the failure class recorded in results and used by the retry table.

export type FailureClass =
  | "invalid"
  | "rejected"
  | "secret_unknown"
  | "secret_missing"
  | "rate_limited"
  | "auth"
  | "timeout"
  | "infra"
  | "agent"
  | "lost"
  | "tampered"
  | "not_allowed"
  | "unapproved"
  | "parent_changed"
  | "config";

export abstract class DispatcherError extends Error {
  abstract readonly class: FailureClass;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * Work a pass may not do now: a per-pass budget is spent (commit signatures to check). Never a
 * failure and never recorded: the action waits, and the next pass, which comes at once, goes on.
 */
export class Deferred extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Deferred";
  }
}

/** Raised inside the runner when a granted secret is absent or empty at run time. */
export class SecretMissing extends DispatcherError {
  readonly class = "secret_missing";
}

export class ConfigInvalid extends DispatcherError {
  readonly class = "config";
}

/** An engine's HTTP API refused or could not be reached: its class follows the status. */
abstract class HttpApiError extends DispatcherError {
  readonly class: FailureClass;
  constructor(
    message: string,
    readonly status: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.class = classifyHttp(status);
  }
}

export class NomadApiError extends HttpApiError {}

export class VaultApiError extends HttpApiError {}

/** The forge (Gitea/Forgejo) refused or could not be reached: reports wait and are sent again. */
export class ForgeApiError extends HttpApiError {}

export class GitError extends DispatcherError {
  readonly class: FailureClass;
  constructor(message: string, options?: { cause?: unknown }, cls: FailureClass = "infra") {
    super(message, options);
    this.class = cls;
  }
}

/** The job ran past its deadline and was stopped. */
export class TimeoutExceeded extends DispatcherError {
  readonly class = "timeout";
}

/** The formula ran more processes at once than the task allows; the runner killed them all (the formula's failure). */
export class ProcessLimitExceeded extends DispatcherError {
  readonly class = "agent";
}

/** The allocation was never placed, or disappeared (node lost, GC). */
export class AllocationLost extends DispatcherError {
  readonly class = "lost";
}

/** A token, job or ledger entry that is not what the dispatcher made: an incident, never acted on. */
export class Tampered extends DispatcherError {
  readonly class = "tampered";
}

/** A runner/sidecar parent that differs from its pin: nothing is minted for it until it matches again. */
export class ParentChanged extends DispatcherError {
  readonly class = "parent_changed";
}

/** Something that retrying cannot fix; carries the class of the underlying failure. */
export class PermanentFailure extends DispatcherError {
  readonly class: FailureClass;
  constructor(message: string, cls: FailureClass, options?: { cause?: unknown }) {
    super(message, options);
    this.class = cls;
  }
}

/** A CLI outcome that maps to a specific exit code without being a crash. */
export class ExitError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = "ExitError";
  }
}

function classifyHttp(status: number | undefined): FailureClass {
  if (status === undefined) return "infra";
  if (status === 429) return "rate_limited";
  if (status === 401 || status === 403) return "auth";
  if (status >= 500) return "infra";
  return "rejected";
}

export interface RetryRule {
  retries: number;
  baseMs: number;
  maxMs: number;
}

/** Which failure classes are retried, how often, and with what exponential backoff. */
export const retryTable: Record<FailureClass, RetryRule> = {
  invalid: { retries: 0, baseMs: 0, maxMs: 0 },
  rejected: { retries: 0, baseMs: 0, maxMs: 0 },
  secret_unknown: { retries: 0, baseMs: 0, maxMs: 0 },
  secret_missing: { retries: 0, baseMs: 0, maxMs: 0 },
  config: { retries: 0, baseMs: 0, maxMs: 0 },
  timeout: { retries: 0, baseMs: 0, maxMs: 0 },
  tampered: { retries: 0, baseMs: 0, maxMs: 0 },
  not_allowed: { retries: 0, baseMs: 0, maxMs: 0 },
  unapproved: { retries: 0, baseMs: 0, maxMs: 0 },
  // waits (logged at error each time) until an operator re-registers the pinned spec or re-pins
  parent_changed: { retries: Infinity, baseMs: 10_000, maxMs: 60_000 },
  auth: { retries: 2, baseMs: 2_000, maxMs: 30_000 },
  // an engine outage is waited out: nothing is dispatched meanwhile, nothing is dropped
  rate_limited: { retries: Infinity, baseMs: 1_000, maxMs: 60_000 },
  infra: { retries: Infinity, baseMs: 500, maxMs: 30_000 },
  agent: { retries: 1, baseMs: 5_000, maxMs: 5_000 },
  lost: { retries: 1, baseMs: 2_000, maxMs: 2_000 },
};

export function failureClassOf(err: unknown): FailureClass {
  return err instanceof DispatcherError ? err.class : "agent";
}

/** How far an action got: its attempt number (a new one after each lost run) and the failures of this attempt before its child ran. */
export interface RetryHistory {
  attempt: number;
  failures: number;
}

/**
 * The one retry rule: when to try again after a failure of class `cls`, or undefined when the
 * class has no retry left. A lost run counts attempts (each retry is a new attempt); any other
 * failure counts this attempt's failures (the same attempt goes again, same idempotency key).
 */
export function nextRetry(cls: FailureClass, history: RetryHistory, now: Date): Date | undefined {
  const delay = backoffFor(cls, cls === "lost" ? history.attempt : history.failures);
  return delay === undefined ? undefined : new Date(now.getTime() + delay);
}

/** Delay before retry number `attempt` (1-based), or undefined when no retry is left. */
export function backoffFor(cls: FailureClass, attempt: number): number | undefined {
  const rule = retryTable[cls];
  if (attempt > rule.retries) return undefined;
  return Math.min(rule.maxMs, rule.baseMs * 2 ** Math.min(attempt - 1, 30));
}
