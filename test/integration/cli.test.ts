// The CLI as operators run it: help, exit codes, validate for the ops repo's CI, config errors.
import { execFile } from "node:child_process";
import { mkdtemp, mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const cli = new URL("../../dist/dispatcher.mjs", import.meta.url).pathname;

async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("dispatcher CLI", () => {
  it("lists its commands and exit codes on --help", async () => {
    const r = await run(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: dispatcher <command> \[options\]/);
    for (const c of ["run", "once", "validate"]) expect(r.stdout).toMatch(new RegExp(`^  ${c} +\\S`, "m"));
    expect(r.stdout).toContain(
      "Exit codes: 0 ok, 1 failed/invalid (logs -f: the task's exit code), 2 usage or config error, 3 engine or push failure, 70 internal error, 130 interrupted.",
    );
  });

  it("exits 2 on an unknown command, naming it", async () => {
    const r = await run(["dispach"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('dispatcher: unknown command "dispach" (commands: run, once, plan, status, logs, doctor, jobs, validate, migrate-check; see dispatcher --help)\n');
  });

  it("validates a directory: one line per problem, exit 1 when any file is invalid", async () => {
    const repo = await mkdtemp(join(tmpdir(), "validate-"));
    await mkdir(join(repo, "vault/actions"), { recursive: true });
    await mkdir(join(repo, "formulas"));
    await writeFile(join(repo, "formulas/deploy.sh"), "#!/bin/sh\n");
    await writeFile(join(repo, "vault/actions/good.toml"), 'id = "good"\nformula = "deploy"\ncontext = "x"\nsecrets = ["GITHUB_TOKEN"]\n');
    await writeFile(join(repo, "vault/actions/bad.toml"), 'id = "bad"\nformula = "deploi"\ncontext = "x"\nsecrets = ["GITHB_TOKEN"]\n');
    await writeFile(join(repo, "vault/actions/bad.result.json"), "{}");
    const dir = join(repo, "vault/actions");
    const r = await run(["validate", "--secrets", "GITHUB_TOKEN,NPM_TOKEN", dir]);
    expect(r.code).toBe(1);
    expect(r.stdout.split("\n")).toEqual([
      `${dir}/bad.toml: formula "deploi" has no formulas/deploi.sh in the ops repo (have: deploy)`,
      `${dir}/bad.toml: secrets[0] "GITHB_TOKEN" is not a known secret (known: GITHUB_TOKEN, NPM_TOKEN)`,
      `${dir}/good.toml: ok`,
      "1 valid, 1 invalid",
      "",
    ]);
    expect((await run(["validate", "--secrets", "GITHUB_TOKEN", join(dir, "good.toml")])).code).toBe(0);
  });

  it("exits 2 with the variable's name when the config is incomplete", async () => {
    const r = await run(["once"], { DISPATCHER_OPS_REMOTE: "/nowhere" });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      "dispatcher: VAULT_TOKEN (not set): is required: the dispatcher's own Vault login (policy service-dispatcher, never root): DISPATCHER_VAULT_ROLE_ID_FILE and DISPATCHER_VAULT_SECRET_ID_FILE (AppRole), DISPATCHER_VAULT_TOKEN_FILE, or VAULT_TOKEN\n",
    );
  });

  it("exits 2 naming the variable of a bad number", async () => {
    const r = await run(["once"], { DISPATCHER_OPS_REMOTE: "/nowhere", VAULT_TOKEN: "x", DISPATCHER_MAX_IN_FLIGHT: "lots" });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("dispatcher: DISPATCHER_MAX_IN_FLIGHT: Invalid input: expected number, received NaN\n");
  });
});
