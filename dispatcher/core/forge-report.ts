// Results where the change was made: hangs on the loop's events (never in its logic) and tells the
// forge. `action:dispatched` → a pending status on the commit that brought the action file;
// `results:pushed` → the result's status there and, when that commit merged a pull request, one
// comment on it (found again by its marker and updated, never duplicated). Reports wait in a
// durable outbox (forge/outbox.ts): a forge outage never holds back a result commit, and what is
// unsent is sent when the forge answers again (after a backoff, and at every pass), in order.
import { backoffFor, failureClassOf } from "../errors.js";
import type { Logger } from "../log.js";
import type { LoopEmitter } from "./events.js";
import { commentMarker, pendingReport, resultReport, supersedes, type ForgeReport } from "./forge.js";
import type { Clock, ForgeOutboxPort, ForgePort, LedgerPort, RepoHistoryPort } from "./ports.js";
import type { ActionResult } from "./result.js";

export interface ForgeReporterDeps {
  events: LoopEmitter;
  forge: ForgePort;
  ledger: Pick<LedgerPort, "get">;
  history: RepoHistoryPort;
  outbox: ForgeOutboxPort;
  clock: Clock;
  log: Logger;
  actionsDir: string;
}

export interface ForgeReporter {
  /** reports not yet (wholly) sent, oldest first */
  unsent(): ForgeReport[];
  /** resolves when what is queued now has been tried once */
  settled(): Promise<void>;
  close(): void;
}

export function createForgeReporter(deps: ForgeReporterDeps): ForgeReporter {
  const { forge, log } = deps;
  const queue = new Map<string, ForgeReport>(deps.outbox.load().map((r) => [r.id, r]));
  /** events are turned into reports one at a time, in their order (a pending before its result) */
  let intake: Promise<void> = Promise.resolve();
  let sending: Promise<void> | undefined;
  let again = false;
  let failures = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const off: (() => void)[] = [];

  const save = () => deps.outbox.save([...queue.values()]);
  const path = (id: string) => `${deps.actionsDir}/${id}.toml`;

  function enqueue(report: ForgeReport): void {
    if (!supersedes(report, queue.get(report.id))) return;
    queue.set(report.id, report);
    save();
    kick();
  }

  function intakeOf(what: string, id: string, make: () => Promise<ForgeReport | undefined>): void {
    intake = intake.then(async () => {
      try {
        const report = await make();
        if (report) enqueue(report);
      } catch (err) {
        log.error({ err, action: id }, `forge: cannot prepare the ${what} report`);
      }
    });
  }

  off.push(
    deps.events.on("action:dispatched", (e) =>
      intakeOf("pending", e.id, async () => {
        const entry = await deps.ledger.get(e.id);
        if (!entry) return undefined;
        const commit = await deps.history.lastChange(entry.commit, path(e.id));
        return commit ? pendingReport(e.id, commit, e.attempt, deps.clock.now()) : undefined;
      }),
    ),
    deps.events.on("results:pushed", (e) => {
      for (const id of e.ids) {
        intakeOf("result", id, async () => {
          const text = await deps.history.readAtTip(`${deps.actionsDir}/${id}.result.json`);
          if (!text) return undefined;
          const result = JSON.parse(text.toString("utf8")) as ActionResult;
          const commit = await deps.history.lastChange(result.commit, path(id));
          return commit ? resultReport(result, commit, deps.clock.now()) : undefined;
        });
      }
    }),
    // every pass is a chance to send what an outage held back
    deps.events.on("pass:done", () => {
      if (queue.size > 0 && !timer) kick();
    }),
  );

  function kick(): void {
    if (closed) return;
    if (sending) {
      again = true;
      return;
    }
    sending = sendAll().finally(() => {
      sending = undefined;
      if (again) {
        again = false;
        kick();
      }
    });
  }

  async function sendOne(r: ForgeReport): Promise<void> {
    const sent = (r.sent ??= {});
    if (!sent.status) {
      await forge.setStatus(r.commit, r.status);
      sent.status = true;
      save();
    }
    if (r.comment !== undefined && !sent.comment) {
      const pr = await forge.mergedPullRequest(r.commit);
      if (pr !== undefined) await forge.upsertComment(pr, commentMarker(r.id), r.comment);
      sent.comment = true;
    }
  }

  async function sendAll(): Promise<void> {
    for (const r of [...queue.values()]) {
      if (closed) return;
      try {
        await sendOne(r);
        // a newer report that replaced this one meanwhile stays queued
        if (queue.get(r.id) === r) queue.delete(r.id);
        save();
        failures = 0;
      } catch (err) {
        if (failureClassOf(err) === "rejected") {
          // the forge answered and refused this report for good (a 4xx like an unknown commit):
          // sending it again cannot help, and it must not hold back the ones behind it
          log.error({ err, action: r.id, commit: r.commit }, "forge: report refused by the forge; dropped");
          if (queue.get(r.id) === r) queue.delete(r.id);
          save();
          continue;
        }
        r.tries = (r.tries ?? 0) + 1;
        r.lastError = (err as Error).message;
        save();
        failures++;
        const delay = backoffFor("infra", failures) ?? 30_000;
        log.warn({ err, action: r.id, class: failureClassOf(err), unsent: queue.size, retryInMs: delay }, "forge: report not sent; kept and retried");
        // the forge is likely away: the rest waits for the retry rather than failing one by one
        if (!timer && !closed) {
          timer = setTimeout(() => {
            timer = undefined;
            kick();
          }, delay);
          timer.unref?.();
        }
        return;
      }
    }
  }

  return {
    unsent: () => [...queue.values()],
    async settled() {
      await intake;
      while (sending) await sending;
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      off.forEach((f) => f());
    },
  };
}
