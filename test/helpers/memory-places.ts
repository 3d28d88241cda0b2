// The shared limits' places in memory, with check-and-set on an index as Nomad Variables do it:
// for unit tests of core/limits.ts and the loop. Several instances may share one.
import type { Place, PlacesPort } from "../../dispatcher/core/ports.js";

export function createMemoryPlaces(): PlacesPort & { places: Map<string, Place> } {
  const places = new Map<string, Place>();
  let index = 1;
  return {
    places,
    get: async (name) => places.get(name),
    async create(name, fields) {
      if (places.has(name)) return undefined;
      const p = { name, ...fields, index: index++ };
      places.set(name, p);
      return p;
    },
    async replace(place, fields) {
      const cur = places.get(place.name);
      if (!cur || cur.index !== place.index) return undefined;
      const next = { name: place.name, ...fields, index: index++ };
      places.set(place.name, next);
      return next;
    },
    async remove(place) {
      const cur = places.get(place.name);
      if (!cur || cur.index !== place.index) return false;
      places.delete(place.name);
      return true;
    },
    list: async (kind) => [...places.keys()].filter((n) => n.startsWith(`${kind}/`)),
  };
}
