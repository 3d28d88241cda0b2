import type { ParseArgsConfig } from "node:util";
import { loadConfig, loadNomadConfig, type Config } from "../config.js";

export type Values = Record<string, string | boolean | undefined>;

export interface Command {
  summary: string;
  help: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  run(values: Values, positionals: string[]): Promise<number>;
}

export const configOptions = {
  config: { type: "string", short: "c" },
  "ops-remote": { type: "string" },
  "poll-seconds": { type: "string" },
  "max-in-flight": { type: "string" },
  secrets: { type: "string" },
} as const;

export const CONFIG_HELP = `Config (defaults → file → env → flags):
  -c, --config FILE       TOML config file (or DISPATCHER_CONFIG)
  --ops-remote URL        ops repo remote (DISPATCHER_OPS_REMOTE)
  --secrets A,B           secrets actions may ask for (DISPATCHER_SECRETS)
  --max-in-flight N       global limit of running actions (DISPATCHER_MAX_IN_FLIGHT)
  --poll-seconds N        poll interval of \`run\` (DISPATCHER_POLL_SECONDS)
Engines: NOMAD_ADDR, NOMAD_TOKEN, NOMAD_NAMESPACE, NOMAD_REGION, VAULT_ADDR, VAULT_TOKEN`;

/** The Nomad section alone, for commands that talk to Nomad only. */
export function nomadConfigFrom(values: Values): ReturnType<typeof loadNomadConfig> {
  return loadNomadConfig({ file: values.config as string | undefined });
}

export function configFrom(values: Values): Config {
  const flags: Record<string, unknown> = {};
  if (values["ops-remote"]) flags.repo = { remote: values["ops-remote"] };
  if (values["poll-seconds"]) flags.pollSeconds = values["poll-seconds"];
  if (values["max-in-flight"]) flags.limits = { maxInFlight: values["max-in-flight"] };
  if (typeof values.secrets === "string") flags.secrets = values.secrets.split(",").filter(Boolean);
  return loadConfig({ file: values.config as string | undefined, flags });
}

/** Exit codes, also in the README and `dispatcher --help`. */
export const EXIT = { ok: 0, failed: 1, usage: 2, engine: 3, internal: 70, interrupted: 130 } as const;
