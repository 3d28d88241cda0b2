import { readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { checkAction, formatProblems, notAllowedMountProblems, notAllowedSecretProblems, unknownSecretProblems } from "../actions/check.js";
import { parseAction } from "../actions/parse.js";
import { MOUNTS, type FormulaMounts, type FormulaSecrets } from "../actions/schema.js";

export interface ValidateReport {
  valid: number;
  invalid: number;
  lines: string[];
}

/** Expands dirs to their *.toml files (results and logs are not actions). */
async function expand(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    if ((await stat(p)).isDirectory()) {
      const names = (await readdir(p)).filter((n) => n.endsWith(".toml")).sort();
      out.push(...names.map((n) => join(p, n)));
    } else out.push(p);
  }
  return out;
}

/** Formulas of the ops repo a file sits in (<repo>/vault/actions/x.toml), if it has them. */
async function formulasNear(file: string): Promise<Set<string> | undefined> {
  const dir = join(dirname(file), "..", "..", "formulas");
  const names = await readdir(dir).catch(() => undefined);
  return names && new Set(names.filter((n) => n.endsWith(".sh")).map((n) => n.slice(0, -3)));
}

/**
 * Offline validation for the ops repo's CI: the contract always; formulas when the repo's
 * formulas/ is beside; secret names when the allowlist is given. Mounts are checked by name only.
 */
export async function validateFiles(paths: string[], secrets?: string[], allowlist?: FormulaSecrets, mountAllowlist?: FormulaMounts, mountAliases: readonly string[] = MOUNTS): Promise<ValidateReport> {
  const report: ValidateReport = { valid: 0, invalid: 0, lines: [] };
  for (const path of await expand(paths)) {
    const content = await readFile(path);
    const parsed = parseAction(content, { path, id: basename(path, ".toml"), sha: "" });
    let problems = parsed.ok ? [] : parsed.problems;
    if (parsed.ok) {
      const formulas = await formulasNear(path);
      const catalog = {
        formulas: formulas ?? new Set([parsed.action.formula]),
        // the config's aliases ([mounts]) with --config, else ssh/gpg/sops
        mounts: new Set<string>(mountAliases),
        secrets: new Set(secrets ?? parsed.action.secrets),
      };
      const check = checkAction(parsed.action, catalog);
      problems = [
        ...check.problems,
        ...notAllowedSecretProblems(parsed.action, allowlist),
        ...notAllowedMountProblems(parsed.action, mountAllowlist),
        ...(check.unknownSecrets.length > 0 ? unknownSecretProblems(parsed.action, catalog) : []),
      ];
    }
    if (problems.length === 0) {
      report.valid++;
      report.lines.push(`${path}: ok`);
    } else {
      report.invalid++;
      report.lines.push(formatProblems(path, problems));
    }
  }
  return report;
}
