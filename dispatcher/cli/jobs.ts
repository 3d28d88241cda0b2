import { buildPinFile, type ParentSpec } from "../core/pins.js";
import { parentJobsOf } from "../core/request.js";
import { ExitError } from "../errors.js";
import { createNomadPort } from "../nomad/client.js";
import { writePinFile } from "../pinfile.js";
import { CONFIG_HELP, configOptions, EXIT, nomadConfigFrom, type Command } from "./common.js";

export const jobsCommand: Command = {
  summary: "jobs pin --out FILE: record the registered runner/sidecar parents the dispatcher may mint for",
  help: `Usage: dispatcher jobs pin --out FILE [options]

Reads every runner and sidecar parent (one per runner class and mount set: runner, runner-gpg, …,
runner-gpg-sops-ssh, and runner.<class>, runner.<class>-gpg, … for DISPATCHER_CLASSES) from Nomad and writes what decides their children (driver, command, args,
user, volumes, namespace, meta, …) to FILE. Run it right after registering them
(scripts/register-jobs.sh does); point DISPATCHER_JOB_PINS at FILE. The dispatcher then mints and
dispatches nothing for a parent that differs, and \`doctor\` names the field.
Needs read-job in the runner namespace (the dispatcher's own token has it).

${CONFIG_HELP}`,
  options: { ...configOptions, out: { type: "string" } },
  async run(values, positionals) {
    if (positionals[0] !== "pin") throw new ExitError("dispatcher jobs: expected a subcommand: pin (see dispatcher jobs --help)", EXIT.usage);
    const out = values.out as string | undefined;
    if (!out) throw new ExitError("dispatcher jobs pin: --out FILE is required, e.g. --out /etc/dispatcher/jobs.pin.json", EXIT.usage);
    const config = nomadConfigFrom(values);
    const nomad = createNomadPort(config.nomad);
    const specs = new Map<string, ParentSpec>();
    const missing: string[] = [];
    for (const job of [...parentJobsOf(config.nomad.runnerJob, config.nomad.classes), ...parentJobsOf(config.nomad.sidecarJob, config.nomad.classes)]) {
      const spec = await nomad.parentSpec(job);
      if (spec) specs.set(job, spec);
      else missing.push(job);
    }
    if (missing.length > 0) {
      throw new ExitError(`dispatcher jobs pin: not registered in namespace ${config.nomad.namespace ?? "default"}: ${missing.join(", ")}; register them first (scripts/register-jobs.sh)`, EXIT.failed);
    }
    writePinFile(out, buildPinFile(specs, new Date()));
    process.stdout.write(`pinned ${specs.size} parents to ${out}\n`);
    return EXIT.ok;
  },
};
