import { readFileSync, writeFileSync } from "node:fs";
import * as z from "zod";
import type { PinFile } from "./core/pins.js";
import { ConfigInvalid } from "./errors.js";

// The pin file (DISPATCHER_JOB_PINS): written by `dispatcher jobs pin` right after the runner
// parents are registered, read by the dispatcher at start.

const pinFileSchema = z.strictObject({
  version: z.literal(1),
  pinnedAt: z.string(),
  jobs: z.record(z.string(), z.strictObject({ digest: z.string().startsWith("sha256:"), spec: z.record(z.string(), z.unknown()) })),
});

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
  return parsed.data as PinFile;
}

export function writePinFile(path: string, pins: PinFile): void {
  // compact: it also travels as a Nomad variable item (64 KiB at most) to the dispatcher job
  writeFileSync(path, `${JSON.stringify(pins)}\n`, { mode: 0o644 });
}
