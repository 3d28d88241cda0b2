import type { Logger } from "../log.js";

/**
 * The daemon's signal policy: the first SIGTERM/SIGINT stops claiming and lets the loop drain;
 * a second one exits at once (running allocations are re-attached on restart).
 */
export function createShutdownHandler(log: Logger, stop: AbortController, exit: (code: number) => void): (signal: NodeJS.Signals) => void {
  let received = 0;
  return (signal) => {
    received++;
    if (received > 1) {
      log.warn({ signal }, "second signal: exiting now; running allocations are re-attached on restart");
      exit(130);
      return;
    }
    log.info({ signal }, "stopping: no new dispatches; finishing the results in hand");
    stop.abort();
  };
}
