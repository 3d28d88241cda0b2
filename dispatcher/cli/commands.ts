import { loadFormulaMounts, loadFormulaSecrets, loadLayoutConfig, mountLayoutOf } from "../config.js";
import { ExitError } from "../errors.js";
import { redactUrls } from "../opsrepo/exec.js";
import { startDispatcher } from "../start.js";
import { createShutdownHandler } from "./signals.js";
import { formatChecks } from "../core/doctor.js";
import { CONFIG_HELP, configFrom, configOptions, EXIT, type Command } from "./common.js";
import { checkSetup, doctorCommand } from "./doctor.js";
import { jobsCommand } from "./jobs.js";
import { logsCommand } from "./logs.js";
import { migrateCheckCommand } from "./migrate.js";
import { planCommand } from "./plan.js";
import { statusCommand } from "./status.js";
import { validateFiles } from "./validate.js";

export const COMMANDS: Record<string, Command> = {
  run: {
    summary: "poll the ops repo and dispatch actions until stopped (SIGTERM drains, a second signal exits)",
    help: `Usage: dispatcher run [options]\n\nRuns the checks of \`dispatcher doctor\` and refuses to start (exit 1) when a fatal one fails;\nthen polls the ops repo, dispatches pending actions, records their results.\n\n${CONFIG_HELP}`,
    options: configOptions,
    async run(values) {
      const config = configFrom(values);
      const checks = await checkSetup(config);
      process.stderr.write(formatChecks(checks));
      const fatal = checks.filter((c) => c.fatal && !c.ok).map((c) => c.name);
      if (fatal.length > 0) throw new ExitError(`refusing to start: ${fatal.join(", ")} failed (see the fail lines above)`, EXIT.failed);
      const d = startDispatcher(config);
      const served = await d.serve();
      const stop = new AbortController();
      const onSignal = createShutdownHandler(d.log, stop, (code) => process.exit(code));
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
      d.log.info({ remote: redactUrls(d.config.repo.remote), nomad: d.config.nomad.addr, vault: d.config.vault.addr }, "dispatcher running");
      const alive = d.keepVaultAlive(stop.signal);
      await d.loop.run(stop.signal, d.config.pollSeconds * 1000);
      await alive;
      await served?.close();
      return 0;
    },
  },
  once: {
    summary: "one pass: dispatch what is pending, wait for it, write the results",
    help: `Usage: dispatcher once [options]\n\nDispatches every pending action, waits for all to finish and pushes their results.\nExits 0 when every result was recorded, 3 when a result could not be pushed.\n\n${CONFIG_HELP}`,
    options: configOptions,
    async run(values) {
      const d = startDispatcher(configFrom(values));
      const stop = new AbortController();
      const alive = d.keepVaultAlive(stop.signal);
      try {
        await d.loop.once();
      } catch (err) {
        throw new ExitError(`results could not be recorded: ${(err as Error).message}`, 3);
      } finally {
        stop.abort();
        await alive.catch(() => undefined);
      }
      return 0;
    },
  },
  plan: planCommand,
  status: statusCommand,
  logs: logsCommand,
  doctor: doctorCommand,
  jobs: jobsCommand,
  validate: {
    summary: "check action files against the contract (for the ops repo's CI)",
    help: `Usage: dispatcher validate [--secrets A,B] [--config FILE] <file.toml|dir>...\n\nParses each action file; with --secrets (or DISPATCHER_SECRETS) also checks secret names,\nwith --config (or DISPATCHER_CONFIG) the formula → secrets and mounts allowlists ([formula_secrets], [formula_mounts]),\nand checks formulas/<formula>.sh when the file sits in <repo>/vault/actions/.\nExits 1 and prints one line per problem when any file is invalid.`,
    options: { secrets: { type: "string" }, config: { type: "string", short: "c" } },
    async run(values, positionals) {
      if (positionals.length === 0) throw new ExitError("dispatcher validate: name at least one file or directory", 2);
      const secretsCsv = (values.secrets as string | undefined) ?? process.env.DISPATCHER_SECRETS;
      const configFile = (values.config as string | undefined) ?? process.env.DISPATCHER_CONFIG;
      const report = await validateFiles(positionals, secretsCsv?.split(",").filter(Boolean), configFile ? loadFormulaSecrets(configFile) : undefined, configFile ? loadFormulaMounts(configFile) : undefined, configFile ? Object.keys(mountLayoutOf(loadLayoutConfig({ file: configFile, env: {} })).volumes) : undefined);
      for (const line of report.lines) process.stdout.write(`${line}\n`);
      process.stdout.write(`${report.valid} valid, ${report.invalid} invalid\n`);
      return report.invalid > 0 ? 1 : 0;
    },
  },
  "migrate-check": migrateCheckCommand,
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`);
  return `Usage: dispatcher <command> [options]\n\nCommands:\n${lines.join("\n")}\n\nRun dispatcher <command> --help for its options.\nExit codes: 0 ok, 1 failed/invalid (logs -f: the task's exit code), 2 usage or config error, 3 engine or push failure, 70 internal error, 130 interrupted.\n`;
}
