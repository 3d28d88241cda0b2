// HTTP for the Nomad adapter on axios: one instance per client with its own keep-alive agent, a
// bounded pool, JSON in and out, streams. Each adapter owns its own calls; this module only
// carries them. The instance is configured for the hot path (README "The declared stack"): no
// compression asked or undone (`Accept-Encoding: identity`, `decompress: false`), no redirects
// (axios then uses node:http directly, not follow-redirects), no proxy from the environment, no
// request or response transforms (bodies go out as one Buffer and come back as bytes, parsed here
// once), every status an answer (the adapter classifies it), axios's own timeout (an
// AbortSignal.any and a timer of ours per request cost a quarter of axios's own overhead).
// axios costs about 150 µs of CPU a request over node:http on the dev VM (README "The declared stack").
import { Agent as HttpAgent, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import axios, { type AxiosResponse } from "axios";

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
  /** ms without an answer (axios's timeout: the connection, then the socket's silence); 0: none (streams) */
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
  const prefix = base.pathname === "/" ? "" : base.pathname;
  const instance = axios.create({
    baseURL: base.origin,
    ...(tls ? { httpsAgent: agent } : { httpAgent: agent }),
    // explicit, so axios adds no Accept-Encoding of its own; the caller's (the token) on top
    headers: { "Accept-Encoding": "identity", ...opts.headers },
    decompress: false,
    maxRedirects: 0,
    proxy: false,
    validateStatus: () => true,
    transformRequest: [],
    transformResponse: [],
    maxContentLength: -1,
    maxBodyLength: -1,
    // a timeout is ETIMEDOUT, not ECONNABORTED (an aborted connection)
    transitional: { clarifyTimeoutError: true },
  });
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

  async function sendNow(req: HttpRequest): Promise<HttpResponse<unknown>> {
    if (req.signal?.aborted) throw new HttpFailure("aborted", "ABORTED");
    const body = req.data === undefined ? undefined : Buffer.from(JSON.stringify(req.data));
    const stream = req.responseType === "stream";
    const timeout = req.timeout ?? 30_000;
    let res: AxiosResponse<Buffer | IncomingMessage>;
    try {
      res = await instance.request<Buffer | IncomingMessage>({
        method: req.method ?? "GET",
        url: pathOf(req),
        headers: body ? { ...req.headers, "Content-Type": "application/json" } : req.headers,
        data: body,
        responseType: stream ? "stream" : "arraybuffer",
        signal: req.signal,
        timeout,
      });
    } catch (err) {
      throw failureOf(err as Error & { code?: string }, req.signal, timeout);
    }
    const headers = res.headers as IncomingHttpHeaders;
    if (stream) return { status: res.status, headers, data: res.data };
    const bytes = res.data as Buffer;
    return { status: res.status, headers, data: req.responseType === "bytes" ? bytes : parseBody(bytes) };
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

/** axios's failure as ours: the caller's abort, the timeout (axios's ETIMEDOUT), or the socket's code. */
function failureOf(err: Error & { code?: string }, caller: AbortSignal | undefined, timeout: number): HttpFailure {
  if (caller?.aborted) return new HttpFailure("aborted", "ABORTED", { cause: err });
  if (err.code === "ETIMEDOUT") return new HttpFailure(`no answer within ${timeout} ms`, "ETIMEDOUT", { cause: err });
  return new HttpFailure(err.message, err.code ?? "EIO", { cause: err });
}

/** JSON when it parses (Nomad's answers), else the text (its errors are plain text). */
function parseBody(bytes: Buffer): unknown {
  const text = bytes.toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
