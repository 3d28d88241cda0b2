import * as z from "zod";
import { NomadApiError } from "../errors.js";
import type { LedgerEntry, LedgerFields, LedgerPort } from "../core/ports.js";
import type { NomadClient } from "./client.js";

// The ledger lives in Nomad Variables: one variable per action, written with check-and-set, so
// exactly one replica claims an action and every state change is fenced. It outlives job GC.

const variable = z.object({ Path: z.string(), ModifyIndex: z.number(), Items: z.record(z.string(), z.string()).nullish() });
const variableList = z.array(z.object({ Path: z.string(), ModifyTime: z.number().optional() })).nullish();

/** Variable paths allow [a-zA-Z0-9-_~/]; action ids may hold dots, which ids never hold as "~". */
function encode(id: string): string {
  return id.replaceAll(".", "~");
}

function decode(segment: string): string {
  return segment.replaceAll("~", ".");
}

function instancePath(prefix: string, instance: string): string {
  return `${prefix}/instances/${instance.replace(/[^a-zA-Z0-9_-]/g, "_")}`;
}

/** The prefix of issue runs' ledger, beside the actions' (core/issue-loop.ts): their keys never meet action ids. */
export function issuesLedgerPrefix(prefix: string): string {
  return `${prefix}/issues`;
}

export function createNomadLedger(nomad: NomadClient, prefix = "dispatcher"): LedgerPort {
  const actionsPrefix = `${prefix}/actions/`;
  const pathOf = (id: string) => `${actionsPrefix}${encode(id)}`;

  function toEntry(id: string, v: z.infer<typeof variable>): LedgerEntry {
    const items = v.Items ?? {};
    return {
      id,
      state: items.state as LedgerEntry["state"],
      owner: items.owner ?? "",
      attempt: Number(items.attempt ?? 1),
      actionSha: items.action_sha ?? "",
      commit: items.commit ?? "",
      jobId: items.job_id || undefined,
      accessor: items.accessor || undefined,
      dispatchedAt: items.dispatched_at || undefined,
      result: items.result || undefined,
      purgedAt: items.purged_at || undefined,
      updatedAt: items.updated_at ?? "",
      index: v.ModifyIndex,
    };
  }

  function toItems(f: LedgerFields): Record<string, string> {
    const items: Record<string, string | undefined> = {
      state: f.state,
      owner: f.owner,
      attempt: String(f.attempt),
      action_sha: f.actionSha,
      commit: f.commit,
      job_id: f.jobId,
      accessor: f.accessor,
      dispatched_at: f.dispatchedAt,
      result: f.result,
      purged_at: f.purgedAt,
      updated_at: f.updatedAt,
    };
    return Object.fromEntries(Object.entries(items).filter((e): e is [string, string] => e[1] !== undefined));
  }

  /** PUT with cas; a 409 means someone else wrote first. */
  async function put(path: string, items: Record<string, string>, cas: number, urgent = false): Promise<z.infer<typeof variable> | undefined> {
    try {
      const { body } = await nomad.request(
        `write variable ${path}`,
        { method: "PUT", url: `/v1/var/${path}`, params: { cas }, data: { Path: path, Items: items }, urgent },
        variable,
      );
      return body;
    } catch (err) {
      if (err instanceof NomadApiError && err.status === 409) return undefined;
      throw err;
    }
  }

  async function read(path: string): Promise<z.infer<typeof variable> | undefined> {
    try {
      return (await nomad.get(`/v1/var/${path}`, variable)).body;
    } catch (err) {
      if (err instanceof NomadApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  return {
    async list() {
      const { body } = await nomad.get("/v1/vars", variableList, { params: { prefix: actionsPrefix } });
      return new Set((body ?? []).map((v) => decode(v.Path.slice(actionsPrefix.length))));
    },
    async get(id) {
      const v = await read(pathOf(id));
      return v && toEntry(id, v);
    },
    async create(id, fields) {
      const v = await put(pathOf(id), toItems(fields), 0, true);
      return v && toEntry(id, v);
    },
    async update(entry, changes, opts) {
      const { id: _id, index, ...current } = entry;
      const v = await put(pathOf(entry.id), toItems({ ...current, ...changes }), index, opts?.urgent);
      return v && toEntry(entry.id, v);
    },
    async heartbeat(instance, at, info) {
      const path = instancePath(prefix, instance);
      const items = { seen_at: at.toISOString(), instance, ...(info ? { in_flight: String(info.inFlight), draining: String(info.draining), version: info.version } : {}) };
      await nomad.request(`write variable ${path}`, { method: "PUT", url: `/v1/var/${path}`, data: { Path: path, Items: items } }, variable);
    },
    async instances() {
      const { body } = await nomad.get("/v1/vars", variableList, { params: { prefix: `${prefix}/instances/` } });
      const beats = await Promise.all((body ?? []).map((v) => read(v.Path)));
      return beats.flatMap((v) => {
        const items = v?.Items ?? {};
        if (!v || !items.seen_at) return [];
        return [
          {
            instance: items.instance ?? v.Path.slice(prefix.length + "/instances/".length),
            seenAt: new Date(items.seen_at),
            index: v.ModifyIndex,
            ...(items.in_flight === undefined ? {} : { inFlight: Number(items.in_flight) }),
            ...(items.draining === undefined ? {} : { draining: items.draining === "true" }),
            ...(items.version === undefined ? {} : { version: items.version }),
          },
        ];
      });
    },
    async written() {
      const { body } = await nomad.get("/v1/vars", variableList, { params: { prefix: actionsPrefix } });
      // ModifyTime is in nanoseconds
      return (body ?? []).map((v) => ({ id: decode(v.Path.slice(actionsPrefix.length)), writtenAt: new Date((v.ModifyTime ?? 0) / 1e6) }));
    },
    async remove(entry) {
      const path = pathOf(entry.id);
      try {
        await nomad.request(`delete variable ${path}`, { method: "DELETE", url: `/v1/var/${path}`, params: { cas: entry.index } }, z.unknown());
        return true;
      } catch (err) {
        if (err instanceof NomadApiError && err.status === 409) return false;
        throw err;
      }
    },
    async forgetInstance(beat) {
      const path = instancePath(prefix, beat.instance);
      try {
        await nomad.request(`delete variable ${path}`, { method: "DELETE", url: `/v1/var/${path}`, params: { cas: beat.index ?? 0 } }, z.unknown());
        return true;
      } catch (err) {
        if (err instanceof NomadApiError && err.status === 409) return false;
        throw err;
      }
    },
    async lastSeen(instance) {
      const v = await read(instancePath(prefix, instance));
      const at = v?.Items?.seen_at;
      return at ? new Date(at) : undefined;
    },
  };
}
