import { buildPinFile, type ParentSpec } from "../core/pins.js";
import { mountLayoutOf, type loadNomadConfig } from "../config.js";
import { parentJobFor, parentJobsOf } from "../core/request.js";
import { ExitError } from "../errors.js";
import { createNomadPort } from "../nomad/client.js";
import { writePinFile } from "../pinfile.js";
import { CONFIG_HELP, configOptions, EXIT, nomadConfigFrom, type Command } from "./common.js";

export const jobsCommand: Command = {
  summary: "jobs pin --out FILE: record the registered runner/sidecar parents the dispatcher may mint for; jobs sets: the parents to register",
  help: `Usage: dispatcher jobs pin --out FILE [options]
       dispatcher jobs sets [options]

Reads every runner and sidecar parent (one per runner class and mount set: runner, runner-gpg, …,
runner-gpg-sops-ssh, and runner.<class>, runner.<class>-gpg, … for DISPATCHER_CLASSES) from Nomad and writes what decides their children (driver, command, args,
user, volumes, namespace, meta, …) to FILE. Run it right after registering them
(scripts/register-jobs.sh does); point DISPATCHER_JOB_PINS at FILE. The dispatcher then mints and
dispatches nothing for a parent that differs, and \`doctor\` names the field.
Needs read-job in the runner namespace (the dispatcher's own token has it).

\`jobs sets\` prints, one JSON object a line, every parent to register for the configured mount
sets ([mounts], mount_sets; classes apart): {"id", "base", "kind", "mounts", "sources", "paths"},
the job id (<base>.<class>-<aliases> for a class), runner or sidecar, the aliases, alias → host volume and alias → landing path in the task.
scripts/register-jobs.sh registers from it. Needs no engine.

${CONFIG_HELP}`,
  options: { ...configOptions, out: { type: "string" } },
  async run(values, positionals) {
    if (positionals[0] === "sets") {
      process.stdout.write(parentSetsOf(nomadConfigFrom(values)).map((p) => `${JSON.stringify(p)}\n`).join(""));
      return EXIT.ok;
    }
    if (positionals[0] !== "pin") throw new ExitError("dispatcher jobs: expected a subcommand: pin or sets (see dispatcher jobs --help)", EXIT.usage);
    const out = values.out as string | undefined;
    if (!out) throw new ExitError("dispatcher jobs pin: --out FILE is required, e.g. --out /etc/dispatcher/jobs.pin.json", EXIT.usage);
    const config = nomadConfigFrom(values);
    const nomad = createNomadPort(config.nomad);
    const specs = new Map<string, ParentSpec>();
    const missing: string[] = [];
    const sets = mountLayoutOf(config).sets;
    for (const job of [...parentJobsOf(config.nomad.runnerJob, config.nomad.classes, sets), ...parentJobsOf(config.nomad.sidecarJob, config.nomad.classes, sets)]) {
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

/** One parent per kind and mount set (the default class's ids; register-jobs.sh adds .<class>), with what its volumes need. */
export function parentSetsOf(config: ReturnType<typeof loadNomadConfig>): { id: string; base: string; kind: "runner" | "sidecar"; mounts: string[]; sources: Record<string, string>; paths: Record<string, string> }[] {
  const layout = mountLayoutOf(config);
  const sets = layout.sets.some((s) => s.length === 0) ? layout.sets : [[], ...layout.sets];
  const pick = (from: Record<string, string>, set: string[]) => Object.fromEntries(set.map((m) => [m, from[m]!]));
  return (["runner", "sidecar"] as const).flatMap((kind) =>
    sets.map((set) => ({
      id: parentJobFor(kind === "runner" ? config.nomad.runnerJob : config.nomad.sidecarJob, set),
      base: kind === "runner" ? config.nomad.runnerJob : config.nomad.sidecarJob,
      kind,
      mounts: [...set].sort(),
      sources: pick(layout.volumes, set),
      paths: pick(layout.paths, set),
    })),
  );
}
