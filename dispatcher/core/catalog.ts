import { checkAction, formatProblems, notAllowedMountProblems, notAllowedSecretProblems, unknownSecretProblems } from "../actions/check.js";
import { readFormulas } from "./repo-read.js";
import type { ActionCatalog, FormulaMounts, FormulaSecrets, ParsedAction } from "../actions/schema.js";
import { allMountSets, type Mount } from "../actions/schema.js";
import { mountSetKey } from "../actions/check.js";
import type { FailureClass } from "../errors.js";
import type { Logger } from "../log.js";
import type { FactoryPort, NomadPort, OpsRepoPort, VaultPort } from "./ports.js";

/** Why an action is refused without running: recorded as its result. */
/** Why an action may not run; its result's status follows from the class (statusOf). */
export interface Refusal {
  class: FailureClass;
  message: string;
}

/** What the ops repo and the engines offer at a commit, as one pass (or a plan) sees it. */
export interface Catalog extends ActionCatalog {
  /** host path of each offered mount alias, from the client node's host volume config */
  mountPaths: ReadonlyMap<string, string>;
  /** false when Vault could not be asked: actions with secrets wait */
  vaultOk: boolean;
}

export interface CatalogDeps {
  repo: OpsRepoPort;
  /** formulas from the factory repository at its pinned commit (formulas.factory_remote); absent: the ops repo's */
  factory?: FactoryPort;
  nomad: Pick<NomadPort, "hostVolumes">;
  vault: Pick<VaultPort, "missingPolicies">;
  log: Logger;
}

/** Vault stores policy names lower-cased, so runner-GITHUB_TOKEN is runner-github_token. */
export function policyFor(secret: string): string {
  return `runner-${secret.toLowerCase()}`;
}

export function policiesFor(secrets: string[]): string[] {
  return secrets.map(policyFor);
}

export interface CatalogSettings {
  knownSecrets: string[];
  /** runner classes (node pools) actions may name */
  classes: readonly string[];
  /** mount alias → the host volume that provides it: ssh/gpg/sops and [mounts] of the config */
  hostVolumes: Readonly<Record<Mount, string>>;
  /** the parents' mount sets; absent: every subset of the aliases */
  mountSets?: readonly (readonly string[])[];
  formulaSecrets?: FormulaSecrets;
  formulaMounts?: FormulaMounts;
}

export interface CatalogNeeds {
  vault: boolean;
  /** node pools whose host volumes pending actions ask for ("default": actions without a class) */
  pools: string[];
}

/** What the pending actions ask the engines about: none asks Nomad or Vault needlessly. */
export function catalogNeeds(parsed: readonly ParsedAction[]): CatalogNeeds {
  // one loop, no arrays per action: a pass runs this over everything pending
  let vault = false;
  const pools = new Set<string>();
  for (const p of parsed) {
    if (!p.ok) continue;
    if (p.action.secrets.length > 0) vault = true;
    if (p.action.mounts.length > 0) pools.add(p.action.class ?? "default");
  }
  return { vault, pools: [...pools].sort() };
}

function mountsIn(volumes: ReadonlyMap<string, string>, s: CatalogSettings): Map<string, string> {
  return new Map(Object.entries(s.hostVolumes).filter(([, v]) => volumes.has(v)).map(([m, v]) => [m, volumes.get(v)!] as const));
}

/** Reads formulas at `commit`, and when needed mounts from Nomad and secret policies from Vault. */
export async function buildCatalog(deps: CatalogDeps, commit: string, s: CatalogSettings, needs: CatalogNeeds): Promise<Catalog> {
  const { knownSecrets } = s;
  const needsVault = needs.vault;
  const formulas = deps.factory ? await deps.factory.formulas() : await readFormulas(deps.repo, commit);
  // an unconfigured class is refused by name; its pool is never asked
  const pools = needs.pools.filter((p) => p === "default" || s.classes.includes(p));
  const byPool = new Map(await Promise.all(pools.map(async (p) => [p, mountsIn(await deps.nomad.hostVolumes(p), s)] as const)));
  const mountPaths = byPool.get("default") ?? new Map<string, string>();
  const classes = new Map(s.classes.map((c) => [c, new Set(byPool.get(c)?.keys() ?? [])] as const));
  let secrets = new Set<string>();
  let vaultOk = true;
  if (needsVault) {
    try {
      const missing = new Set(await deps.vault.missingPolicies(policiesFor(knownSecrets)));
      secrets = new Set(knownSecrets.filter((n) => !missing.has(policyFor(n))));
    } catch (err) {
      vaultOk = false;
      deps.log.error({ err }, "vault unreachable: actions with secrets wait until it is back");
    }
  }
  const configuredMounts = new Set(Object.keys(s.hostVolumes));
  const mountSets = new Set((s.mountSets ?? allMountSets(Object.keys(s.hostVolumes))).map(mountSetKey));
  return { formulas, configuredMounts, mountSets, ...(deps.factory ? { formulasWhere: deps.factory.where } : {}), mounts: new Set(mountPaths.keys()), mountPaths, classes, secrets, vaultOk, formulaSecrets: s.formulaSecrets, formulaMounts: s.formulaMounts };
}

/**
 * Pure: why `p` must not run against `catalog`, or undefined when it may be dispatched. With
 * Vault unreachable no secret is known, so unknown secrets are not held against the action then.
 */
export function refusalOf(p: ParsedAction, catalog: Catalog): Refusal | undefined {
  if (!p.ok) return { class: "invalid", message: formatProblems(p.file.path, p.problems) };
  const check = checkAction(p.action, catalog);
  if (check.problems.length > 0) return { class: "invalid", message: formatProblems(p.file.path, check.problems) };
  // before Vault is asked anything: a formula never gets a secret the allowlist does not give it
  // and never a mount (its key files) the allowlist does not give it
  const notAllowed = [...notAllowedSecretProblems(p.action, catalog.formulaSecrets), ...notAllowedMountProblems(p.action, catalog.formulaMounts)];
  if (notAllowed.length > 0) return { class: "not_allowed", message: formatProblems(p.file.path, notAllowed) };
  if (catalog.vaultOk && check.unknownSecrets.length > 0) {
    return { class: "secret_unknown", message: formatProblems(p.file.path, unknownSecretProblems(p.action, catalog)) };
  }
  return undefined;
}

/** Pure: an action that may run but must wait for Vault (its secrets cannot be checked now). */
export function waitsForVault(p: ParsedAction, catalog: Catalog): boolean {
  return p.ok && !catalog.vaultOk && p.action.secrets.length > 0;
}
