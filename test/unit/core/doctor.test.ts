import { describe, expect, it } from "vitest";
import { formatChecks, runChecks, type DoctorDeps } from "../../../dispatcher/core/doctor.js";

// Engine answers as plain functions: what each check concludes from them, and which are fatal.
function deps(over: { nomad?: Partial<DoctorDeps["nomad"]>; vault?: Partial<DoctorDeps["vault"]>; remoteTip?: DoctorDeps["remoteTip"] } = {}): DoctorDeps {
  return {
    nomad: {
      agentVersion: async () => "1.6.3",
      jobSummary: async (id) => (id === "runner" ? { ParameterizedJob: {} } : undefined),
      hostVolumes: async () => new Map([["ssh", "/srv/ssh"]]),
      ...over.nomad,
    },
    vault: {
      version: async () => "2.4.0",
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
      role: "dispatcher-runner",
      kvMount: "kv",
      knownSecrets: ["A", "B"],
      hostVolumes: { ssh: "ssh", gpg: "gpg", sops: "deploy-sops" },
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
        "ok jobspec runner: registered, parameterized",
        'fail jobspec sidecar: job "sidecar" is not registered; fix: register it: nomad job run -var entrypoint=... -var vault_addr=... jobspecs/sidecar.nomad.hcl',
        'fail host volumes: gpg, sops (host volume deploy-sops) not offered by any ready node (offered: ssh); actions asking for them are refused; fix: declare host_volume "gpg" in the Nomad client config',
        "ok openbao: http://v:8200 reachable, version 2.4.0",
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
      "ok token role (fatal)",
      "ok secret isolation (fatal)",
      "fail runner policies",
      "fail ops repo (fatal)",
    ]);
    expect(formatChecks(checks).split("\n").at(-2)).toBe(
      "fail ops repo: cannot reach /ops.git: fatal: nope fatal: Could not read; fix: check DISPATCHER_OPS_REMOTE and the dispatcher's git credentials",
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
});
