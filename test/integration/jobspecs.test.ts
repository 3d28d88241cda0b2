// Every jobspec passes `nomad job validate` against the dev stack's agent.
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { stackEnv } from "../helpers/stack.js";

const dir = new URL("../../jobspecs/", import.meta.url).pathname;

/** Values for each jobspec's required variables (those without a default). */
const REQUIRED: Record<string, Record<string, string>> = {
  "runner.nomad.hcl": { vault_addr: "http://127.0.0.1:8200" },
  "dispatcher.nomad.hcl": { cli: "/opt/dispatcher/dist/dispatcher.mjs", vault_addr: "http://127.0.0.1:8200", ops_remote: "git@example.test:ops.git" },
};

function validate(file: string, vars: Record<string, string>): Promise<{ code: number; out: string }> {
  const s = stackEnv();
  const args = ["job", "validate", ...Object.entries(vars).flatMap(([k, v]) => ["-var", `${k}=${v}`]), `${dir}${file}`];
  return new Promise((resolve) => {
    execFile(s.NOMAD_BIN, args, { env: { ...process.env, NOMAD_ADDR: s.NOMAD_ADDR, NOMAD_TOKEN: s.managementToken } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

describe("jobspecs", () => {
  const files = readdirSync(dir).filter((f) => f.endsWith(".nomad.hcl")).sort();

  it("are the ones the dispatcher ships", () => {
    expect(files).toEqual(Object.keys(REQUIRED).sort());
  });

  it.each(files)("%s passes nomad job validate", async (file) => {
    const run = await validate(file, REQUIRED[file]!);
    expect(run.out.trim()).toBe("Job validation successful");
    expect(run.code).toBe(0);
  });

  it.each(["exec", "docker", "raw_exec"])("runner.nomad.hcl passes nomad job validate for driver %s, with mounts", async (driver) => {
    const run = await validate("runner.nomad.hcl", { ...REQUIRED["runner.nomad.hcl"], driver, mounts: '["gpg", "ssh"]' });
    expect(run.out.trim()).toBe("Job validation successful");
    expect(run.code).toBe(0);
  });

  it("the dispatcher needs no Docker socket and no host volume", () => {
    const text = readFileSync(`${dir}dispatcher.nomad.hcl`, "utf8");
    expect(text).not.toMatch(/docker\.sock/);
    expect(text).not.toMatch(/^\s*volume\s/m);
  });
});
