import type { Config } from "../config.js";
import { formatChecks, runChecks, type Check } from "../core/doctor.js";
import { createLogger } from "../log.js";
import { createEngines, doctorDeps } from "../start.js";
import { CONFIG_HELP, configFrom, configOptions, EXIT, type Command } from "./common.js";

/** The checks for `config`; `run` calls this before it starts. */
export async function checkSetup(config: Config): Promise<Check[]> {
  const engines = createEngines(config, createLogger({ level: "warn" }));
  return runChecks(doctorDeps(config, engines));
}

export const doctorCommand: Command = {
  summary: "check Nomad, the jobspecs, OpenBao, the dispatcher's token and the ops repo",
  help: `Usage: dispatcher doctor [options]

One line per check: "ok <check>: <detail>" or "fail <check>: <detail>; fix: <how>".
Checks: nomad (reachable, version), jobspec runner and sidecar (registered, parameterized),
host volumes (ssh, gpg, sops offered), openbao (reachable, version), token role (the
dispatcher's token may create tokens on the runner role), secret isolation (it can read no known
secret), runner policies (runner-<name> for every known secret), ops repo (git ls-remote).
\`dispatcher run\` runs the same checks first and refuses to start when nomad, jobspec runner,
openbao, token role, secret isolation or ops repo fails.
Exits 1 when any check fails.

${CONFIG_HELP}`,
  options: configOptions,
  async run(values) {
    const checks = await checkSetup(configFrom(values));
    process.stdout.write(formatChecks(checks));
    return checks.every((c) => c.ok) ? EXIT.ok : EXIT.failed;
  },
};
