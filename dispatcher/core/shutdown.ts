// How the loop ends. `drain` (the daemon's SIGTERM): stop claiming, say so in the heartbeat, let
// the attempts in flight end (a child still running is left to whoever re-attaches: the abort
// releases its attempt), push what is held, free the shared places. `finish` (`once`): push every
// result, rejecting when one could not be pushed (the CLI exits 3).
import type { Logger } from "../log.js";
import type { Attempts } from "./attempts.js";
import type { Flusher } from "./flush.js";
import type { Heartbeat } from "./heartbeat.js";
import type { SharedLimits } from "./limits.js";

export interface ShutdownParts {
  /** aborted to stop: attempts leave their children running and the ledger as it is */
  controller: AbortController;
  heartbeat: Pick<Heartbeat, "beat">;
  attempts: Pick<Attempts, "settled">;
  flusher: Pick<Flusher, "settled" | "flush" | "flushSafely">;
  shared?: Pick<SharedLimits, "settle">;
  log: Logger;
}

export async function drain(p: ShutdownParts): Promise<void> {
  p.controller.abort(new Error("dispatcher stopping"));
  await p.heartbeat.beat(true).catch((err: unknown) => p.log.warn({ err }, "heartbeat failed"));
  await p.attempts.settled();
  await p.flusher.settled();
  await p.flusher.flushSafely();
  await p.shared?.settle();
}

export async function finish(p: Pick<ShutdownParts, "flusher" | "shared">): Promise<void> {
  await p.flusher.settled();
  await p.flusher.flush();
  await p.shared?.settle();
}
