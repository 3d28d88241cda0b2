import { readFileSync, writeFileSync } from "node:fs";
import { gunzipSync, gzipSync } from "node:zlib";
import * as z from "zod";
import type { PinFile } from "./core/pins.js";
import { ConfigInvalid } from "./errors.js";

// The pin file (DISPATCHER_JOB_PINS): written by `dispatcher jobs pin` right after the runner
// parents are registered, read by the dispatcher at start.

// On disk the specs (whole jobs, for naming the fields that differ) travel gzipped in one base64
// string: 32 parents' jobs are ~70 KB of JSON, ~6 KB so.
const pinFileSchema = z.strictObject({
  version: z.literal(2, { error: "pinned by an older dispatcher (version 1 pinned fewer fields): re-run `dispatcher jobs pin`" }),
  pinnedAt: z.string(),
  jobs: z.record(z.string(), z.strictObject({ digest: z.string().startsWith("sha256:") })),
  /** base64 of gzipped JSON: job id → spec */
  specs: z.string(),
});
const specsSchema = z.record(z.string(), z.record(z.string(), z.unknown()));

/** undefined for no path: then every dispatch waits and `doctor` says how to pin. */
export function readPinFile(path: string): PinFile | undefined {
  if (!path) return undefined;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigInvalid(`${path} (DISPATCHER_JOB_PINS): cannot read the pin file (${(err as NodeJS.ErrnoException).code}); write it with \`dispatcher jobs pin --out ${path}\``, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigInvalid(`${path} (DISPATCHER_JOB_PINS): not JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = pinFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigInvalid(`${path} (DISPATCHER_JOB_PINS): ${issue.path.join(".") || "(file)"}: ${issue.message}; expected the output of \`dispatcher jobs pin\``);
  }
  let specs: z.infer<typeof specsSchema>;
  try {
    specs = specsSchema.parse(JSON.parse(gunzipSync(Buffer.from(parsed.data.specs, "base64")).toString("utf8")));
  } catch (err) {
    throw new ConfigInvalid(`${path} (DISPATCHER_JOB_PINS): specs: not gzipped JSON of job specs (${(err as Error).message}); expected the output of \`dispatcher jobs pin\``, { cause: err });
  }
  const jobs: PinFile["jobs"] = {};
  for (const [id, { digest }] of Object.entries(parsed.data.jobs)) {
    const spec = specs[id];
    if (!spec) throw new ConfigInvalid(`${path} (DISPATCHER_JOB_PINS): specs: no spec for job "${id}"; expected the output of \`dispatcher jobs pin\``);
    jobs[id] = { digest, spec };
  }
  return { version: 2, pinnedAt: parsed.data.pinnedAt, jobs };
}

export function writePinFile(path: string, pins: PinFile): void {
  // compact: it also travels as a Nomad variable item (64 KiB at most) to the dispatcher job
  const specs = gzipSync(JSON.stringify(Object.fromEntries(Object.entries(pins.jobs).map(([id, j]) => [id, j.spec])))).toString("base64");
  const jobs = Object.fromEntries(Object.entries(pins.jobs).map(([id, j]) => [id, { digest: j.digest }]));
  writeFileSync(path, `${JSON.stringify({ version: pins.version, pinnedAt: pins.pinnedAt, jobs, specs })}\n`, { mode: 0o644 });
}
