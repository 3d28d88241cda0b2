// dispatcher doctor on the real stack: all ok; OpenBao unreachable; a dispatcher token that could
// read a secret (doctor fails, run refuses to start).
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runGit } from "../../dispatcher/opsrepo/exec.js";
import { cliEnv, runCli } from "../helpers/cli.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { grantSecret, stackEnv, uniq } from "../helpers/stack.js";

const u = uniq();
const SECRET = `DOCTOR_${u.toUpperCase()}`;
const engines = Object.fromEntries(
  readFileSync(new URL("../../scripts/engines.env", import.meta.url), "utf8")
    .split("\n")
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]),
);

let remote: OpsRemote;
let env: Record<string, string>;
let tip: string;

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

beforeAll(async () => {
  await grantSecret(SECRET, `value-${uniq()}`);
  remote = await createOpsRemote({ "formulas/noop.sh": "#!/usr/bin/env bash\n" });
  tip = (await runGit(remote.remote, ["rev-parse", "main"])).toString("utf8").trim();
  env = await cliEnv(remote.remote, { DISPATCHER_SECRETS: `DEMO_TOKEN,${SECRET}` });
});

afterAll(async () => {
  await remote?.cleanup();
});

describe("dispatcher doctor", () => {
  it("passes on the dev stack, one ok line per check", async () => {
    const s = stackEnv();
    const run = await runCli(["doctor"], env);
    // a fresh AppRole login: 3600 s, or a second less by the time it is looked up
    const ttl = /token TTL (\d+) s, renewed at half/.exec(run.stdout)?.[1];
    expect(Number(ttl)).toBeGreaterThanOrEqual(3598);
    expect(run.stdout).toBe(
      [
        `ok nomad: ${s.NOMAD_ADDR} reachable, version ${engines.NOMAD_VERSION}`,
        "ok jobspec runner: 24 parents (one per class (default, big, docker) and mount set) registered as pinned",
        "ok jobspec sidecar: 24 parents (one per class (default, big, docker) and mount set) registered as pinned",
        "ok host volumes: ssh, gpg, sops offered",
        "ok class big: node pool big offers ssh",
        "ok class docker: node pool docker offers ssh, gpg, sops",
        `ok openbao: ${s.VAULT_ADDR} reachable, version ${engines.BAO_VERSION}`,
        `ok vault login: AppRole at auth/approle (role_id ${s.DISPATCHER_VAULT_ROLE_ID_FILE}, secret_id ${s.DISPATCHER_VAULT_SECRET_ID_FILE}): token TTL ${ttl} s, renewed at half`,
        "ok token role: the dispatcher's token can create tokens on auth/token/create/dispatcher-runner",
        "ok secret isolation: the dispatcher's token cannot read any of the 2 known secrets under kv/data/runner/",
        `ok runner policies: runner-demo_token, runner-${SECRET.toLowerCase()} present`,
        `ok ops repo: ${remote.remote} reachable, main at ${tip.slice(0, 12)}`,
        "",
      ].join("\n"),
    );
    expect(run.code).toBe(0);
  });

  it("fails with a clear line when OpenBao is unreachable", async () => {
    const port = await closedPort();
    const run = await runCli(["doctor"], { ...env, VAULT_ADDR: `http://127.0.0.1:${port}` });
    expect(run.code).toBe(1);
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines.filter((l) => l.startsWith("fail "))).toEqual([
      `fail openbao: vault: read health of http://127.0.0.1:${port} failed (ECONNREFUSED); fix: start OpenBao (or Vault) or set VAULT_ADDR to a reachable, unsealed server`,
    ]);
    // the token checks need OpenBao: not run, not reported
    expect(lines.map((l) => l.split(":")[0])).toEqual(["ok nomad", "ok jobspec runner", "ok jobspec sidecar", "ok host volumes", "ok class big", "ok class docker", "fail openbao", "ok ops repo"]);
  });

  it("fails when the dispatcher's token could read a secret, and run refuses to start", async () => {
    const s = stackEnv();
    const res = await fetch(`${s.VAULT_ADDR}/v1/auth/token/create`, {
      method: "POST",
      headers: { "X-Vault-Token": s.rootToken },
      body: JSON.stringify({ policies: ["service-dispatcher", `runner-${SECRET.toLowerCase()}`], ttl: "10m" }),
    });
    const leaky = ((await res.json()) as { auth: { client_token: string } }).auth.client_token;
    const isolation = `fail secret isolation: the dispatcher's token can read kv/data/runner/${SECRET} (capabilities: read); fix: use a token with only the service-dispatcher policy, never root or a runner-* policy`;

    const doctor = await runCli(["doctor"], { ...env, VAULT_TOKEN: leaky });
    expect(doctor.code).toBe(1);
    expect(doctor.stdout.split("\n").filter((l) => l.startsWith("fail "))).toEqual([isolation]);

    const run = await runCli(["run"], { ...env, VAULT_TOKEN: leaky });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${isolation}\n`);
    expect(run.stderr.endsWith("dispatcher: refusing to start: secret isolation failed (see the fail lines above)\n")).toBe(true);
  });
});
