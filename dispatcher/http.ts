// HTTP on node:http for the engine adapters (Nomad, Vault): keep-alive, a bounded pool, JSON in
// and out, streams. Each adapter owns its own calls; this module only carries them.
// A general client (axios) spent more CPU per request than the dispatcher's own work did
// (make bench: about a third of its node CPU per action went to config merging and redirects).
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";

export interface HttpRequest {
  method?: "GET" | "POST" | "PUT" | "DELETE";
  /** path under the base URL, e.g. /v1/jobs */
  url: string;
  /** query parameters; undefined ones are left out */
  params?: Record<string, string | number | boolean | undefined>;
  /** sent as JSON */
  data?: unknown;
  /** on top of the client's own, e.g. a per-call token */
  headers?: Record<string, string>;
  /** ms until the whole answer; 0: none (streams) */
  timeout?: number;
  signal?: AbortSignal;
  /** json (default): parsed when it parses, else the text; bytes; or the open response */
  responseType?: "json" | "bytes" | "stream";
  /** starts a child (claim, parent check, dispatch): waits for a connection ahead of the others */
  urgent?: boolean;
}

export interface HttpResponse<T = unknown> {
  status: number;
  headers: IncomingHttpHeaders;
  data: T;
}

/** A failure to get any answer; `code` like ECONNREFUSED, ETIMEDOUT, ABORTED. */
export class HttpFailure extends Error {
  constructor(
    message: string,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface HttpOptions {
  baseUrl: string;
  headers: Record<string, string>;
  /** query parameters on every request (namespace, region) */
  params: Record<string, string | undefined>;
  maxSockets: number;
}

export function createHttp(opts: HttpOptions) {
  const base = new URL(opts.baseUrl.replace(/\/$/, ""));
  const tls = base.protocol === "https:";
  const agent = tls ? new HttpsAgent({ keepAlive: true, maxSockets: opts.maxSockets }) : new HttpAgent({ keepAlive: true, maxSockets: opts.maxSockets });
  const send = tls ? httpsRequest : httpRequest;
  const prefix = base.pathname === "/" ? "" : base.pathname;
  // requests past the pool wait here as a closure each, not as a ClientRequest with its buffers
  // and timer in the agent's queue: a pass that starts 5,000 actions at once stays small. Urgent
  // ones go first: under load a child's start otherwise queued behind the logs and ledger
  // writes of those that ended (make bench, mock_driver at 64: 60–100 ms a request, twice a start)
  let active = 0;
  const queued: (() => void)[] = [];
  const urgent: (() => void)[] = [];
  function acquire(first: boolean): Promise<void> {
    if (active < opts.maxSockets) {
      active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => (first ? urgent : queued).push(resolve));
  }
  function release(): void {
    const next = urgent.shift() ?? queued.shift();
    if (next) next();
    else active--;
  }

  function pathOf(req: HttpRequest): string {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...opts.params, ...req.params })) if (v !== undefined) query.set(k, String(v));
    const q = query.toString();
    return `${prefix}${req.url}${q ? `?${q}` : ""}`;
  }

  function request(req: HttpRequest & { responseType: "stream" }): Promise<HttpResponse<IncomingMessage>>;
  function request(req: HttpRequest & { responseType: "bytes" }): Promise<HttpResponse<Buffer>>;
  function request(req: HttpRequest): Promise<HttpResponse>;
  async function request(req: HttpRequest): Promise<HttpResponse<unknown>> {
    await acquire(req.urgent === true);
    let res: HttpResponse<unknown>;
    try {
      res = await sendNow(req);
    } catch (err) {
      release();
      throw err;
    }
    // a stream holds its connection until it ends
    if (req.responseType === "stream") (res.data as IncomingMessage).once("close", release);
    else release();
    return res;
  }

  function sendNow(req: HttpRequest): Promise<HttpResponse<unknown>> {
    const body = req.data === undefined ? undefined : Buffer.from(JSON.stringify(req.data));
    const headers: Record<string, string | number> = { ...opts.headers, ...req.headers, ...(body ? { "Content-Type": "application/json", "Content-Length": body.length } : {}) };
    return new Promise((resolve, reject) => {
      if (req.signal?.aborted) return reject(new HttpFailure("aborted", "ABORTED"));
      const r = send({ host: base.hostname, port: base.port, path: pathOf(req), method: req.method ?? "GET", headers, agent, signal: req.signal });
      const timeout = req.timeout ?? 30_000;
      const timer = timeout > 0 ? setTimeout(() => r.destroy(new HttpFailure(`no answer within ${timeout} ms`, "ETIMEDOUT")), timeout) : undefined;
      const fail = (err: Error & { code?: string }) => {
        clearTimeout(timer);
        reject(err instanceof HttpFailure ? err : new HttpFailure(err.message, req.signal?.aborted ? "ABORTED" : (err.code ?? "EIO"), { cause: err }));
      };
      r.on("error", fail);
      r.on("response", (res) => {
        const status = res.statusCode ?? 0;
        if (req.responseType === "stream") {
          clearTimeout(timer);
          return resolve({ status, headers: res.headers, data: res });
        }
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", fail);
        res.on("end", () => {
          clearTimeout(timer);
          const bytes = Buffer.concat(chunks);
          resolve({ status, headers: res.headers, data: req.responseType === "bytes" ? bytes : parseBody(bytes) });
        });
      });
      r.end(body);
    });
  }

  /**
   * Closes the pool's idle keep-alive connections. Nomad counts every open connection from an
   * address against its limit (100), idle ones too: a client done with a burst can give them back.
   */
  function closeIdle(): void {
    for (const sockets of Object.values(agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
  }

  return { request, closeIdle };
}

export type Http = ReturnType<typeof createHttp>;

/** JSON when it parses (Nomad's answers), else the text (its errors are plain text). */
function parseBody(bytes: Buffer): unknown {
  const text = bytes.toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
