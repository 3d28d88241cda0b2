// What `dispatcher run` serves: GET /metrics (Prometheus), /healthz (the process answers),
// /readyz (server/health.ts) and POST /hooks/push (server/webhook.ts). Loopback by default.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Counter, type Registry } from "prom-client";
import type { DeliveriesPort } from "../core/ports.js";
import type { Logger } from "../log.js";
import type { Readiness } from "./health.js";
import { createRateLimit, createReplayGuard, createSharedReplayGuard, judgeDelivery, replayKey } from "./webhook.js";

export interface ServerDeps {
  /** host:port; port 0 picks a free one */
  listen: string;
  metrics: Registry;
  readiness: Readiness;
  /** absent: /hooks/push answers 404 */
  webhook?: {
    secret: string;
    branch: string;
    onPush(tip?: string): void;
    /** a signed issue event (issues, issue_label): the issue loop looks at once */
    onIssues?(): void;
    /** the replay guard replicas share (the ledger's store), with its window; absent: this process's memory only */
    replays?: { deliveries: DeliveriesPort; windowSeconds: number };
  };
  log: Logger;
  now(): number;
}

export interface Served {
  /** http://host:port of the bound address */
  url: string;
  close(): Promise<void>;
}

/** a push event is a few KiB; GitHub caps payloads at 25 MB, we need far less */
const MAX_HOOK_BYTES = 1024 * 1024;
const HOOKS_PER_WINDOW = 20;
const HOOK_WINDOW_MS = 10_000;

class TooLarge extends Error {}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_HOOK_BYTES) throw new TooLarge(`body larger than ${MAX_HOOK_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, status: number, body: string, type = "text/plain; charset=utf-8"): void {
  res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store" });
  res.end(body);
}

export async function startServer(deps: ServerDeps): Promise<Served> {
  const at = deps.listen.lastIndexOf(":");
  const host = deps.listen.slice(0, at);
  const port = Number(deps.listen.slice(at + 1));
  const limit = createRateLimit(HOOKS_PER_WINDOW, HOOK_WINDOW_MS, deps.now);
  const shared = deps.webhook?.replays;
  const replays = shared
    ? createSharedReplayGuard({ ...shared, now: deps.now, onSweepError: (err) => deps.log.warn({ err }, "webhook replay guard: sweeping expired deliveries failed; the next delivery tries again") })
    : createReplayGuard();
  /** a flood of unsigned requests is counted in the metric, and logged at most this often */
  const refusalsLogged = createRateLimit(HOOKS_PER_WINDOW, HOOK_WINDOW_MS, deps.now);
  const deliveries = new Counter({ name: "dispatcher_webhook_deliveries_total", help: "Webhook deliveries by outcome (push, issues, ignored, replayed, unauthorized, limited, too_large)", labelNames: ["outcome"], registers: [deps.metrics] });
  const log = deps.log;

  /**
   * The replay guard's answer; when the shared store cannot answer, the delivery is taken (a
   * delivery only starts a pass early, what polling does anyway; the rate limit still holds)
   */
  async function firstDelivery(key: string): Promise<boolean> {
    try {
      return await replays.first(key);
    } catch (err) {
      log.warn({ err }, "webhook replay guard: the shared record could not be written; taking the delivery");
      return true;
    }
  }

  async function hook(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const w = deps.webhook;
    if (!w) return send(res, 404, "no webhook secret configured (server.webhook_secret_file)\n");
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch (err) {
      if (!(err instanceof TooLarge)) throw err;
      deliveries.inc({ outcome: "too_large" });
      return send(res, 413, `${err.message}\n`);
    }
    // the signature first: unsigned requests never count toward the limit, so a flood of them starves no real delivery
    const verdict = judgeDelivery(req.headers, body, w.secret, w.branch);
    if (verdict.kind === "unauthorized") {
      deliveries.inc({ outcome: "unauthorized" });
      if (refusalsLogged.allow()) log.warn({ remote: req.socket.remoteAddress, problem: verdict.reason }, "webhook delivery refused");
      return send(res, 401, `${verdict.reason}\n`);
    }
    if (!limit.allow()) {
      deliveries.inc({ outcome: "limited" });
      return send(res, 429, `more than ${HOOKS_PER_WINDOW} deliveries in ${HOOK_WINDOW_MS / 1000}s; polling continues\n`);
    }
    if (verdict.kind === "ignored") {
      deliveries.inc({ outcome: "ignored" });
      return send(res, 202, `ignored: ${verdict.reason}\n`);
    }
    // the replay key is the signed body itself (a delivery id header is not covered by the signature, and may be absent)
    if (!(await firstDelivery(replayKey(body)))) {
      deliveries.inc({ outcome: "replayed" });
      return send(res, 202, verdict.delivery ? `delivery ${verdict.delivery} was already handled\n` : "this delivery's body was already handled\n");
    }
    if (verdict.kind === "issues") {
      deliveries.inc({ outcome: "issues" });
      if (!w.onIssues) return send(res, 202, "ignored: no issue triggers configured ([issues] projects)\n");
      log.info({ source: verdict.source, delivery: verdict.delivery }, "issue webhook: starting an issue pass");
      w.onIssues();
      return send(res, 202, "issue pass started\n");
    }
    deliveries.inc({ outcome: "push" });
    log.info({ source: verdict.source, delivery: verdict.delivery, tip: verdict.tip }, "push webhook: starting a pass");
    w.onPush(verdict.tip);
    send(res, 202, "pass started\n");
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "POST" && path === "/hooks/push") return hook(req, res);
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "method not allowed\n");
    if (path === "/metrics") return send(res, 200, await deps.metrics.metrics(), deps.metrics.contentType);
    if (path === "/healthz") return send(res, 200, "ok\n");
    if (path === "/readyz") {
      const r = await deps.readiness.check();
      return send(res, r.ready ? 200 : 503, `${JSON.stringify(r, null, 2)}\n`, "application/json");
    }
    send(res, 404, "not found: /metrics, /healthz, /readyz, POST /hooks/push\n");
  }

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      log.error({ err, path: req.url }, "request failed");
      if (!res.headersSent) send(res, 500, "internal error\n");
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as { address: string; port: number };
  const url = `http://${bound.address.includes(":") ? `[${bound.address}]` : bound.address}:${bound.port}`;
  return {
    url,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
