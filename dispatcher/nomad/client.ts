import type { Readable } from "node:stream";
import type { z } from "zod";
import { NomadApiError, PermanentFailure } from "../errors.js";
import type { AllocationState, AllocClientStatus, ChildJob, JobPlacement, NomadPort } from "../core/ports.js";
import { createHttp, type HttpRequest } from "../http.js";
import * as S from "./schemas.js";

export interface NomadPortOptions {
  addr: string;
  token?: string;
  namespace?: string;
  region?: string;
}

export interface NomadClient extends NomadPort {
  /** the one request path every call takes: errors become NomadApiError, bodies are zod-checked */
  request<T extends z.ZodType>(what: string, config: HttpRequest, schema: T): Promise<{ body: z.infer<T>; index: number }>;
  get<T extends z.ZodType>(path: string, schema: T, config?: Omit<HttpRequest, "url">): Promise<{ body: z.infer<T>; index: number }>;
  /** the Nomad version of the first ready node (needs only node:read) */
  agentVersion(): Promise<string>;
  /** the cluster's leader address; answers without a token */
  leader(): Promise<string>;
  /** dispatched children of a parameterized job, with their meta */
  listChildren(parent: string): Promise<ChildJob[]>;
  /** the job's allocations now and the index of that answer: one request, no job or evaluation lookups */
  allocationsOf(jobId: string): Promise<{ allocations: AllocationState[]; index: number }>;
  /** the task's log from byte `offset` to its current end */
  readLogBytes(allocId: string, task: string, type: LogType, offset: number): Promise<Buffer>;
  /** the task's log from byte `offset`, following new output until `signal` aborts or Nomad closes */
  followLog(allocId: string, task: string, type: LogType, offset: number, signal: AbortSignal): AsyncIterable<Buffer>;
  /** allocation changes from the event stream, from raft index `index` on; Nomad's heartbeats (as it opens, then every 30 s) too */
  allocationEvents(index: number, signal: AbortSignal): AsyncIterable<AllocationEventBatch>;
  /** closes the idle keep-alive connections (Nomad refuses a client past 100 concurrent ones) */
  close(): void;
}

export type LogType = "stdout" | "stderr";

/** One line of the event stream: changed allocations at a raft index, or a heartbeat (the stream is alive). */
export type AllocationEventBatch = { heartbeat: true } | { heartbeat?: false; index: number; allocations: (AllocationState & { jobId: string })[] };

/** Connections one dispatcher opens to Nomad at most (streams included). */
const MAX_SOCKETS = 32;

/**
 * Nomad 1.6 answers a dispatch that does not fit its parent with HTTP 500 and a text, no code
 * (nomad/job_endpoint.go: validateDispatchRequest and Dispatch). These texts are permanent:
 * retrying the same dispatch cannot succeed. Any other 500 is an outage and is waited out.
 */
const DISPATCH_REFUSED = [
  /did not provide required meta keys/,
  /included unpermitted metadata keys/,
  /Duplicate key .* in passed metadata/,
  /Payload is not provided but required/,
  /Payload provided but forbidden/,
  /Payload exceeds maximum size/,
  /is not a parameterized job/,
  /Specified job .* is stopped/,
  /parameterized job not found/,
];

/**
 * A parent's pinned spec: Nomad's whole job as it holds it (every group and task, at every level:
 * meta, config, env, templates, artifacts, volumes and mounts, user, driver, resources, restart and
 * reschedule, namespace, node pool, …) without the fields Nomad itself changes, null and empty
 * values left out (they are defaults; the pin file stays small). A child (dispatched) is read the
 * same way, without what dispatching sets (core/pins.ts childProblem compares it).
 */
function pinnedSpecOf(job: z.infer<typeof S.jobDetail>): Record<string, unknown> {
  const whole = Object.fromEntries(Object.entries(job).filter(([k]) => !NOMAD_MANAGED.has(k)));
  return (prune(whole) ?? {}) as Record<string, unknown>;
}

/** Job fields Nomad sets itself on every registration, status change or dispatch. */
const NOMAD_MANAGED = new Set(["NomadTokenID", "VaultToken", "ConsulToken", "Status", "StatusDescription", "Stable", "Version", "SubmitTime", "CreateIndex", "ModifyIndex", "JobModifyIndex", "ParentID", "Dispatched", "DispatchIdempotencyToken", "Payload"]);

function prune(v: unknown): unknown {
  if (v === null || v === undefined || v === "") return undefined;
  if (Array.isArray(v)) {
    const items = v.map((x) => prune(x) ?? null);
    return items.length === 0 ? undefined : items;
  }
  if (typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>).flatMap(([k, x]) => {
      const p = prune(x);
      return p === undefined ? [] : [[k, p] as const];
    });
    return entries.length === 0 ? undefined : Object.fromEntries(entries);
  }
  return v;
}

/** The only module that talks HTTP to Nomad. Responses are zod-checked. */
export function createNomadPort(opts: NomadPortOptions): NomadClient {
  const http = createHttp({
    baseUrl: opts.addr,
    // a bounded pool: Nomad refuses a client past 100 concurrent connections (429), and a burst
    // of dispatches and listings must queue here instead
    maxSockets: MAX_SOCKETS,
    // uncompressed: inside a datacenter, gunzipping allocation lists and events cost more than
    // the bytes saved (make bench: a quarter of the dispatcher's CPU, and the agent's gzip too)
    headers: { "Accept-Encoding": "identity", ...(opts.token ? { "X-Nomad-Token": opts.token } : {}) },
    params: { namespace: opts.namespace, region: opts.region },
  });

  async function call<T extends z.ZodType>(what: string, config: HttpRequest, schema: T): Promise<{ body: z.infer<T>; index: number }> {
    let res;
    try {
      res = await http.request(config);
    } catch (err) {
      const code = (err as { code?: string }).code ?? String(err);
      throw new NomadApiError(`nomad: ${what} failed: ${code} (${opts.addr} unreachable?)`, undefined, { cause: err });
    }
    if (res.status < 200 || res.status >= 300) {
      const text = typeof res.data === "string" || Buffer.isBuffer(res.data) ? res.data.toString().trim() : JSON.stringify(res.data);
      throw new NomadApiError(`nomad: ${what} failed: HTTP ${res.status}: ${text.slice(0, 300)}`, res.status);
    }
    const parsed = schema.safeParse(res.data);
    if (!parsed.success) {
      throw new NomadApiError(`nomad: ${what}: unexpected response shape: ${parsed.error.message.slice(0, 300)}`, res.status);
    }
    return { body: parsed.data, index: Number(res.headers["x-nomad-index"] ?? 0) };
  }

  const get: NomadClient["get"] = (path, schema, config = {}) => call(`GET ${path}`, { ...config, url: path, method: "GET" }, schema);

  const logUrl = (allocId: string) => `/v1/client/fs/logs/${encodeURIComponent(allocId)}`;

  async function readLogBytes(allocId: string, task: string, type: LogType, offset: number): Promise<Buffer> {
    const res = await call(
      `read ${type} of alloc ${allocId} task ${task}`,
      {
        method: "GET",
        url: logUrl(allocId),
        params: { task, type, plain: true, origin: "start", offset },
        responseType: "bytes",
      },
      S.logBytes,
    );
    return Buffer.from(res.body);
  }

  /** by the job's summary: a few hundred bytes, where the job itself is its whole spec */
  async function jobExists(jobId: string): Promise<boolean> {
    try {
      await get(`/v1/job/${encodeURIComponent(jobId)}/summary`, S.jobSummary);
      return true;
    } catch (err) {
      if (err instanceof NomadApiError && err.status === 404) return false;
      throw err;
    }
  }

  async function readJob(jobId: string, urgent = false): Promise<z.infer<typeof S.jobDetail> | undefined> {
    try {
      return (await get(`/v1/job/${encodeURIComponent(jobId)}`, S.jobDetail, { urgent })).body;
    } catch (err) {
      if (err instanceof NomadApiError && err.status === 404) return undefined;
      throw err;
    }
  }



  /** A streaming GET: chunks until the server closes or `signal` aborts (the normal way out). */
  async function* stream(what: string, url: string, params: HttpRequest["params"], signal: AbortSignal): AsyncGenerator<Buffer> {
    let res;
    try {
      res = await http.request({ method: "GET", url, params, responseType: "stream", timeout: 0, signal });
    } catch (err) {
      if (signal.aborted) return;
      const code = (err as { code?: string }).code ?? String(err);
      throw new NomadApiError(`nomad: ${what} failed: ${code} (${opts.addr} unreachable?)`, undefined, { cause: err });
    }
    if (res.status < 200 || res.status >= 300) {
      const text = (await readAll(res.data).catch(() => Buffer.alloc(0))).toString("utf8").trim();
      throw new NomadApiError(`nomad: ${what} failed: HTTP ${res.status}: ${text.slice(0, 300)}`, res.status);
    }
    try {
      for await (const chunk of res.data) yield chunk as Buffer;
    } catch (err) {
      if (!signal.aborted) throw new NomadApiError(`nomad: ${what} broke off: ${(err as Error).message}`, undefined, { cause: err });
    }
  }

  return {
    request: call,
    get,
    close: () => http.closeIdle(),

    async dispatch(req) {
      try {
        const { body } = await call(
          `dispatch ${req.job}`,
          {
            method: "POST",
            url: `/v1/job/${encodeURIComponent(req.job)}/dispatch`,
            urgent: true,
            data: {
              Meta: req.meta,
              Payload: req.payload === undefined ? undefined : Buffer.from(req.payload).toString("base64"),
              IdempotencyToken: req.idempotencyToken,
            },
          },
          S.dispatchResponse,
        );
        return { jobId: body.DispatchedJobID, evalId: body.EvalID };
      } catch (err) {
        // Nomad answers a dispatch that does not fit the parameterized job with a 500
        if (err instanceof NomadApiError && err.status === 500 && DISPATCH_REFUSED.some((re) => re.test(err.message))) {
          throw new PermanentFailure(`${err.message} (does the registered ${req.job} job match jobspecs/?)`, "rejected", { cause: err });
        }
        throw err;
      }
    },

    async watchJob(jobId, index, waitMs, signal) {
      const job = encodeURIComponent(jobId);
      const wait = { index, wait: `${Math.max(1, Math.round(waitMs / 1000))}s` };
      const { body, index: next } = await get(`/v1/job/${job}/allocations`, S.allocList, {
        params: wait,
        timeout: waitMs + 30_000,
        signal,
      });
      const allocations = body.map(toAllocationState);
      if (allocations.length > 0) return { allocations, index: next } satisfies JobPlacement;
      if (!(await jobExists(jobId))) return { allocations, gone: true, index: next };
      const { body: evals } = await get(`/v1/job/${job}/evaluations`, S.evalList);
      return { allocations, blockedReason: explainBlocked(evals), evaluations: evals.length, index: next } satisfies JobPlacement;
    },

    async readLog(allocId, task, type, maxBytes) {
      if (maxBytes === undefined) return (await readLogBytes(allocId, task, type, 0)).toString("utf8");
      // from the end: Nomad starts maxBytes back (across rotated files), so a huge log is never sent whole
      const params = { task, type, plain: true, origin: "end", offset: maxBytes };
      const stop = new AbortController();
      let kept: Buffer = Buffer.alloc(0);
      for await (const chunk of stream(`read ${type} of alloc ${allocId} task ${task}`, logUrl(allocId), params, stop.signal)) {
        kept = Buffer.concat([kept, chunk]);
        // a log still growing sends more than asked: keep the tail, never the whole
        if (kept.length > maxBytes) kept = kept.subarray(kept.length - maxBytes);
      }
      return kept.toString("utf8");
    },

    readLogBytes,

    followLog(allocId, task, type, offset, signal) {
      return stream(`follow ${type} of alloc ${allocId} task ${task}`, logUrl(allocId), { task, type, plain: true, follow: true, origin: "start", offset }, signal);
    },

    async *allocationEvents(index, signal) {
      for await (const line of linesOf(stream("event stream (Allocation)", "/v1/event/stream", { topic: "Allocation", index }, signal))) {
        if (line === "{}") {
          yield { heartbeat: true };
          continue;
        }
        const batch = S.eventBatch.safeParse(JSON.parse(line));
        if (!batch.success) throw new NomadApiError(`nomad: event stream: unexpected event shape: ${batch.error.message.slice(0, 300)}`, 200);
        const allocations = batch.data.Events.flatMap((e) => (e.Payload.Allocation ? [{ jobId: e.Payload.Allocation.JobID, ...toAllocationState(e.Payload.Allocation) }] : []));
        yield { index: batch.data.Index, allocations };
      }
    },

    async listChildren(parent) {
      const { body } = await get("/v1/jobs", S.jobStubList, { params: { prefix: `${parent}/dispatch-`, meta: true } });
      return body
        .filter((j) => j.ParentID === parent)
        // SubmitTime is in nanoseconds
        .map((j) => ({ jobId: j.ID, parent, meta: j.Meta ?? {}, submittedAt: new Date(Math.floor(j.SubmitTime / 1e6)) }));
    },

    async allocationsOf(jobId) {
      const { body, index } = await get(`/v1/job/${encodeURIComponent(jobId)}/allocations`, S.allocList);
      return { allocations: body.map(toAllocationState), index };
    },

    async stopJob(jobId) {
      await call(`stop ${jobId}`, { method: "DELETE", url: `/v1/job/${encodeURIComponent(jobId)}` }, S.anyBody);
    },

    async evaluateJob(jobId) {
      await call(`evaluate ${jobId}`, { method: "PUT", url: `/v1/job/${encodeURIComponent(jobId)}/evaluate`, data: { JobID: jobId } }, S.anyBody);
    },

    async purgeJob(jobId) {
      await call(`purge ${jobId}`, { method: "DELETE", url: `/v1/job/${encodeURIComponent(jobId)}`, params: { purge: true } }, S.anyBody);
    },

    /** whether Nomad answers at all (no ACL needed): readiness */
    async leader() {
      const { body } = await get("/v1/status/leader", S.anyBody);
      return String(body);
    },

    async hostVolumes(pool = "default") {
      const { body: nodes } = await get("/v1/nodes", S.nodeList);
      const volumes = new Map<string, string>();
      // a job is placed only on nodes of its pool: volumes elsewhere do not count
      for (const n of nodes.filter((x) => x.Status === "ready" && (x.NodePool ?? "default") === pool).sort((a, b) => a.ID.localeCompare(b.ID))) {
        const { body } = await get(`/v1/node/${n.ID}`, S.nodeDetail);
        for (const v of Object.values(body.HostVolumes ?? {})) if (!volumes.has(v.Name)) volumes.set(v.Name, v.Path);
      }
      return volumes;
    },

    async agentVersion() {
      const { body: nodes } = await get("/v1/nodes", S.nodeList);
      const node = nodes.find((n) => n.Status === "ready") ?? nodes[0];
      if (!node) throw new NomadApiError(`nomad: ${opts.addr} has no client node`, 200);
      const { body } = await get(`/v1/node/${node.ID}`, S.nodeAttributes);
      return body.Attributes?.["nomad.version"] ?? "unknown";
    },

    async parentSpec(jobId) {
      // read right before a child starts
      const job = await readJob(jobId, true);
      return job && pinnedSpecOf(job);
    },

    async childJob(jobId) {
      const job = await readJob(jobId);
      return job && { jobId: job.ID, parent: job.ParentID ?? "", namespace: job.Namespace, meta: job.Meta ?? {}, spec: pinnedSpecOf(job), ...(typeof job.Payload === "string" && job.Payload ? { payload: Buffer.from(job.Payload, "base64").toString("utf8") } : {}) };
    },

  };
}

/**
 * Non-empty lines, trimmed. An event batch can be megabytes long and arrive in many chunks: only
 * each new chunk is searched for the line's end, the line's text is decoded once.
 */
async function* linesOf(chunks: AsyncIterable<Buffer>): AsyncGenerator<string> {
  let parts: Buffer[] = [];
  for await (const chunk of chunks) {
    let from = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; from = nl + 1, nl = chunk.indexOf(10, from)) {
      parts.push(chunk.subarray(from, nl));
      const line = (parts.length === 1 ? parts[0]! : Buffer.concat(parts)).toString("utf8").trim();
      parts = [];
      if (line) yield line;
    }
    if (from < chunk.length) parts.push(chunk.subarray(from));
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function toAllocationState(a: z.infer<typeof S.allocStub>): AllocationState {
  const states = Object.values(a.TaskStates ?? {});
  const events = states.flatMap((s) => s.Events ?? []);
  const terminated = events.filter((e) => e.Type === "Terminated").at(-1);
  const exitText = terminated?.Details?.exit_code;
  const exitCode = terminated ? (terminated.ExitCode ?? (exitText === undefined ? undefined : Number(exitText))) : undefined;
  const failure = events.filter((e) => e.Type === "Driver Failure" || e.Type === "Setup Failure" || e.Type === "Failed Validation" || e.Type === "Killed").at(-1);
  return {
    id: a.ID,
    node: a.NodeName || a.NodeID,
    clientStatus: normalizeStatus(a.ClientStatus),
    exitCode,
    failureMessage: failure?.DisplayMessage,
    startedAt: states[0]?.StartedAt ?? undefined,
    finishedAt: states[0]?.FinishedAt ?? undefined,
    createIndex: a.CreateIndex,
  };
}

function normalizeStatus(s: string): AllocClientStatus {
  return (["pending", "running", "complete", "failed", "lost"] as const).find((x) => x === s) ?? "unknown";
}

/** Human reason from the scheduler's failed placement metrics, e.g. "missing host volume sops". */
function explainBlocked(evals: z.infer<typeof S.evalList>): string | undefined {
  for (const ev of evals) {
    for (const [group, m] of Object.entries(ev.FailedTGAllocs ?? {})) {
      const reasons = { ...(m.ConstraintFiltered ?? {}), ...(m.ClassFiltered ?? {}), ...(m.DimensionExhausted ?? {}) };
      const why = Object.keys(reasons).join(", ") || "no node fits";
      return `group ${group} could not be placed: ${why} (${m.NodesEvaluated ?? 0} nodes evaluated)`;
    }
  }
  return undefined;
}
