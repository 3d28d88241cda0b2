import * as z from "zod";
import { NomadApiError } from "../errors.js";
import type { Place, PlaceFields, PlacesPort } from "../core/ports.js";
import type { NomadClient } from "./client.js";
import * as S from "./schemas.js";

// The places of the limits replicas share (core/limits.ts) as Nomad Variables beside the ledger:
// <prefix>/places/lock/<key> and <prefix>/places/slot/<n>, each written, taken over and deleted
// with check-and-set, so one writer wins every race.

const variable = z.object({ Path: z.string(), ModifyIndex: z.number(), Items: z.record(z.string(), z.string()).nullish() });
const variableList = z.array(z.object({ Path: z.string() })).nullish();

/** Variable paths allow [a-zA-Z0-9-_~/]: a key's ":" becomes "/", a formula's "." "~" (names never hold "~" or "/"). */
function encode(name: string): string {
  return name.replaceAll(":", "/").replaceAll(".", "~");
}

function decode(path: string): string {
  const [kind, ...rest] = path.split("/");
  return kind === "lock" ? `lock/${rest.slice(0, 1).join("")}:${rest.slice(1).join("/")}`.replaceAll("~", ".") : `${kind}/${rest.join("/")}`;
}

export function createNomadPlaces(nomad: NomadClient, prefix = "dispatcher"): PlacesPort {
  const root = `${prefix}/places/`;
  const pathOf = (name: string) => `${root}${encode(name)}`;

  function toPlace(name: string, v: z.infer<typeof variable>): Place {
    const items = v.Items ?? {};
    return { name, owner: items.owner ?? "", session: items.session ?? "", action: items.action ?? "", since: items.since ?? "", until: items.until ?? "", ...(items.next ? { next: items.next } : {}), index: v.ModifyIndex };
  }

  async function put(name: string, f: PlaceFields, cas: number): Promise<Place | undefined> {
    const path = pathOf(name);
    try {
      const { body } = await nomad.request(
        `write variable ${path}`,
        { method: "PUT", url: `/v1/var/${path}`, params: { cas }, data: { Path: path, Items: { owner: f.owner, session: f.session, action: f.action, since: f.since, until: f.until, ...(f.next ? { next: f.next } : {}) } }, urgent: true },
        variable,
      );
      return toPlace(name, body);
    } catch (err) {
      if (err instanceof NomadApiError && err.status === 409) return undefined;
      throw err;
    }
  }

  return {
    async get(name) {
      try {
        return toPlace(name, (await nomad.get(`/v1/var/${pathOf(name)}`, variable)).body);
      } catch (err) {
        if (err instanceof NomadApiError && err.status === 404) return undefined;
        throw err;
      }
    },
    create: (name, fields) => put(name, fields, 0),
    replace: (place, fields) => put(place.name, fields, place.index),
    async remove(place) {
      const path = pathOf(place.name);
      try {
        await nomad.request(`delete variable ${path}`, { method: "DELETE", url: `/v1/var/${path}`, params: { cas: place.index } }, S.anyBody);
        return true;
      } catch (err) {
        if (err instanceof NomadApiError && err.status === 409) return false;
        throw err;
      }
    },
    async list(kind) {
      const { body } = await nomad.get("/v1/vars", variableList, { params: { prefix: `${root}${kind}/` } });
      return (body ?? []).map((v) => decode(v.Path.slice(root.length)));
    },
  };
}
