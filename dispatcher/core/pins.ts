import { createHash } from "node:crypto";

// Runner pinning: what Nomad holds for each runner/sidecar parent (the whole job, meta at every
// level included: Nomad builds NOMAD_META_* from task over group over job meta) is compared with
// what was pinned right after registration (`dispatcher jobs pin`). Whoever re-registers a parent
// with another command, user, driver, volume or meta would receive every token minted for it, so
// the dispatcher mints and dispatches nothing for a parent that differs; and each dispatched child
// (a copy of the parent made at dispatch) is compared with the pin before its token can be used.

/** The security-relevant part of a parent job as Nomad holds it (picked by the Nomad adapter). */
export type ParentSpec = Record<string, unknown>;

export interface PinFile {
  /** 2: the whole job (version 1 pinned chosen fields; re-pin) */
  version: 2;
  pinnedAt: string;
  jobs: Record<string, { digest: string; spec: ParentSpec }>;
}

/** Canonical JSON (sorted keys), so a digest does not depend on the order Nomad sends fields in. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

export function digestOf(spec: ParentSpec): string {
  return `sha256:${createHash("sha256").update(canonicalJson(spec)).digest("hex")}`;
}

export function buildPinFile(specs: Map<string, ParentSpec>, now: Date): PinFile {
  const jobs: PinFile["jobs"] = {};
  for (const [id, spec] of [...specs].sort(([a], [b]) => a.localeCompare(b))) jobs[id] = { digest: digestOf(spec), spec };
  return { version: 2, pinnedAt: now.toISOString(), jobs };
}

/**
 * Pure: why `job` must not be dispatched, or undefined when what Nomad holds (`live`) equals its
 * pin. The reason names the first fields that differ, e.g.
 * `TaskGroups[runner].Tasks[runner].Config.args: pinned ["/opt/dispatcher/runner.mjs"], now ["/tmp/x.js"]`.
 */
export function pinProblem(pins: PinFile | undefined, job: string, live: ParentSpec | undefined): string | undefined {
  if (!pins) return `no pin file: run \`dispatcher jobs pin --out FILE\` after registering the runner jobs and set DISPATCHER_JOB_PINS`;
  const pin = pins.jobs[job];
  if (!pin) return `job "${job}" is not pinned (pinned: ${Object.keys(pins.jobs).join(", ") || "none"}); re-run \`dispatcher jobs pin\``;
  if (!live) return `job "${job}" is not registered in Nomad`;
  if (digestOf(live) === pin.digest) return undefined;
  const diffs = diffSpecs(pin.spec, live);
  return `job "${job}" differs from its pin: ${diffs.slice(0, 3).join("; ")}${diffs.length > 3 ? ` (+${diffs.length - 3} more)` : ""}`;
}

/**
 * Pure: why a dispatched child must not keep its token, or undefined when it is its parent's pin
 * plus the meta the dispatch sent (all that dispatching adds; its id and name are the child's own).
 * A parent re-registered between the pin check and the dispatch shows here, naming the field.
 */
export function childProblem(pins: PinFile | undefined, job: string, sentMeta: Record<string, string>, child: { jobId: string; spec: ParentSpec }): string | undefined {
  const pin = pins?.jobs[job];
  if (!pin) return `child ${child.jobId}: job "${job}" is not pinned`;
  const expected = { ...pin.spec, Meta: { ...((pin.spec.Meta as Record<string, string> | undefined) ?? {}), ...sentMeta } };
  const actual = { ...child.spec, ID: pin.spec.ID, Name: pin.spec.Name };
  if (canonicalJson(expected) === canonicalJson(actual)) return undefined;
  const diffs = diffSpecs(expected, actual);
  return `child ${child.jobId} of job "${job}" differs from its pin: ${diffs.slice(0, 3).join("; ")}${diffs.length > 3 ? ` (+${diffs.length - 3} more)` : ""}`;
}

/** Paths where two specs differ, arrays of named objects indexed by their Name. */
export function diffSpecs(pinned: unknown, live: unknown, path = ""): string[] {
  if (canonicalJson(pinned) === canonicalJson(live)) return [];
  const bothObjects = isObject(pinned) && isObject(live);
  const bothArrays = Array.isArray(pinned) && Array.isArray(live);
  if (bothArrays && pinned.every(isNamed) && live.every(isNamed) && pinned.length > 0) {
    const names = [...new Set([...pinned, ...live].map((x) => (x as { Name: string }).Name))];
    return names.flatMap((n) => diffSpecs(pinned.find((x) => (x as { Name: string }).Name === n), live.find((x) => (x as { Name: string }).Name === n), `${path}[${n}]`));
  }
  if (bothObjects) {
    const keys = [...new Set([...Object.keys(pinned), ...Object.keys(live)])].sort();
    return keys.flatMap((k) => diffSpecs(pinned[k], live[k], path ? `${path}.${k}` : k));
  }
  return [`${path || "(job)"}: pinned ${short(pinned)}, now ${short(live)}`];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

function isNamed(v: unknown): boolean {
  return isObject(v) && typeof v.Name === "string";
}

function short(v: unknown): string {
  const text = v === undefined ? "absent" : JSON.stringify(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
