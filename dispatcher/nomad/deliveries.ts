import * as z from "zod";
import { NomadApiError } from "../errors.js";
import type { DeliveriesPort } from "../core/ports.js";
import type { NomadClient } from "./client.js";
import * as S from "./schemas.js";

// The webhook's replay guard shared by replicas: <prefix>/deliveries/<key> (a delivery body's
// SHA-256), created with check-and-set, so of two replicas handed the same delivery one accepts
// it. A record older than the guard's window is taken over (check-and-set) and swept.

const listed = z.array(z.object({ Path: z.string(), ModifyIndex: z.number(), ModifyTime: z.number() })).nullish();

export function createNomadDeliveries(nomad: NomadClient, prefix = "dispatcher"): DeliveriesPort {
  const root = `${prefix}/deliveries/`;

  /** PUT with cas: false when another writer got there first (409) */
  async function put(path: string, at: Date, cas: number): Promise<boolean> {
    try {
      await nomad.request(`write variable ${path}`, { method: "PUT", url: `/v1/var/${path}`, params: { cas }, data: { Path: path, Items: { seen_at: at.toISOString() } } }, S.variable);
      return true;
    } catch (err) {
      if (err instanceof NomadApiError && err.status === 409) return false;
      throw err;
    }
  }

  return {
    async first(key, at, expiredBefore) {
      if (!/^[0-9a-f]{64}$/.test(key)) throw new TypeError(`a delivery key is a SHA-256 in hex, e.g. ${"0".repeat(64)}; got ${JSON.stringify(key)}`);
      const path = `${root}${key}`;
      // a lost check-and-set means another writer moved first: it took the record over (then the
      // next read finds it fresh) or a sweep removed it (then one create wins); look again
      for (let look = 0; look < 3; look++) {
        if (await put(path, at, 0)) return true;
        let held: z.infer<typeof S.variable>;
        try {
          held = (await nomad.get(`/v1/var/${path}`, S.variable)).body;
        } catch (err) {
          if (err instanceof NomadApiError && err.status === 404) continue;
          throw err;
        }
        const seen = Date.parse(held.Items?.seen_at ?? "");
        if (Number.isFinite(seen) && seen >= expiredBefore.getTime()) return false;
        if (await put(path, at, held.ModifyIndex)) return true;
      }
      // three writers in a row moved first: one of them holds it
      return false;
    },
    async sweep(before) {
      const { body } = await nomad.get("/v1/vars", listed, { params: { prefix: root } });
      let removed = 0;
      for (const v of body ?? []) {
        // ModifyTime is in nanoseconds
        if (v.ModifyTime / 1e6 >= before.getTime()) continue;
        try {
          await nomad.request(`delete variable ${v.Path}`, { method: "DELETE", url: `/v1/var/${v.Path}`, params: { cas: v.ModifyIndex } }, S.anyBody);
          removed++;
        } catch (err) {
          if (!(err instanceof NomadApiError && err.status === 409)) throw err;
        }
      }
      return removed;
    },
  };
}
