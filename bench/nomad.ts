// The bench's own minimal Nomad client: the "raw limit" contender and the bench's bookkeeping use
// it; the dispatcher contender uses the project's port, never this. Both speak HTTP through the
// same transport, so neither pays for the other's HTTP stack.
import { createHttp } from "../http.js";

export interface AllocCounts {
  pending: number;
  running: number;
  terminal: number;
}

interface AllocStub {
  ClientStatus: string;
}

const TERMINAL = new Set(["complete", "failed", "lost"]);

/**
 * Connections the bench's client opens at most: the raw contender holds one blocking query per
 * child in flight (64 in the mock pair), and Nomad refuses a client past 100 (HTTP 429).
 */
const MAX_SOCKETS = 90;

export function createBenchNomad(addr: string, token: string, namespace: string) {
  // the dispatcher's own transport (keep-alive, a bounded pool, no compression asked): fetch asks
  // for gzip, and Nomad then compressed every response, 27 % of its CPU during mock-raw
  const http = createHttp({ baseUrl: addr, headers: { "X-Nomad-Token": token }, params: { namespace }, maxSockets: MAX_SOCKETS });

  async function call<T>(method: "GET" | "PUT" | "POST" | "DELETE", path: string, body?: unknown): Promise<{ body: T; index: number }> {
    const [url, query] = path.split("?") as [string, string | undefined];
    const params = Object.fromEntries(new URLSearchParams(query ?? ""));
    const res = await http.request({ method, url, params, ...(body === undefined ? {} : { data: body }) });
    if (res.status < 200 || res.status >= 300) {
      const text = typeof res.data === "string" ? res.data : JSON.stringify(res.data);
      throw new Error(`nomad ${method} ${path}: HTTP ${res.status}: ${text.slice(0, 200)}`);
    }
    return { body: res.data as T, index: Number(res.headers["x-nomad-index"] ?? 0) };
  }

  return {
    /** the bench's idle connections count against Nomad's 100 per address: given back before each batch */
    closeIdle: () => http.closeIdle(),

    async dispatch(job: string, meta: Record<string, string>): Promise<string> {
      const { body } = await call<{ DispatchedJobID: string }>("POST", `/v1/job/${encodeURIComponent(job)}/dispatch`, { Meta: meta });
      return body.DispatchedJobID;
    },

    /** Blocking queries on the child's allocations until one is terminal; its client status. */
    async waitTerminal(jobId: string): Promise<string> {
      let index = 0;
      for (;;) {
        const { body, index: next } = await call<AllocStub[]>("GET", `/v1/job/${encodeURIComponent(jobId)}/allocations?index=${index}&wait=30s`);
        const done = body.find((a) => TERMINAL.has(a.ClientStatus));
        if (done) return done.ClientStatus;
        index = next;
      }
    },

    /** Allocations of `job`'s dispatched children by client status. */
    async countAllocs(job: string): Promise<AllocCounts> {
      const { body } = await call<{ JobID: string; ClientStatus: string }[]>("GET", `/v1/allocations?prefix=`);
      const mine = body.filter((a) => a.JobID.startsWith(`${job}/dispatch-`));
      const count = (s: string) => mine.filter((a) => a.ClientStatus === s).length;
      return { pending: count("pending"), running: count("running"), terminal: mine.length - count("pending") - count("running") };
    },

    async listChildren(job: string): Promise<string[]> {
      const { body } = await call<{ ID: string }[]>("GET", `/v1/jobs?prefix=${encodeURIComponent(`${job}/dispatch-`)}`);
      return body.map((j) => j.ID);
    },

    async purge(jobId: string): Promise<void> {
      await call("DELETE", `/v1/job/${encodeURIComponent(jobId)}?purge=true`);
    },

    /** Nomad's garbage collection now, whatever the thresholds (a management token's call) */
    async collectGarbage(): Promise<void> {
      await call("PUT", "/v1/system/gc");
    },

    /** IDs of dispatched children left in the namespace, of every parent */
    async listAllChildren(): Promise<string[]> {
      const { body } = await call<{ ID: string }[]>("GET", "/v1/jobs");
      return body.map((j) => j.ID).filter((id) => id.includes("/dispatch-"));
    },

    /** registers a job as given (a management token's call) */
    async register(job: Record<string, unknown>): Promise<void> {
      await call("PUT", "/v1/jobs", { Job: job });
    },

    async agentVersion(): Promise<string> {
      const { body } = await call<{ config: { Version: { Version: string } } }>("GET", "/v1/agent/self");
      return body.config.Version.Version;
    },
  };
}

export type BenchNomad = ReturnType<typeof createBenchNomad>;
