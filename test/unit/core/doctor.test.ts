import { describe, expect, it } from "vitest";
import { formatChecks, runChecks, type DoctorDeps } from "../../../dispatcher/core/doctor.js";
import { buildPinFile } from "../../../dispatcher/core/pins.js";
import { parentJobsOf } from "../../../dispatcher/core/request.js";

// every runner parent registered as pinned; no sidecar parent registered at all
const specOf = (job: string) => ({ ID: job, Namespace: "dispatch", TaskGroups: [{ Name: "runner", Tasks: [{ Name: "runner", Driver: "exec", User: "nobody" }] }] });
const pins = buildPinFile(new Map(parentJobsOf("runner").map((j) => [j, specOf(j)])), new Date("2026-01-01T00:00:00Z"));

// Engine answers as plain functions: what each check concludes from them, and which are fatal.
function deps(over: { nomad?: Partial<DoctorDeps["nomad"]>; vault?: Partial<DoctorDeps["vault"]>; remoteTip?: DoctorDeps["remoteTip"] } = {}): DoctorDeps {
  return {
    nomad: {
      agentVersion: async () => "1.6.3",
      parentSpec: async (id) => (id.startsWith("runner") ? specOf(id) : undefined),
      hostVolumes: async () => new Map([["ssh", "/srv/ssh"]]),
      ...over.nomad,
    },
    vault: {
      version: async () => "2.4.0",
      login: async () => ({ method: "AppRole at auth/approle (role_id /r, secret_id /s)", ttlSeconds: 3600 }),
      capabilities: async (paths) => Object.fromEntries(paths.map((p) => [p, p.startsWith("auth/") ? ["create", "update"] : ["deny"]])),
      missingPolicies: async (p) => p.filter((x) => x === "runner-b"),
      ...over.vault,
    },
    remoteTip: over.remoteTip ?? (async () => "0123456789abcdef0123"),
    settings: {
      nomadAddr: "http://n:4646",
      vaultAddr: "http://v:8200",
      runnerJob: "runner",
      sidecarJob: "sidecar",
      pins,
      role: "dispatcher-runner",
      kvMount: "kv",
      knownSecrets: ["A", "B"],
      hostVolumes: { ssh: "ssh", gpg: "gpg", sops: "deploy-sops" },
      classes: [],
      remote: "/ops.git",
      branch: "main",
    },
  };
}

describe("runChecks", () => {
  it("reports each check, with the fix on failures and only non-fatal ones failing here", async () => {
    const checks = await runChecks(deps());
    expect(formatChecks(checks)).toBe(
      [
        "ok nomad: http://n:4646 reachable, version 1.6.3",
        "ok jobspec runner: 8 parents (one per mount set) registered as pinned",
        'fail jobspec sidecar: job "sidecar" is not pinned (pinned: runner, runner-gpg, runner-gpg-sops, runner-gpg-sops-ssh, runner-gpg-ssh, runner-sops, runner-sops-ssh, runner-ssh); re-run `dispatcher jobs pin` (and 7 more parents); fix: register the parents from jobspecs/runner.nomad.hcl with scripts/register-jobs.sh (it pins them), or run `dispatcher jobs pin` if the change is intended',
        'fail host volumes: gpg, sops (host volume deploy-sops) not offered by any ready node (offered: ssh); actions asking for them are refused; fix: declare host_volume "gpg" in the Nomad client config',
        "ok openbao: http://v:8200 reachable, version 2.4.0",
        "ok vault login: AppRole at auth/approle (role_id /r, secret_id /s): token TTL 3600 s, renewed at half",
        "ok token role: the dispatcher's token can create tokens on auth/token/create/dispatcher-runner",
        "ok secret isolation: the dispatcher's token cannot read any of the 2 known secrets under kv/data/runner/",
        "fail runner policies: missing runner-b (secret B); actions asking for them fail as secret_unknown; fix: run scripts/bootstrap-vault.sh with B in its secrets file",
        "ok ops repo: /ops.git reachable, main at 0123456789ab",
        "",
      ].join("\n"),
    );
    expect(checks.filter((c) => !c.ok && c.fatal)).toEqual([]);
  });

  it("skips what depends on an unreachable engine, and folds multi-line errors into one line", async () => {
    const checks = await runChecks(
      deps({
        nomad: { agentVersion: async () => Promise.reject(new Error("nomad: GET /v1/agent/self failed: ECONNREFUSED")) },
        remoteTip: async () => Promise.reject(new Error("cannot reach /ops.git: fatal: nope\nfatal: Could not read\n")),
      }),
    );
    expect(checks.map((c) => `${c.ok ? "ok" : "fail"} ${c.name}${c.fatal ? " (fatal)" : ""}`)).toEqual([
      "fail nomad (fatal)",
      "ok openbao (fatal)",
      "ok vault login (fatal)",
      "ok token role (fatal)",
      "ok secret isolation (fatal)",
      "fail runner policies",
      "fail ops repo (fatal)",
    ]);
    expect(formatChecks(checks).split("\n").at(-2)).toBe(
      "fail ops repo: cannot reach /ops.git: fatal: nope fatal: Could not read; fix: check DISPATCHER_OPS_REMOTE is reachable",
    );
  });

  it("fails secret isolation, fatally, when the token can read a known secret", async () => {
    const checks = await runChecks(deps({ vault: { capabilities: async (paths) => Object.fromEntries(paths.map((p) => [p, ["read", "create"]])) } }));
    expect(checks.find((c) => c.name === "secret isolation")).toMatchObject({
      ok: false,
      fatal: true,
      detail: "the dispatcher's token can read kv/data/runner/A (capabilities: read, create), kv/data/runner/B (capabilities: read, create)",
    });
  });

  it("follows vault.secret_path, and fails runner policies that read another layout's path (every run would fail secret_missing)", async () => {
    const old = deps({
      vault: {
        missingPolicies: async () => [],
        // A's policy was written for the old layout, B's for the runner/ one
        policyRules: async (p) => (p === "runner-a" ? 'path "kv/data/disinto/runner/A" {\n  capabilities = ["read"]\n}\n' : 'path "kv/data/runner/B" {\n  capabilities = ["read"]\n}\n'),
      },
    });
    const lines = formatChecks(await runChecks({ ...old, settings: { ...old.settings, secretPath: "disinto/runner/{name}" } })).split("\n");
    expect(lines.filter((l) => / (secret isolation|runner policies):/.test(l))).toEqual([
      "ok secret isolation: the dispatcher's token cannot read any of the 2 known secrets under kv/data/disinto/runner/",
      'fail runner policies: runner-b does not read kv/data/disinto/runner/B; its runner gets a token that cannot read the secret and fails as secret_missing; fix: write the policies for vault.secret_path = "disinto/runner/{name}" (DISPATCHER_SECRET_PATH=… scripts/bootstrap-vault.sh), or set vault.secret_path to where they read',
    ]);
  });
});
