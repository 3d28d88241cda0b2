import { show } from "./parse.js";
import type { Action, ActionCatalog, FormulaMounts, FormulaSecrets } from "./schema.js";

export { formatProblems } from "./parse.js";

export interface CheckResult {
  /** references that can never resolve at this commit: the action is invalid */
  problems: string[];
  /** secret names not granted; reported apart since they are class secret_unknown, not invalid */
  unknownSecrets: string[];
}

/** Checks what a valid file refers to against what the ops repo and the cluster offer. */
export function checkAction(action: Action, catalog: ActionCatalog): CheckResult {
  const problems: string[] = [];
  if (!catalog.formulas.has(action.formula)) {
    const f = action.formula;
    problems.push(`formula ${show(f)} has no formulas/${f}.sh in ${catalog.formulasWhere ?? "the ops repo"} (have: ${listNames(catalog.formulas)})`);
  }
  const configured = catalog.configuredMounts;
  const unknown = configured ? action.mounts.filter((m) => !configured.has(m)) : [];
  action.mounts.forEach((m, i) => {
    if (configured && !configured.has(m)) problems.push(`mounts[${i}] ${show(m)} is not a configured mount alias (configured: ${listNames(configured)}; [mounts] in the dispatcher's config)`);
  });
  const set = mountSetKey(action.mounts);
  if (unknown.length === 0 && set && catalog.mountSets && !catalog.mountSets.has(set)) {
    problems.push(`mounts [${set}] have no runner parent (mount sets: ${[...catalog.mountSets].filter(Boolean).map((s) => `[${s}]`).join(", ") || "none"}; mount_sets in the dispatcher's config)`);
  }
  if (unknown.length > 0) return { problems, unknownSecrets: action.secrets.filter((s) => !catalog.secrets.has(s)) };
  const cls = action.class;
  if (cls !== undefined && catalog.classes && !catalog.classes.has(cls)) {
    problems.push(`class ${show(cls)} is not a configured runner class (configured: ${listNames(new Set(catalog.classes.keys()))})`);
  } else if (cls !== undefined && catalog.classes) {
    const offered = catalog.classes.get(cls)!;
    action.mounts.forEach((m, i) => {
      if (!offered.has(m)) problems.push(`mounts[${i}] ${show(m)} is not offered by any ready node of class ${show(cls)} (node pool ${cls} offers: ${listNames(offered)})`);
    });
  } else if (cls === undefined) {
    action.mounts.forEach((m, i) => {
      if (!catalog.mounts.has(m)) problems.push(`mounts[${i}] ${show(m)} is not available on this cluster (available: ${listNames(catalog.mounts)})`);
    });
  }
  const unknownSecrets = action.secrets.filter((s) => !catalog.secrets.has(s));
  return { problems, unknownSecrets };
}

/** A mount set as a key: its aliases sorted and joined by "," ("" for none). */
export function mountSetKey(mounts: readonly string[]): string {
  return [...new Set(mounts)].sort().join(",");
}

/**
 * One line per secret the action's formula may not have under the allowlist; none without one.
 * Checked before any token is minted: a commit cannot widen what a formula gets.
 */
export function notAllowedSecretProblems(action: Action, allowlist: FormulaSecrets | undefined): string[] {
  if (!allowlist) return [];
  const allowed = allowlist.allowed.get(action.formula) ?? new Set<string>();
  return action.secrets.flatMap((s, i) =>
    allowed.has(s) ? [] : [`secrets[${i}] ${show(s)} is not allowed for formula ${show(action.formula)} (allowed: ${listNames(allowed)}; allowlist: ${allowlist.source})`],
  );
}

/** One line per mount the allowlist does not give the action's formula (none without an allowlist). */
export function notAllowedMountProblems(action: Action, allowlist: FormulaMounts | undefined): string[] {
  if (!allowlist) return [];
  const allowed = allowlist.allowed.get(action.formula) ?? new Set<string>();
  return action.mounts.flatMap((m, i) =>
    allowed.has(m) ? [] : [`mounts[${i}] ${show(m)} is not allowed for formula ${show(action.formula)} (allowed: ${listNames(allowed)}; allowlist: ${allowlist.source})`],
  );
}

/** One line per secret of the action the dispatcher may not grant. */
export function unknownSecretProblems(action: Action, catalog: ActionCatalog): string[] {
  return action.secrets.flatMap((s, i) =>
    catalog.secrets.has(s) ? [] : [`secrets[${i}] ${show(s)} is not a known secret (known: ${listNames(catalog.secrets)})`],
  );
}

/** Sorted and capped, so a problem stays one readable line however large the catalog. */
function listNames(names: ReadonlySet<string>, max = 20): string {
  if (names.size === 0) return "none";
  const sorted = [...names].sort();
  const more = sorted.length > max ? `, … (${sorted.length - max} more)` : "";
  return sorted.slice(0, max).join(", ") + more;
}
