import type { ParseArgsConfig } from "node:util";
import { loadConfig, type Config } from "../config.js";
import { ExitError } from "../errors.js";
import { startDispatcher } from "../start.js";
import { createShutdownHandler } from "./signals.js";
import { validateFiles } from "./validate.js";

type Values = Record<string, string | boolean | undefined>;

export interface Command {
  summary: string;
  help: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  run(values: Values, positionals: string[]): Promise<number>;
}

const configOptions = {
  config: { type: "string", short: "c" },
  "ops-remote": { type: "string" },
  "poll-seconds": { type: "string" },
  "max-in-flight": { type: "string" },
  secrets: { type: "string" },
} as const;

const CONFIG_HELP = `Config (defaults → file → env → flags):
  -c, --config FILE       TOML config file (or DISPATCHER_CONFIG)
  --ops-remote URL        ops repo remote (DISPATCHER_OPS_REMOTE)
  --secrets A,B           secrets actions may ask for (DISPATCHER_SECRETS)
  --max-in-flight N       global limit of running actions (DISPATCHER_MAX_IN_FLIGHT)
  --poll-seconds N        poll interval of \`run\` (DISPATCHER_POLL_SECONDS)
Engines: NOMAD_ADDR, NOMAD_TOKEN, NOMAD_NAMESPACE, NOMAD_REGION, VAULT_ADDR, VAULT_TOKEN`;

function configFrom(values: Values): Config {
  const flags: Record<string, unknown> = {};
  if (values["ops-remote"]) flags.repo = { remote: values["ops-remote"] };
  if (values["poll-seconds"]) flags.pollSeconds = values["poll-seconds"];
  if (values["max-in-flight"]) flags.limits = { maxInFlight: values["max-in-flight"] };
  if (typeof values.secrets === "string") flags.secrets = values.secrets.split(",").filter(Boolean);
  return loadConfig({ file: values.config as string | undefined, flags });
}

export const COMMANDS: Record<string, Command> = {
  run: {
    summary: "poll the ops repo and dispatch actions until stopped (SIGTERM drains, a second signal exits)",
    help: `Usage: dispatcher run [options]\n\nPolls the ops repo, dispatches pending actions, records their results.\n\n${CONFIG_HELP}`,
    options: configOptions,
    async run(values) {
      const d = startDispatcher(configFrom(values));
      const stop = new AbortController();
      const onSignal = createShutdownHandler(d.log, stop, (code) => process.exit(code));
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
      d.log.info({ remote: d.config.repo.remote, nomad: d.config.nomad.addr, vault: d.config.vault.addr }, "dispatcher running");
      await d.loop.run(stop.signal, d.config.pollSeconds * 1000);
      return 0;
    },
  },
  once: {
    summary: "one pass: dispatch what is pending, wait for it, write the results",
    help: `Usage: dispatcher once [options]\n\nDispatches every pending action, waits for all to finish and pushes their results.\nExits 0 when every result was recorded, 3 when a result could not be pushed.\n\n${CONFIG_HELP}`,
    options: configOptions,
    async run(values) {
      const d = startDispatcher(configFrom(values));
      try {
        await d.loop.once();
      } catch (err) {
        throw new ExitError(`results could not be recorded: ${(err as Error).message}`, 3);
      }
      return 0;
    },
  },
  validate: {
    summary: "check action files against the contract (for the ops repo's CI)",
    help: `Usage: dispatcher validate [--secrets A,B] <file.toml|dir>...\n\nParses each action file; with --secrets (or DISPATCHER_SECRETS) also checks secret names,\nand checks formulas/<formula>.sh when the file sits in <repo>/vault/actions/.\nExits 1 and prints one line per problem when any file is invalid.`,
    options: { secrets: { type: "string" } },
    async run(values, positionals) {
      if (positionals.length === 0) throw new ExitError("dispatcher validate: name at least one file or directory", 2);
      const secretsCsv = (values.secrets as string | undefined) ?? process.env.DISPATCHER_SECRETS;
      const report = await validateFiles(positionals, secretsCsv?.split(",").filter(Boolean));
      for (const line of report.lines) process.stdout.write(`${line}\n`);
      process.stdout.write(`${report.valid} valid, ${report.invalid} invalid\n`);
      return report.invalid > 0 ? 1 : 0;
    },
  },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`);
  return `Usage: dispatcher <command> [options]\n\nCommands:\n${lines.join("\n")}\n\nRun dispatcher <command> --help for its options.\nExit codes: 0 ok, 1 failed/invalid, 2 usage or config error, 3 engine or push failure, 70 internal error, 130 interrupted.\n`;
}
