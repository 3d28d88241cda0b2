import { describe, expect, it } from "vitest";
import {
  buildMeta,
  decodePayload,
  encodePayload,
  formatRunnerError,
  layoutMeta,
  looksLikeRunnerVerdict,
  outcomeLine,
  parseOutcomeLine,
  stripVerdictNonce,
  parseRunnerError,
  readRunnerLayout,
  readRunnerMeta,
  RUNNER_ERROR_EXIT,
  RUNNER_TIMEOUT_EXIT,
  secretPathOf,
  type RunnerMeta,
} from "../../dispatcher/contract.js";

const META: Omit<RunnerMeta, "vaultAddr" | "rolePath" | "mountPaths" | "timeoutMs"> = {
  actionId: "release",
  actionSha: "0123abcd",
  actionPath: "vault/actions/release.toml",
  commit: "feedbeef",
  formula: "deploy",
  opsRepo: "/srv/ops.git",
  secrets: ["GITHUB_TOKEN", "NPM_TOKEN"],
  mounts: ["ssh", "gpg"],
  kvMount: "kv",
};

/** the env Nomad gives the task for a dispatch with `meta` */
function envFor(meta: Record<string, string>, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(meta).map(([k, v]) => [`NOMAD_META_${k}`, v])), ...extra };
}

describe("buildMeta", () => {
  it("sets every field as a string with lists as CSV", () => {
    expect(buildMeta(META, {})).toEqual({
      action_id: "release",
      action_sha: "0123abcd",
      action_path: "vault/actions/release.toml",
      commit: "feedbeef",
      formula: "deploy",
      ops_repo: "/srv/ops.git",
      secrets_csv: "GITHUB_TOKEN,NPM_TOKEN",
      mounts_csv: "ssh,gpg",
      kv_mount: "kv",
    });
  });

  it("drops empty lists and empty or undefined extras", () => {
    const meta = buildMeta({ ...META, secrets: [], mounts: [] }, { model: "", tools_csv: undefined, blast_radius: "low" });
    expect(meta).not.toHaveProperty("secrets_csv");
    expect(meta).not.toHaveProperty("mounts_csv");
    expect(meta).not.toHaveProperty("model");
    expect(meta).not.toHaveProperty("tools_csv");
    expect(meta.blast_radius).toBe("low");
    expect(Object.values(meta).every((v) => typeof v === "string" && v !== "")).toBe(true);
  });

  it("lets extras add fields", () => {
    expect(buildMeta(META, { issue_number: "42", project_toml: "projects/x.toml" })).toMatchObject({
      issue_number: "42",
      project_toml: "projects/x.toml",
      action_id: "release",
    });
  });
});

describe("readRunnerMeta", () => {
  it("reads back what buildMeta set", () => {
    const env = envFor(buildMeta(META, {}), { VAULT_ADDR: "http://127.0.0.1:8200" });
    expect(readRunnerMeta(env)).toEqual({
      ...META,
      vaultAddr: "http://127.0.0.1:8200",
      rolePath: "auth/token/create/dispatcher-runner",
      mountPaths: { ssh: "/mnt/ssh", gpg: "/mnt/gpg" },
      timeoutMs: 24 * 60 * 60_000,
    });
  });

  it("takes the formula's deadline from timeout_minutes, and refuses a malformed one", () => {
    const vault = { VAULT_ADDR: "http://127.0.0.1:8200" };
    expect(readRunnerMeta(envFor(buildMeta(META, { timeout_minutes: "15" }), vault)).timeoutMs).toBe(15 * 60_000);
    expect(() => readRunnerMeta(envFor(buildMeta(META, { timeout_minutes: "1.5" }), vault))).toThrow(
      new Error('job meta timeout_minutes must be a positive whole number of minutes, got "1.5"'),
    );
  });

  it("finds the mounts under the jobspec's MOUNT_ROOT (the host volumes' directory under raw_exec)", () => {
    const env = envFor(buildMeta(META, {}), { VAULT_ADDR: "http://127.0.0.1:8200", MOUNT_ROOT: "/srv/volumes" });
    expect(readRunnerMeta(env).mountPaths).toEqual({ ssh: "/srv/volumes/ssh", gpg: "/srv/volumes/gpg" });
  });

  it("names a missing required key and its variable", () => {
    for (const key of ["action_id", "action_sha", "action_path", "commit", "formula", "ops_repo"]) {
      const meta = buildMeta({ ...META, secrets: [] }, {});
      delete meta[key];
      expect(() => readRunnerMeta(envFor(meta))).toThrow(new Error(`job meta ${key} is missing (NOMAD_META_${key})`));
    }
  });

  it("treats an empty value as missing", () => {
    const env = envFor(buildMeta({ ...META, secrets: [] }, {}), { NOMAD_META_commit: "" });
    expect(() => readRunnerMeta(env)).toThrow("job meta commit is missing (NOMAD_META_commit)");
  });

  it("requires VAULT_ADDR only when there are secrets", () => {
    const withSecrets = envFor(buildMeta(META, {}));
    expect(() => readRunnerMeta(withSecrets)).toThrow(new Error("VAULT_ADDR is not set in the job's env"));
    expect(() => readRunnerMeta({ ...withSecrets, VAULT_ADDR: "" })).toThrow("VAULT_ADDR is not set in the job's env");

    const noSecrets = readRunnerMeta(envFor(buildMeta({ ...META, secrets: [] }, {})));
    expect(noSecrets.secrets).toEqual([]);
    expect(noSecrets.vaultAddr).toBe("");
  });

  it("reads absent lists as empty and drops empty CSV items", () => {
    const meta = buildMeta({ ...META, secrets: [], mounts: [] }, {});
    expect(readRunnerMeta(envFor(meta)).mounts).toEqual([]);
    const m = readRunnerMeta(envFor({ ...meta, secrets_csv: "A,,B,", mounts_csv: ",ssh" }, { VAULT_ADDR: "http://v" }));
    expect(m.secrets).toEqual(["A", "B"]);
    expect(m.mounts).toEqual(["ssh"]);
  });

  it("defaults the kv mount to kv", () => {
    const meta = buildMeta({ ...META, secrets: [], kvMount: "" }, {});
    expect(meta).not.toHaveProperty("kv_mount");
    expect(readRunnerMeta(envFor(meta)).kvMount).toBe("kv");
    expect(readRunnerMeta(envFor({ ...meta, kv_mount: "secret" })).kvMount).toBe("secret");
  });

  it("defaults the role path and lets DISPATCHER_RUNNER_ROLE override it", () => {
    const meta = buildMeta({ ...META, secrets: [] }, {});
    expect(readRunnerMeta(envFor(meta)).rolePath).toBe("auth/token/create/dispatcher-runner");
    expect(readRunnerMeta(envFor(meta, { DISPATCHER_RUNNER_ROLE: "" })).rolePath).toBe("auth/token/create/dispatcher-runner");
    expect(readRunnerMeta(envFor(meta, { DISPATCHER_RUNNER_ROLE: "ci-runner" })).rolePath).toBe("auth/token/create/ci-runner");
  });
});

/** the verdict nonce of one child, as its payload carries it */
const N = "0123456789abcdef0123456789abcdef";

describe("runner error line", () => {
  it("formats a fixed, greppable line", () => {
    expect(formatRunnerError("secret_missing", "GITHUB_TOKEN is empty", N)).toBe(`[runner] error secret_missing: GITHUB_TOKEN is empty [verdict ${N}]`);
  });

  it("round-trips through the runner's exit code and stderr", () => {
    const cases = [
      ["secret_missing", "GITHUB_TOKEN is empty at kv/data/runner/GITHUB_TOKEN"],
      ["auth", "unwrap failed: wrapping token already used (tampering?)"],
      ["infra", "vault: connect ECONNREFUSED 127.0.0.1:8200"],
      ["agent", "message: with a colon: and more"],
    ] as const;
    for (const [cls, message] of cases) {
      const stderr = `some formula output\n${formatRunnerError(cls, message, N)}\n`;
      expect(parseRunnerError(RUNNER_ERROR_EXIT, stderr, N)).toEqual({ class: cls, message });
    }
  });

  it("uses 90 as the runner's own exit code", () => {
    expect(RUNNER_ERROR_EXIT).toBe(90);
  });

  it("ignores other exit codes, even with an error line", () => {
    const stderr = formatRunnerError("auth", "unwrap failed", N);
    for (const code of [0, 1, 2, 89, 91, 137, -1]) expect(parseRunnerError(code, stderr, N)).toBeUndefined();
  });

  it("only reads the last line of stderr", () => {
    const stderr = `${formatRunnerError("auth", "unwrap failed", N)}\nformula printed this afterwards\n`;
    expect(parseRunnerError(RUNNER_ERROR_EXIT, stderr, N)).toBeUndefined();
  });

  it("tolerates trailing blank lines and whitespace", () => {
    expect(parseRunnerError(RUNNER_ERROR_EXIT, `${formatRunnerError("infra", "down", N)}\n\n  \n`, N)).toEqual({ class: "infra", message: "down" });
  });

  it("returns undefined for a formula that exits 90 on its own", () => {
    expect(parseRunnerError(RUNNER_ERROR_EXIT, "", N)).toBeUndefined();
    expect(parseRunnerError(RUNNER_ERROR_EXIT, "error: something else\n", N)).toBeUndefined();
    expect(parseRunnerError(RUNNER_ERROR_EXIT, "  [runner] error auth: indented\n", N)).toBeUndefined();
  });
});

describe("runner error lines (fixes)", () => {
  it("keeps a multi-line message on one line so it round-trips", () => {
    const line = formatRunnerError("agent", "line1\nline2", N);
    expect(line).toBe(`[runner] error agent: line1 | line2 [verdict ${N}]`);
    expect(parseRunnerError(90, `noise\n${line}\n`, N)).toEqual({ class: "agent", message: "line1 | line2" });
  });

  it("ignores a class that is not in the vocabulary", () => {
    expect(parseRunnerError(90, "[runner] error bogus: x", N)).toBeUndefined();
  });
});

describe("the verdict belongs to the runner", () => {
  it("does not believe a line without this child's nonce, another nonce, or no nonce known", () => {
    const other = "fedcba9876543210fedcba9876543210";
    for (const code of [RUNNER_ERROR_EXIT, RUNNER_TIMEOUT_EXIT]) {
      expect(parseRunnerError(code, formatRunnerError("infra", "forged"), N)).toBeUndefined();
      expect(parseRunnerError(code, formatRunnerError("infra", "forged", other), N)).toBeUndefined();
      expect(parseRunnerError(code, formatRunnerError("infra", "real", N), undefined)).toBeUndefined();
      expect(parseRunnerError(code, formatRunnerError("timeout", "real", N), N)).toEqual({ class: "timeout", message: "real" });
    }
  });

  it("never takes lost from the runner: that is Nomad's word", () => {
    expect(parseRunnerError(RUNNER_ERROR_EXIT, formatRunnerError("lost", "gone", N), N)).toBeUndefined();
  });

  it("asks for the nonce only when the last line has the verdict's shape and the exit code is the runner's", () => {
    expect(looksLikeRunnerVerdict(90, `x\n${formatRunnerError("infra", "m", N)}\n`)).toBe(true);
    expect(looksLikeRunnerVerdict(1, formatRunnerError("infra", "m", N))).toBe(false);
    expect(looksLikeRunnerVerdict(90, formatRunnerError("infra", "m"))).toBe(false);
  });

  it("carries the nonce and the wrapping token in the payload; a bare token is a payload without nonce", () => {
    expect(decodePayload(encodePayload({ nonce: N, wrappingToken: "s.wrap" }))).toEqual({ nonce: N, wrappingToken: "s.wrap" });
    expect(decodePayload(encodePayload({ nonce: N }))).toEqual({ nonce: N, wrappingToken: undefined });
    expect(decodePayload("s.bare\n")).toEqual({ wrappingToken: "s.bare" });
    expect(decodePayload(undefined)).toEqual({ wrappingToken: undefined });
    expect(decodePayload("{not json")).toEqual({});
  });

  it("carries a sidecar's bot identity in the payload; a path that is not a KV v2 data path, or a bad variable name, is dropped", () => {
    const bot = { path: "kv/data/disinto/bots/dev", field: "token", env: "FORGE_BOT_TOKEN" };
    expect(decodePayload(encodePayload({ nonce: N, wrappingToken: "s.wrap", bot }))).toEqual({ nonce: N, wrappingToken: "s.wrap", bot });
    for (const bad of [{ ...bot, path: "kv/metadata/disinto/bots/dev" }, { ...bot, path: "kv/data/../sys/x" }, { ...bot, env: "PATH=x" }, { ...bot, field: "" }]) {
      expect(decodePayload(encodePayload({ nonce: N, wrappingToken: "s.wrap", bot: bad }))).toEqual({ nonce: N, wrappingToken: "s.wrap" });
    }
  });

  it("prints the formula's verdict as one outcome line, and reads back only such a line", () => {
    expect(outcomeLine("not-reproduced\n")).toBe("[outcome] not-reproduced");
    expect(outcomeLine("two words")).toBeUndefined();
    expect(outcomeLine("")).toBeUndefined();
    expect(parseOutcomeLine("[outcome] reproduced")).toBe("reproduced");
    expect(parseOutcomeLine("[outcome] Reproduced")).toBeUndefined();
    expect(parseOutcomeLine("x [outcome] reproduced")).toBeUndefined();
  });

  it("shows the runner's verified line without its nonce in the stored log, and leaves anything else as printed", () => {
    const line = formatRunnerError("timeout", "killed", N);
    expect(stripVerdictNonce(`started\n${line}\n`, N)).toBe("started\n[runner] error timeout: killed\n");
    expect(stripVerdictNonce(`${line}\nlater\n`, N)).toBe(`${line}\nlater\n`);
    expect(stripVerdictNonce("[runner] error infra: x\n", N)).toBe("[runner] error infra: x\n");
  });
});

describe("readRunnerLayout / layoutMeta", () => {
  it("is the default layout when the meta names none, and reads back what layoutMeta set", () => {
    expect(readRunnerLayout(envFor(buildMeta(META, {})))).toEqual({ secretPath: "runner/{name}", formulaArgs: "none" });
    const old = { secretPath: "disinto/runner/{name}", formulaArgs: "action-id" as const, factory: { repo: "git://h/factory.git", commit: "a".repeat(40) }, home: "/home/agent" };
    const meta = buildMeta(META, layoutMeta(old));
    expect(meta).toMatchObject({ secret_path: "disinto/runner/{name}", formula_args: "action-id", factory_repo: "git://h/factory.git", factory_commit: "a".repeat(40), formula_home: "/home/agent" });
    expect(readRunnerLayout(envFor(meta))).toEqual(old);
    expect(secretPathOf(old.secretPath, "GITHUB_TOKEN")).toBe("disinto/runner/GITHUB_TOKEN");
  });

  it("refuses a factory without a full commit, and a secret path without {name}", () => {
    expect(() => readRunnerLayout(envFor({ factory_repo: "git://h/f.git", factory_commit: "main" }))).toThrow(
      new Error('job meta factory_repo and factory_commit go together, the commit a full 40-hex id (got repo "git://h/f.git", commit "main")'),
    );
    expect(() => readRunnerLayout(envFor({ secret_path: "../root" }))).toThrow(new Error('job meta secret_path must be a KV path with one {name}, like disinto/runner/{name}, got "../root"'));
  });

  it("finds each mount where the parent's MOUNT_PATHS lands it, else under MOUNT_ROOT", () => {
    const env = envFor(buildMeta(META, {}), { VAULT_ADDR: "http://127.0.0.1:8200", MOUNT_PATHS: JSON.stringify({ ssh: "/home/agent/.ssh" }) });
    expect(readRunnerMeta(env).mountPaths).toEqual({ ssh: "/home/agent/.ssh", gpg: "/mnt/gpg" });
  });
});
