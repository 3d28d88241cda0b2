import { readdir, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { parseAction } from "../actions/parse.js";
import type { ParsedAction } from "../actions/schema.js";
import { formulaMountsOf, formulaSecretsOf, loadLayoutConfig, mountLayoutOf } from "../config.js";
import { formatMigrateCheck, migrateCheck, type MigrateRepos, type MigrateSettings } from "../core/migrate.js";
import { ExitError } from "../errors.js";
import { tryGit } from "../opsrepo/exec.js";
import { EXIT, type Command } from "./common.js";

export const migrateCheckCommand: Command = {
  summary: "migrate-check --ops DIR [--factory DIR]: per action of a dispatcher.sh ops repo, what must change to run here",
  help: `Usage: dispatcher migrate-check --ops DIR [--factory DIR] [-c FILE]

Reads a checkout of an ops repo in the layout of disinto's dispatcher.sh (vault/actions/*.toml,
formulas/ here or in the factory repository, checked out at --factory DIR) and the
dispatcher's configuration (-c FILE or DISPATCHER_CONFIG, and the DISPATCHER_* environment), and
prints one line per action: "ok <id>: runs as is", or "change <id>: …" naming each setting or file
that must change (vault.secret_path, formulas.factory_remote/factory_commit, formulas.args,
formulas.home, [mounts], secrets, the allowlists) and the value that keeps the old behaviour.
Asks no engine. Exit 0 when every action runs as is, 1 while any would fail.`,
  options: { config: { type: "string", short: "c" }, ops: { type: "string" }, factory: { type: "string" } },
  async run(values) {
    const ops = values.ops as string | undefined;
    if (!ops) throw new ExitError("dispatcher migrate-check: --ops DIR is required: a checkout of the ops repo, e.g. --ops ~/ops", EXIT.usage);
    const factory = values.factory as string | undefined;
    const config = loadLayoutConfig({ file: values.config as string | undefined });
    const layout = mountLayoutOf(config);
    const settings: MigrateSettings = {
      secrets: config.secrets,
      secretPath: config.vault.secretPath,
      ...(config.formulas.factoryRemote ? { factoryCommit: config.formulas.factoryCommit } : {}),
      formulaArgs: config.formulas.args,
      home: config.formulas.home,
      mountPaths: layout.paths,
      mountSets: layout.sets,
      formulaSecrets: formulaSecretsOf(config),
      formulaMounts: formulaMountsOf(config),
      source: config.file ?? "the config",
    };
    const repos: MigrateRepos = {
      opsFormulas: await formulasIn(ops),
      ...(factory ? { factoryFormulas: await formulasIn(factory), factoryHead: await headOf(factory) } : {}),
    };
    const lines = migrateCheck(await actionsIn(join(ops, "vault", "actions")), repos, settings);
    process.stdout.write(formatMigrateCheck(lines));
    return lines.every((l) => l.ok) ? EXIT.ok : EXIT.failed;
  },
};

/** formulas/<name>.sh of a checkout: name → script. */
async function formulasIn(dir: string): Promise<Map<string, string>> {
  const names = (await readdir(join(dir, "formulas")).catch(() => [] as string[])).filter((n) => n.endsWith(".sh")).sort();
  return new Map(await Promise.all(names.map(async (n) => [n.slice(0, -3), await readFile(join(dir, "formulas", n), "utf8")] as const)));
}

async function actionsIn(dir: string): Promise<ParsedAction[]> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith(".toml")).sort();
  return Promise.all(names.map(async (n) => parseAction(await readFile(join(dir, n)), { path: join("vault/actions", n), id: basename(n, ".toml"), sha: "" })));
}

async function headOf(dir: string): Promise<string | undefined> {
  const run = await tryGit(dir, ["rev-parse", "--verify", "HEAD^{commit}"]);
  return run.code === 0 ? run.stdout.toString("utf8").trim() : undefined;
}
