import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunnerMeta } from "../../../dispatcher/contract.js";
import { formulaEnv, runFormula, wallsFromEnv, type FormulaRun } from "../../../dispatcher/runner/formula.js";

const meta: RunnerMeta = {
  actionId: "triage-42",
  actionSha: "sha",
  actionPath: "vault/actions/triage-42.toml",
  commit: "c",
  formula: "triage",
  opsRepo: "git://127.0.0.1:4649/ops.git",
  secrets: ["GH_TOKEN"],
  mounts: ["ssh"],
  mountPaths: { ssh: "/mnt/ssh" },
  kvMount: "kv",
  vaultAddr: "http://127.0.0.1:8200",
  rolePath: "auth/token/create/dispatcher-runner",
  timeoutMs: 60_000,
};
/** what the runner itself inherits from Nomad and the agent: none of it may reach the formula unasked */
const base = {
  PATH: "/usr/bin:/bin",
  VAULT_ADDR: "http://127.0.0.1:8200",
  VAULT_TOKEN: "s.agents-own",
  NOMAD_TOKEN: "nomad-secret",
  NOMAD_TASK_DIR: "/local",
  NOMAD_META_issue_number: "42",
  NOMAD_META_project_toml: "projects/a.toml",
  NOMAD_META_secrets_csv: "GH_TOKEN",
  AWS_SECRET_ACCESS_KEY: "leaked",
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "formula-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** a process's state letter from /proc, or "gone" */
async function stateOf(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  return stat ? stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0]! : "gone";
}

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

async function run(script: string, over: Partial<FormulaRun> = {}): Promise<{ code?: number; error?: Error; stdout: string; stderr: string }> {
  const file = join(dir, `f-${Math.random().toString(36).slice(2)}.sh`);
  await writeFile(file, script);
  const out = sink();
  const err = sink();
  const env = formulaEnv({ meta, checkout: dir, home: dir, secrets: { GH_TOKEN: "ghp_value1234" }, token: "s.formula-own", base });
  try {
    const code = await runFormula({ script: file, cwd: dir, env, secretValues: ["ghp_value1234", "s.formula-own"], timeoutMs: 60_000, stdout: out.stream, stderr: err.stream, ...over });
    return { code, stdout: out.text(), stderr: err.text() };
  } catch (error) {
    return { error: error as Error, stdout: out.text(), stderr: err.text() };
  }
}

describe("formulaEnv", () => {
  it("holds exactly the allowlisted variables: secrets, own token, action, mounts, sidecar meta, PATH, HOME, LANG", () => {
    expect(formulaEnv({ meta, checkout: "/local/ops", home: "/local", secrets: { GH_TOKEN: "v" }, token: "s.own", base })).toEqual({
      PATH: "/usr/bin:/bin",
      HOME: "/local",
      LANG: "C.UTF-8",
      VAULT_ADDR: "http://127.0.0.1:8200",
      VAULT_TOKEN: "s.own",
      ACTION_ID: "triage-42",
      VAULT_ACTION_TOML: "/local/ops/vault/actions/triage-42.toml",
      OPS_REPO_DIR: "/local/ops",
      MOUNT_SSH: "/mnt/ssh",
      ISSUE_NUMBER: "42",
      PROJECT_TOML: "projects/a.toml",
      GH_TOKEN: "v",
    });
  });

  it("adds disinto's names when the runner gives the roots: OPS_REPO_ROOT, FACTORY_ROOT, HOME; MOUNT_<ALIAS> with - as _", () => {
    const env = formulaEnv({ meta: { ...meta, mountPaths: { "agent-data": "/home/agent/data" } }, checkout: "/local/ops", home: "/local", secrets: {}, base, roots: { factory: "/local/factory", home: "/home/agent" } });
    expect(env).toMatchObject({ OPS_REPO_DIR: "/local/ops", OPS_REPO_ROOT: "/local/ops", FACTORY_ROOT: "/local/factory", HOME: "/home/agent", MOUNT_AGENT_DATA: "/home/agent/data" });
    expect(formulaEnv({ meta, checkout: "/c", home: "/h", secrets: {}, base, roots: {} })).not.toHaveProperty("FACTORY_ROOT");
  });

  it("gives a formula without secrets no VAULT_TOKEN at all, not even the runner's", () => {
    expect(formulaEnv({ meta: { ...meta, secrets: [] }, checkout: "/c", home: "/h", secrets: {}, base }).VAULT_TOKEN).toBeUndefined();
  });
});

describe("runFormula", () => {
  it("runs the formula with only that environment, its output masked", async () => {
    const r = await run('env | cut -d= -f1 | sort | tr "\\n" " "; echo; echo "token $VAULT_TOKEN secret $GH_TOKEN"\n');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      "ACTION_ID GH_TOKEN HOME ISSUE_NUMBER LANG MOUNT_SSH OPS_REPO_DIR PATH PROJECT_TOML PWD SHLVL VAULT_ACTION_TOML VAULT_ADDR VAULT_TOKEN _ \ntoken [redacted] secret [redacted]\n",
    );
  });

  it("passes its arguments as $1 … (disinto's action id), nothing by default", async () => {
    expect((await run('echo "[$#] [$1]"\n', { args: ["deploy-7"] })).stdout).toBe("[1] [deploy-7]\n");
    expect((await run('echo "[$#]"\n')).stdout).toBe("[0]\n");
  });

  it("returns the formula's exit code", async () => {
    expect((await run("echo bad >&2\nexit 3\n")).code).toBe(3);
  });

  it("kills the formula's whole process group at the deadline and says so", async () => {
    const pidFile = join(dir, "grandchild.pid");
    const r = await run(`sleep 300 &\necho $! > ${pidFile}\necho started\nwait\n`, { timeoutMs: 500 });
    expect(r.error?.message).toBe("formula ran past its timeout of 0.5 s and was killed by the runner");
    expect(r.error?.name).toBe("TimeoutExceeded");
    expect(r.stdout).toBe("started\n");
    const grandchild = Number(await readFile(pidFile, "utf8"));
    expect(await stateOf(grandchild)).toMatch(/^(gone|Z)$/); // killed: gone, or a zombie its new parent has not reaped yet
  });

  it("is not held by a background job in a process group of its own that keeps the output pipes open: the drain is bounded", async () => {
    const pidFile = join(dir, "setm.pid");
    const started = Date.now();
    // not the task's init here (a unit test must never kill(-1)): the group is killed, the set -m job is not
    const r = await run(`set -m\nsleep 300 &\necho $! > ${pidFile}\necho bye\n`, { walls: { drainMs: 300, isInit: () => false } });
    expect(r).toEqual({ code: 0, stdout: "bye\n", stderr: "" });
    expect(Date.now() - started).toBeLessThan(5_000);
    process.kill(Number(await readFile(pidFile, "utf8")), "SIGKILL");
  });

  it("sets RLIMIT_NPROC of the formula to the node-wide ceiling", async () => {
    expect((await run("ulimit -u\n", { walls: { nodeNproc: 777, isInit: () => false } })).stdout).toBe("777\n");
  });
});

describe("wallsFromEnv", () => {
  it("reads the process limit and the node-wide ceiling, and names a bad value", () => {
    expect(wallsFromEnv({ RUNNER_MAX_PROCESSES: "64", RUNNER_NODE_NPROC: "4096" })).toMatchObject({ maxProcesses: 64, nodeNproc: 4096 });
    expect(wallsFromEnv({})).toMatchObject({ maxProcesses: 512, nodeNproc: 16384 });
    expect(() => wallsFromEnv({ RUNNER_MAX_PROCESSES: "lots" })).toThrow('RUNNER_MAX_PROCESSES must be a positive whole number, got "lots" (example: RUNNER_MAX_PROCESSES=512)');
  });
});
