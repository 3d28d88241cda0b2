import { checkAction, mountSetKey, notAllowedMountProblems, notAllowedSecretProblems, unknownSecretProblems } from "../actions/check.js";
import type { FormulaMounts, FormulaSecrets, ParsedAction } from "../actions/schema.js";
import { DEFAULT_SECRET_PATH, type FormulaArgs } from "../contract.js";

// `dispatcher migrate-check`: what an ops repo in disinto's layout (and its factory repository)
// meets under the current configuration, action by action: it runs as is, or exactly which
// setting or file must change. Pure: the CLI reads the files and the config.

/** What the configuration says, as far as the old layout is concerned. */
export interface MigrateSettings {
  secrets: readonly string[];
  secretPath: string;
  /** formulas.factory_remote/factory_commit set: formulas come from the factory at this commit */
  factoryCommit?: string;
  formulaArgs: FormulaArgs;
  /** formulas.home ("": the task dir) */
  home: string;
  /** alias → landing path in the task */
  mountPaths: Readonly<Record<string, string>>;
  mountSets: readonly (readonly string[])[];
  formulaSecrets?: FormulaSecrets;
  formulaMounts?: FormulaMounts;
  /** where the settings live, for messages: e.g. "/etc/dispatcher.toml" */
  source: string;
}

/** The two repositories as found on disk. */
export interface MigrateRepos {
  /** formula name → its script, in the ops repo's formulas/ */
  opsFormulas: ReadonlyMap<string, string>;
  /** formula name → its script, in the factory checkout's formulas/ (absent: no factory given) */
  factoryFormulas?: ReadonlyMap<string, string>;
  /** the factory checkout's HEAD */
  factoryHead?: string;
}

/** Where disinto's runner put each mount (docker -v …:ro), under its HOME /home/agent. */
export const OLD_HOME = "/home/agent";
export const OLD_LANDING: Readonly<Record<string, string>> = { ssh: ".ssh", gpg: ".gnupg", sops: ".config/sops/age" };
export const OLD_SECRET_PATH = "disinto/runner/{name}";

export interface MigrateLine {
  id: string;
  ok: boolean;
  /** what must change, each naming the setting or file */
  changes: string[];
}

/** Per action: what must change for it to run here as it ran under dispatcher.sh. */
export function migrateCheck(actions: readonly ParsedAction[], repos: MigrateRepos, s: MigrateSettings): MigrateLine[] {
  return actions.map((p) => {
    const changes = p.ok ? actionChanges(p, repos, s) : [`fix ${p.file.path}: ${p.problems.join("; ")}`];
    return { id: p.file.id, ok: changes.length === 0, changes };
  });
}

function actionChanges(p: Extract<ParsedAction, { ok: true }>, repos: MigrateRepos, s: MigrateSettings): string[] {
  const { action } = p;
  const changes: string[] = [];
  const fromFactory = s.factoryCommit !== undefined;
  const formulas = fromFactory ? (repos.factoryFormulas ?? new Map<string, string>()) : repos.opsFormulas;
  const script = formulas.get(action.formula);
  if (fromFactory && repos.factoryHead !== undefined && repos.factoryHead !== s.factoryCommit) {
    changes.push(`formulas.factory_commit is ${s.factoryCommit}, the factory checkout is at ${repos.factoryHead}: pin the commit that was reviewed (${s.source})`);
  }
  if (script === undefined) {
    if (!fromFactory && repos.factoryFormulas?.has(action.formula)) {
      changes.push(`formulas/${action.formula}.sh is in the factory repository, not the ops repo: set formulas.factory_remote and formulas.factory_commit = "${repos.factoryHead ?? "<the reviewed commit>"}" (${s.source}), or move it into the ops repo`);
    } else changes.push(`formulas/${action.formula}.sh is in neither ${fromFactory ? "the factory repository" : "the ops repo"}: add it`);
  }
  // what the formula reads, wherever it is now: every change is named at once
  const text = script ?? repos.factoryFormulas?.get(action.formula) ?? repos.opsFormulas.get(action.formula) ?? "";
  if (/\$\{?1\b/.test(text) && s.formulaArgs !== "action-id") changes.push(`formulas/${action.formula}.sh reads $1 (the action id under dispatcher.sh): set formulas.args = "action-id" (${s.source})`);
  if (/\bFACTORY_ROOT\b/.test(text) && !fromFactory) changes.push(`formulas/${action.formula}.sh uses FACTORY_ROOT: set formulas.factory_remote and formulas.factory_commit (${s.source})`);
  // the catalog's own checks, with every configured mount taken as offered (no engine is asked)
  const aliases = new Set(Object.keys(s.mountPaths));
  const check = checkAction(action, {
    formulas: new Set([action.formula]),
    mounts: aliases,
    configuredMounts: aliases,
    mountSets: new Set(s.mountSets.map(mountSetKey)),
    secrets: new Set(s.secrets),
  });
  changes.push(...check.problems.map((m) => `${m}: configure it (${s.source})`));
  changes.push(...notAllowedSecretProblems(action, s.formulaSecrets), ...notAllowedMountProblems(action, s.formulaMounts));
  changes.push(...unknownSecretProblems(action, { formulas: new Set(), mounts: new Set(), secrets: new Set(s.secrets) }).map((m) => `${m}: add it to secrets (DISPATCHER_SECRETS)`));
  if (action.secrets.length > 0 && s.secretPath === DEFAULT_SECRET_PATH) {
    changes.push(`secrets ${action.secrets.join(", ")} are read at kv/data/${DEFAULT_SECRET_PATH}; dispatcher.sh kept them at kv/data/${OLD_SECRET_PATH}: set vault.secret_path = "${OLD_SECRET_PATH}" (${s.source}) and write the policies with DISPATCHER_SECRET_PATH=${OLD_SECRET_PATH} scripts/bootstrap-vault.sh, or move the secrets`);
  }
  for (const alias of action.mounts.filter((m) => m in OLD_LANDING)) {
    const old = `${OLD_HOME}/${OLD_LANDING[alias]}`;
    const readsHome = new RegExp(`(~|\\$\\{?HOME\\}?)/${OLD_LANDING[alias]!.replaceAll(".", "\\.")}`).test(text);
    if (!readsHome || (s.mountPaths[alias] === old && s.home === OLD_HOME)) continue;
    if (s.mountPaths[alias] !== old) changes.push(`formulas/${action.formula}.sh reads ~/${OLD_LANDING[alias]}, mount ${alias} lands at ${s.mountPaths[alias]}: set [mounts] ${alias} = { volume = "${alias}", path = "${old}" } (${s.source})`);
    if (s.home !== OLD_HOME) changes.push(`formulas/${action.formula}.sh reads ~/${OLD_LANDING[alias]}: set formulas.home = "${OLD_HOME}" (${s.source})`);
  }
  return changes;
}

/** One line per action, `ok <id>: runs as is` or `change <id>: …`, then the count. */
export function formatMigrateCheck(lines: readonly MigrateLine[]): string {
  const out = lines.map((l) => (l.ok ? `ok ${l.id}: runs as is` : `change ${l.id}: ${l.changes.join("; ")}`));
  const failing = lines.filter((l) => !l.ok).length;
  out.push(failing === 0 ? `${lines.length} actions run as they are` : `${failing} of ${lines.length} actions need a change`);
  return `${out.join("\n")}\n`;
}
