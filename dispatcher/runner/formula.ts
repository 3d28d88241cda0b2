// The formula as a child of the runner: an explicit environment, its own process group killed
// at the deadline, and its output copied with every secret value masked.
import { spawn } from "node:child_process";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { createMasker } from "../core/redact.js";
import { TimeoutExceeded } from "../errors.js";
import type { RunnerMeta } from "./contract.js";

/** After SIGTERM at the deadline, the formula's process group gets this long before SIGKILL. */
const KILL_GRACE_MS = 10_000;
const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin";

export interface FormulaContext {
  meta: RunnerMeta;
  /** the ops repo at the action's commit */
  checkout: string;
  /** the task's own directory: the formula's HOME */
  home: string;
  secrets: Record<string, string>;
  /** the formula's own Vault token: only with secrets, for their paths and nothing else */
  token?: string;
  /** the runner's environment: only PATH and VAULT_ADDR are taken from it */
  base: NodeJS.ProcessEnv;
}

/**
 * What the formula's environment holds, and nothing else: never the runner's inherited
 * variables (Nomad's NOMAD_*, a token of the agent's, the payload's path).
 */
export function formulaEnv(c: FormulaContext): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: c.base.PATH || DEFAULT_PATH,
    HOME: c.home,
    LANG: "C.UTF-8",
    VAULT_ADDR: c.base.VAULT_ADDR,
    ACTION_ID: c.meta.actionId,
    VAULT_ACTION_TOML: join(c.checkout, c.meta.actionPath),
    OPS_REPO_DIR: c.checkout,
    ...Object.fromEntries(Object.entries(c.meta.mountPaths).map(([alias, path]) => [`MOUNT_${alias.toUpperCase()}`, path])),
    // a sidecar's subject: the issue and the project it belongs to
    ISSUE_NUMBER: c.base.NOMAD_META_issue_number,
    PROJECT_TOML: c.base.NOMAD_META_project_toml,
    ...(c.token ? { VAULT_TOKEN: c.token } : {}),
    ...c.secrets,
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ""));
}

export interface FormulaRun {
  script: string;
  cwd: string;
  env: Record<string, string>;
  /** masked wherever they appear in the output */
  secretValues: string[];
  timeoutMs: number;
  stdout: Writable;
  stderr: Writable;
}

/** Runs `bash script`; resolves with its exit code, rejects with TimeoutExceeded when the deadline killed it. */
export function runFormula(r: FormulaRun): Promise<number> {
  return new Promise((resolve, reject) => {
    // its own process group: at the deadline everything the formula started is killed with it
    const child = spawn("bash", [r.script], { cwd: r.cwd, env: r.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const done = [pipeMasked(child.stdout, r.stdout, r.secretValues), pipeMasked(child.stderr, r.stderr, r.secretValues)];
    let timedOut = false;
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // the group is gone already
      }
    };
    const deadline = setTimeout(() => {
      timedOut = true;
      killGroup("SIGTERM");
      setTimeout(() => killGroup("SIGKILL"), KILL_GRACE_MS).unref();
    }, r.timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(deadline);
      // what the formula left running in its group does not outlive it
      killGroup("SIGKILL");
      void Promise.all(done).then(() => {
        if (timedOut) reject(new TimeoutExceeded(`formula ran past its timeout of ${formatMinutes(r.timeoutMs)} and was killed by the runner`));
        else resolve(code ?? 128 + (signal ? signalNumber(signal) : 0));
      });
    });
  });
}

function formatMinutes(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`;
}

/** Copies a formula stream to ours with every secret value masked (Nomad stores what we print). */
function pipeMasked(from: Readable, to: Writable, values: string[]): Promise<void> {
  const masker = createMasker(values);
  from.setEncoding("utf8");
  from.on("data", (chunk: string) => to.write(masker.push(chunk)));
  return new Promise((resolve) => from.on("end", () => to.write(masker.end(), () => resolve())));
}

function signalNumber(signal: NodeJS.Signals): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal] ?? 0;
}
