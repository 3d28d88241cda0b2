// Shared fixtures of the fault suite: an ops repo of N actions and the checks on its results.
import { runGit } from "../../dispatcher/opsrepo/exec.js";
import type { ActionResult } from "../../dispatcher/core/result.js";
import type { OpsRemote } from "../helpers/gitrepo.js";

export const FORMULAS: Record<string, string> = {
  // short, uneven work so kills land at every stage
  "formulas/work.sh": '#!/usr/bin/env bash\nset -eu\nsleep "0.$((RANDOM % 9))"\necho "worked on $ACTION_ID"\n',
  // proves the secret reached the job: no secret, exit 1
  "formulas/with-secret.sh": '#!/usr/bin/env bash\nset -eu\n[ -n "${FAULT_SECRET:-}" ] || { echo "FAULT_SECRET missing" >&2; exit 1; }\nsleep "0.$((RANDOM % 5))"\necho "secret seen by $ACTION_ID"\n',
};

/** `count` actions `${prefix}-NN`; every fifth one uses the secret. */
export function actionFiles(prefix: string, count: number, secret: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const id = `${prefix}-${String(i).padStart(2, "0")}`;
    const withSecret = i % 5 === 0;
    files[`vault/actions/${id}.toml`] =
      `id = "${id}"\nformula = "${withSecret ? "with-secret" : "work"}"\ncontext = "fault suite"\nsecrets = [${withSecret ? `"${secret}"` : ""}]\n`;
  }
  return files;
}

export function actionIds(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(2, "0")}`);
}

export async function readResults(remote: OpsRemote, ids: string[]): Promise<Map<string, ActionResult>> {
  const out = new Map<string, ActionResult>();
  for (const id of ids) {
    const text = await remote.read(`vault/actions/${id}.result.json`);
    if (text) out.set(id, JSON.parse(text) as ActionResult);
  }
  return out;
}

/** How many commits on main touched each result file: more than one would be an overwrite. */
export async function resultWrites(remote: OpsRemote): Promise<Map<string, number>> {
  const out = (await runGit(remote.dir, ["--git-dir", remote.remote, "log", "--format=", "--name-only", "main", "--", "vault/actions"])).toString("utf8");
  const counts = new Map<string, number>();
  for (const line of out.split("\n").filter((l) => l.endsWith(".result.json"))) {
    const id = line.slice("vault/actions/".length, -".result.json".length);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}
