import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { defaults, deprecatedSettings, forgeOutboxOf, formulaMountsOf, formulaSecretsOf, fromEnv, fromFile, loadConfig, logOptionsOf, runnerLayoutOf } from "../../../dispatcher/config.js";
import { ConfigInvalid } from "../../../dispatcher/errors.js";

let dir: string;
let file: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "dispatcher-config-"));
  file = join(dir, "dispatcher.toml");
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** the two values with no usable default */
const REQUIRED = { VAULT_TOKEN: "svc-token", DISPATCHER_OPS_REMOTE: "/srv/ops.git" };

function configError(fn: () => unknown): ConfigInvalid {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigInvalid);
    expect((err as ConfigInvalid).class).toBe("config");
    return err as ConfigInvalid;
  }
  throw new Error("expected a ConfigInvalid");
}

describe("defaults", () => {
  it("fills every setting but the token and the remote", () => {
    const c = loadConfig({ env: REQUIRED, cwd: "/srv/app" });
    expect(c).toMatchObject({
      nomad: { addr: "http://127.0.0.1:4646", runnerJob: "runner", sidecarJob: "sidecar" },
      vault: { addr: "http://127.0.0.1:8200", token: "svc-token", role: "dispatcher-runner", kvMount: "kv", wrapTtlSeconds: 300, tokenGraceSeconds: 300 },
      repo: {
        remote: "/srv/ops.git",
        branch: "main",
        workdir: "/srv/app/.dispatcher/ops",
        actionsDir: "vault/actions",
        authorName: "nomad-dispatcher",
        authorEmail: "dispatcher@localhost",
      },
      secrets: [],
      limits: { maxInFlight: 4, serializeBy: "formula" },
      timeouts: { defaultMinutes: 60, placementSeconds: 300 },
      pollSeconds: 30,
      leaseSeconds: 60,
      logs: { tailBytes: 4096, maxBytes: 1_048_576, format: "auto", file: "" },
      instance: `${hostname()}-${process.pid}`,
    });
  });

  it("places the workdir under the given cwd", () => {
    expect((defaults("/x/y").repo as { workdir: string }).workdir).toBe("/x/y/.dispatcher/ops");
  });

  it("names both missing required values, one line each", () => {
    const err = configError(() => loadConfig({ env: {} }));
    expect(err.message).toBe(
      "VAULT_TOKEN (not set): is required: the dispatcher's own Vault login (policy service-dispatcher, never root): DISPATCHER_VAULT_ROLE_ID_FILE and DISPATCHER_VAULT_SECRET_ID_FILE (AppRole), DISPATCHER_VAULT_TOKEN_FILE, or VAULT_TOKEN\n" +
        "DISPATCHER_OPS_REMOTE (not set): is required: the ops repo's git URL or path",
    );
  });

  it("does not read process.env when an env object is given", () => {
    const c = loadConfig({ env: { ...REQUIRED }, cwd: "/srv" });
    expect(c.nomad.addr).toBe("http://127.0.0.1:4646");
    expect(c.nomad.token).toBeUndefined();
  });
});

describe("deprecated settings", () => {
  it("accepts the push timing settings group commit replaced, ignores them and names each one set", () => {
    expect(deprecatedSettings(loadConfig({ env: REQUIRED }))).toEqual([]);
    const c = loadConfig({ env: { ...REQUIRED, DISPATCHER_PUSH_INTERVAL_MS: "5000", DISPATCHER_COMMIT_WINDOW_MS: "200" } });
    expect(deprecatedSettings(c)).toEqual([
      "DISPATCHER_COMMIT_WINDOW_MS (repo.commit_window_ms) is deprecated and ignored: a push starts as soon as a result waits and no push runs; what finishes during a push joins the next",
      "DISPATCHER_PUSH_INTERVAL_MS (repo.push_interval_ms) is deprecated and ignored: a push starts as soon as a result waits and no push runs; what finishes during a push joins the next",
    ]);
    // still checked as before: a bad value names its variable
    expect(configError(() => loadConfig({ env: { ...REQUIRED, DISPATCHER_PUSH_INTERVAL_MS: "soon" } })).message).toContain("DISPATCHER_PUSH_INTERVAL_MS");
  });
});

describe("file layer", () => {
  it("reads snake_case TOML keys into the camelCase tree and overrides defaults", () => {
    writeFileSync(
      file,
      [
        'secrets = ["GITHUB_TOKEN", "NPM_TOKEN"]',
        "poll_seconds = 5",
        'instance = "from-file"',
        "[nomad]",
        'addr = "http://nomad.internal:4646"',
        'runner_job = "runner-prod"',
        "[vault]",
        'kv_mount = "secret"',
        "wrap_ttl_seconds = 60",
        "[repo]",
        'remote = "git@example.test:ops.git"',
        'actions_dir = "ops/actions"',
        'author_name = "Bot"',
        "[limits]",
        "max_in_flight = 2",
        'serialize_by = "id"',
        "[logs]",
        "tail_bytes = 100",
      ].join("\n"),
    );
    const c = loadConfig({ file, env: { VAULT_TOKEN: "t" } });
    expect(c.secrets).toEqual(["GITHUB_TOKEN", "NPM_TOKEN"]);
    expect(c.pollSeconds).toBe(5);
    expect(c.instance).toBe("from-file");
    expect(c.nomad).toEqual({ addr: "http://nomad.internal:4646", runnerJob: "runner-prod", sidecarJob: "sidecar", pins: "", ledgerPrefix: "dispatcher", purgeAfterSeconds: 0, classes: [] });
    expect(c.vault.kvMount).toBe("secret");
    expect(c.vault.wrapTtlSeconds).toBe(60);
    expect(c.vault.tokenGraceSeconds).toBe(300); // untouched sibling keeps its default
    expect(c.repo.remote).toBe("git@example.test:ops.git");
    expect(c.repo.actionsDir).toBe("ops/actions");
    expect(c.repo.authorName).toBe("Bot");
    expect(c.repo.branch).toBe("main");
    expect(c.limits).toEqual({ maxInFlight: 2, serializeBy: "id" });
    expect(c.logs).toEqual({ tailBytes: 100, maxBytes: 1_048_576, format: "auto", file: "" });
  });

  it("fromFile converts nested keys", () => {
    writeFileSync(file, "[timeouts]\ndefault_minutes = 10\nplacement_seconds = 20\n");
    expect(fromFile(file)).toEqual({ timeouts: { defaultMinutes: 10, placementSeconds: 20 } });
  });

  it("keeps formula names of [formula_secrets] as written and says where the allowlist lives", () => {
    writeFileSync(file, '[formula_secrets]\nrotate_keys = ["DEPLOY_KEY"]\nrelease = []\n');
    const c = loadConfig({ file, env: REQUIRED });
    expect(c.formulaSecrets).toEqual({ rotate_keys: ["DEPLOY_KEY"], release: [] });
    const allowlist = formulaSecretsOf(c)!;
    expect([...allowlist.allowed.get("rotate_keys")!]).toEqual(["DEPLOY_KEY"]);
    expect(allowlist.source).toBe(`[formula_secrets] in ${file}`);
    expect(formulaSecretsOf(loadConfig({ env: REQUIRED }))).toBeUndefined();
  });

  it("reads [formula_mounts] with formula names as written, and names a mount that is not one", () => {
    writeFileSync(file, '[formula_mounts]\nrotate_keys = ["ssh", "gpg"]\nrelease = []\n');
    const allowlist = formulaMountsOf(loadConfig({ file, env: REQUIRED }))!;
    expect([...allowlist.allowed.get("rotate_keys")!]).toEqual(["ssh", "gpg"]);
    expect(allowlist.source).toBe(`[formula_mounts] in ${file}`);
    expect(formulaMountsOf(loadConfig({ env: REQUIRED }))).toBeUndefined();
    writeFileSync(file, '[formula_mounts]\nrelease = ["docker"]\n');
    expect(configError(() => loadConfig({ file, env: REQUIRED })).message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(formula_mounts\\.release\\.0\\): `));
  });

  it("names the file and formula of a bad secret in [formula_secrets]", () => {
    writeFileSync(file, '[formula_secrets]\nrelease = ["lower"]\n');
    expect(configError(() => loadConfig({ file, env: REQUIRED })).message).toBe(`${file} (formula_secrets.release.0): must be UPPER_SNAKE_CASE like GITHUB_TOKEN`);
  });

  it("is taken from DISPATCHER_CONFIG when no file option is given", () => {
    writeFileSync(file, "poll_seconds = 7\n");
    expect(loadConfig({ env: { ...REQUIRED, DISPATCHER_CONFIG: file } }).pollSeconds).toBe(7);
  });

  it("an explicit file option wins over DISPATCHER_CONFIG", () => {
    writeFileSync(file, "poll_seconds = 7\n");
    const other = join(dir, "other.toml");
    writeFileSync(other, "poll_seconds = 8\n");
    expect(loadConfig({ file, env: { ...REQUIRED, DISPATCHER_CONFIG: other } }).pollSeconds).toBe(7);
  });

  it("names the file and the snake_case key of a bad value", () => {
    writeFileSync(file, '[limits]\nmax_in_flight = 0\nserialize_by = "bogus"\n');
    const err = configError(() => loadConfig({ file, env: REQUIRED }));
    expect(err.message).toBe(
      `${file} (limits.max_in_flight): Too small: expected number to be >0\n` +
        `${file} (limits.serialize_by): Invalid option: expected one of "formula"|"id"|"none"`,
    );
  });

  it("names the file for a bad URL and a bad secret name", () => {
    writeFileSync(file, '[vault]\naddr = "not a url"\n');
    expect(configError(() => loadConfig({ file, env: REQUIRED })).message).toBe(`${file} (vault.addr): Invalid URL`);
    writeFileSync(file, 'secrets = ["GITHUB_TOKEN", "npm_token"]\n');
    expect(configError(() => loadConfig({ file, env: REQUIRED })).message).toBe(
      `${file} (secrets.1): must be UPPER_SNAKE_CASE like GITHUB_TOKEN`,
    );
  });

  it("takes the log's format and file from the environment, and names the variable of a bad format", () => {
    const c = loadConfig({ env: { ...REQUIRED, DISPATCHER_LOG_FORMAT: "pretty", DISPATCHER_LOG_FILE: "/var/log/dispatcher.log" } });
    expect(c.logs).toEqual({ tailBytes: 4096, maxBytes: 1_048_576, format: "pretty", file: "/var/log/dispatcher.log" });
    expect(logOptionsOf(c.logs)).toEqual({ pretty: true, file: "/var/log/dispatcher.log" });
    expect(logOptionsOf(loadConfig({ env: { ...REQUIRED, DISPATCHER_LOG_FORMAT: "json" } }).logs)).toEqual({ pretty: false });
    // auto: the terminal decides
    expect(logOptionsOf(loadConfig({ env: REQUIRED }).logs)).toEqual({});
    expect(configError(() => loadConfig({ env: { ...REQUIRED, DISPATCHER_LOG_FORMAT: "text" } })).message).toBe(
      'DISPATCHER_LOG_FORMAT: Invalid option: expected one of "auto"|"json"|"pretty"',
    );
  });

  it("rejects an unknown key in a section, naming the file and the key as written", () => {
    writeFileSync(file, "[limits]\nmax_in_flight = 2\nmax_jobs = 3\n");
    expect(configError(() => loadConfig({ file, env: REQUIRED })).message).toBe(`${file} (limits.max_jobs): unknown key`);
  });

  it("rejects an unknown top-level key and an unknown section", () => {
    writeFileSync(file, "poll_secs = 3\n");
    expect(configError(() => loadConfig({ file, env: REQUIRED })).message).toBe(`${file} (poll_secs): unknown key`);
    writeFileSync(file, "[consul]\naddr = \"http://x\"\n");
    expect(configError(() => loadConfig({ file, env: REQUIRED })).message).toBe(`${file} (consul): unknown key`);
  });

  it("blames the flag, not the file, for a bad value the flag set", () => {
    writeFileSync(file, "poll_seconds = 10\n");
    expect(configError(() => loadConfig({ file, env: REQUIRED, flags: { pollSeconds: 0 } })).message).toBe(
      "flag (pollSeconds): Too small: expected number to be >0",
    );
  });

  it("fails on an unreadable file with its path and the errno code", () => {
    const missing = join(dir, "nope.toml");
    const err = configError(() => loadConfig({ file: missing, env: REQUIRED }));
    expect(err.message).toBe(`${missing}: cannot read config file (ENOENT)`);
    expect((err as Error & { cause?: { code?: string } }).cause?.code).toBe("ENOENT");
    expect(configError(() => fromFile(dir)).message).toBe(`${dir}: cannot read config file (EISDIR)`);
  });

  it("fails on invalid TOML with the path and the first line of the parser's message", () => {
    writeFileSync(file, "poll_seconds = \n");
    const err = configError(() => loadConfig({ file, env: REQUIRED }));
    expect(err.message).toBe(
      `${file}: not valid TOML: Unexpected character, expecting string, number, datetime, boolean, inline array or inline table at row 1, col 17, pos 16:`,
    );
    expect(err.message).not.toContain("\n");
    expect((err as Error).cause).toBeInstanceOf(Error);
  });
});

describe("environment layer", () => {
  it("maps each variable to its setting", () => {
    const layer = fromEnv({
      NOMAD_ADDR: "http://n:4646",
      NOMAD_TOKEN: "nt",
      NOMAD_NAMESPACE: "ops",
      NOMAD_REGION: "eu",
      VAULT_ADDR: "http://v:8200",
      VAULT_TOKEN: "vt",
      DISPATCHER_OPS_REMOTE: "/r",
      DISPATCHER_OPS_BRANCH: "prod",
      DISPATCHER_WORKDIR: "/w",
      DISPATCHER_SECRETS: "A,B",
      DISPATCHER_MAX_IN_FLIGHT: "3",
      DISPATCHER_POLL_SECONDS: "9",
      DISPATCHER_INSTANCE: "i-1",
      UNRELATED: "x",
    });
    expect(layer).toEqual({
      nomad: { addr: "http://n:4646", token: "nt", namespace: "ops", region: "eu" },
      vault: { addr: "http://v:8200", token: "vt" },
      repo: { remote: "/r", branch: "prod", workdir: "/w" },
      secrets: ["A", "B"],
      limits: { maxInFlight: "3" },
      pollSeconds: "9",
      instance: "i-1",
    });
  });

  it("ignores empty variables", () => {
    expect(fromEnv({ NOMAD_ADDR: "", VAULT_TOKEN: "" })).toEqual({});
  });

  it("overrides the file", () => {
    writeFileSync(
      file,
      'secrets = ["FROM_FILE"]\n[nomad]\naddr = "http://file:4646"\n[vault]\ntoken = "file-token"\n[limits]\nmax_in_flight = 2\n[repo]\nremote = "/file"\n',
    );
    const c = loadConfig({
      file,
      env: {
        NOMAD_ADDR: "http://env:4646",
        VAULT_TOKEN: "env-token",
        DISPATCHER_SECRETS: "GITHUB_TOKEN, NPM_TOKEN,,",
        DISPATCHER_MAX_IN_FLIGHT: "7",
      },
    });
    expect(c.nomad.addr).toBe("http://env:4646");
    expect(c.vault.token).toBe("env-token");
    expect(c.secrets).toEqual(["GITHUB_TOKEN", "NPM_TOKEN"]);
    expect(c.limits).toEqual({ maxInFlight: 7, serializeBy: "formula" });
    expect(c.repo.remote).toBe("/file");
  });

  it("names the variable of a non-numeric DISPATCHER_MAX_IN_FLIGHT", () => {
    const err = configError(() => loadConfig({ env: { ...REQUIRED, DISPATCHER_MAX_IN_FLIGHT: "abc" } }));
    expect(err.message.startsWith("DISPATCHER_MAX_IN_FLIGHT: ")).toBe(true);
    expect(err.message).toBe("DISPATCHER_MAX_IN_FLIGHT: Invalid input: expected number, received NaN");
  });

  it("names the variable even when a file is given", () => {
    writeFileSync(file, "[limits]\nmax_in_flight = 2\n");
    expect(configError(() => loadConfig({ file, env: { ...REQUIRED, DISPATCHER_MAX_IN_FLIGHT: "0" } })).message).toBe(
      "DISPATCHER_MAX_IN_FLIGHT: Too small: expected number to be >0",
    );
  });

  it("names the variable of a bad URL, a bad poll interval and a bad secret in the csv", () => {
    expect(configError(() => loadConfig({ env: { ...REQUIRED, NOMAD_ADDR: "not a url" } })).message).toBe("NOMAD_ADDR: Invalid URL");
    expect(configError(() => loadConfig({ env: { ...REQUIRED, DISPATCHER_POLL_SECONDS: "1.5" } })).message).toBe(
      "DISPATCHER_POLL_SECONDS: Invalid input: expected int, received number",
    );
    expect(configError(() => loadConfig({ env: { ...REQUIRED, DISPATCHER_SECRETS: "GITHUB_TOKEN,npm" } })).message).toBe(
      "DISPATCHER_SECRETS: must be UPPER_SNAKE_CASE like GITHUB_TOKEN",
    );
  });
});

describe("flags layer", () => {
  it("overrides env and file", () => {
    writeFileSync(file, "poll_seconds = 5\n[limits]\nmax_in_flight = 2\n");
    const c = loadConfig({
      file,
      env: { ...REQUIRED, DISPATCHER_MAX_IN_FLIGHT: "7", NOMAD_ADDR: "http://env:4646" },
      flags: { limits: { maxInFlight: 1 }, nomad: { addr: "http://flag:4646" }, pollSeconds: 2 },
    });
    expect(c.limits).toEqual({ maxInFlight: 1, serializeBy: "formula" });
    expect(c.nomad.addr).toBe("http://flag:4646");
    expect(c.pollSeconds).toBe(2);
  });

  it("replaces arrays instead of merging them", () => {
    const c = loadConfig({ env: { ...REQUIRED, DISPATCHER_SECRETS: "A_1,B_2" }, flags: { secrets: ["C_3"] } });
    expect(c.secrets).toEqual(["C_3"]);
  });

  it("coerces numeric strings", () => {
    expect(loadConfig({ env: REQUIRED, flags: { pollSeconds: "12" } }).pollSeconds).toBe(12);
  });

  it("names the config path of a bad flag when no file is given", () => {
    expect(configError(() => loadConfig({ env: REQUIRED, flags: { pollSeconds: 0 } })).message).toBe(
      "flag (pollSeconds): Too small: expected number to be >0",
    );
  });

  it("rejects an unknown flag key", () => {
    expect(configError(() => loadConfig({ env: REQUIRED, flags: { limits: { maxJobs: 2 } } })).message).toBe("flag (limits.maxJobs): unknown key");
  });
});

describe("credentials in URLs", () => {
  it("refuses a token or password in the ops remote or the runner remote, naming the variable", () => {
    const message =
      "must not carry a credential: use an SSH deploy key (DISPATCHER_GIT_SSH_KEY, DISPATCHER_GIT_KNOWN_HOSTS) or a git credential helper, e.g. ssh://git@git.example.org/ops.git";
    const err = (env: Record<string, string>) => {
      try {
        loadConfig({ env: { VAULT_TOKEN: "t", DISPATCHER_OPS_REMOTE: "/srv/ops.git", ...env } });
      } catch (e) {
        return (e as Error).message;
      }
      return "no error";
    };
    expect(err({ DISPATCHER_OPS_REMOTE: "https://ghp_secret@github.example/ops.git" })).toBe(`DISPATCHER_OPS_REMOTE: ${message}`);
    expect(err({ DISPATCHER_RUNNER_REMOTE: "https://user:pw@git.example/ops.git" })).toBe(`DISPATCHER_RUNNER_REMOTE: ${message}`);
    expect(err({ DISPATCHER_OPS_REMOTE: "ssh://git:pw@git.example/ops.git" })).toBe(`DISPATCHER_OPS_REMOTE: ${message}`);
    expect(err({ DISPATCHER_OPS_REMOTE: "ssh://git@git.example/ops.git", DISPATCHER_GIT_SSH_KEY: "/k", DISPATCHER_GIT_KNOWN_HOSTS: "/kh" })).toBe("no error");
  });

  it("requires a pinned host key with a deploy key", () => {
    expect(() => loadConfig({ env: { VAULT_TOKEN: "t", DISPATCHER_OPS_REMOTE: "ssh://git@h/ops.git", DISPATCHER_GIT_SSH_KEY: "/k" } })).toThrow(
      "DISPATCHER_GIT_KNOWN_HOSTS (not set): is required with a deploy key: a known_hosts file pinning the remote's host key",
    );
  });
});

describe("[forge]", () => {
  it("is off by default; the outbox defaults to beside the clone", () => {
    const c = loadConfig({ env: REQUIRED, cwd: "/srv/app" });
    expect(c.forge).toEqual({ url: "", repo: "", tokenFile: "", outbox: "", hooksTokenFile: "" });
    expect(forgeOutboxOf(c)).toBe("/srv/app/.dispatcher/ops-forge-outbox.json");
  });

  it("with a URL needs the repo and the bot's token file, each error naming its layer", () => {
    const err = configError(() => loadConfig({ env: { ...REQUIRED, DISPATCHER_FORGE_URL: "http://127.0.0.1:3000" } }));
    expect(err.message).toBe(
      "DISPATCHER_FORGE_REPO (not set): is required with forge.url: the ops repo on the forge, e.g. ops/ops\nDISPATCHER_FORGE_TOKEN_FILE (not set): is required with forge.url: the bot's token file, e.g. /etc/dispatcher/forge-token",
    );
    const c = loadConfig({ env: { ...REQUIRED, DISPATCHER_FORGE_URL: "http://127.0.0.1:3000", DISPATCHER_FORGE_REPO: "ops/ops", DISPATCHER_FORGE_TOKEN_FILE: "/etc/t" } });
    expect(c.forge).toMatchObject({ url: "http://127.0.0.1:3000", repo: "ops/ops", tokenFile: "/etc/t" });
  });

  it("refuses a credential in the URL and a repo that is not owner/name", () => {
    const err = configError(() => loadConfig({ env: { ...REQUIRED, DISPATCHER_FORGE_URL: "https://bot:tok@git.example.org", DISPATCHER_FORGE_REPO: "ops", DISPATCHER_FORGE_TOKEN_FILE: "/etc/t" } }));
    expect(err.message).toBe(
      "DISPATCHER_FORGE_URL: must not carry a credential: use an SSH deploy key (DISPATCHER_GIT_SSH_KEY, DISPATCHER_GIT_KNOWN_HOSTS) or a git credential helper, e.g. ssh://git@git.example.org/ops.git\nDISPATCHER_FORGE_REPO: must be owner/name like ops/ops",
    );
  });
});

describe("config [issues]", () => {
  it("reads [[issues.projects]] from the file: label and formula names as written, the rest camelCase", () => {
    writeFileSync(
      file,
      '[issues]\nprogress_label = "working"\nbot_secret = "kv/data/disinto/bots/dev"\n[[issues.projects]]\nname = "disinto"\nproject_toml = "projects/disinto.toml"\nrepo = "disinto-admin/disinto"\nlabels = { "bug-report" = "reproduce", "needs_triage" = "triage" }\n',
    );
    const c = loadConfig({ file, env: REQUIRED });
    expect(c.issues.progressLabel).toBe("working");
    expect(c.issues.botSecret).toBe("kv/data/disinto/bots/dev");
    expect(c.issues.projects).toEqual([{ name: "disinto", projectToml: "projects/disinto.toml", repo: "disinto-admin/disinto", labels: { "bug-report": "reproduce", needs_triage: "triage" } }]);
  });

  it("refuses a project file outside the repo and a bot secret that is not a KV v2 data path, naming the layer", () => {
    writeFileSync(file, '[issues]\nbot_secret = "secret/bots/dev"\n[[issues.projects]]\nname = "p"\nproject_toml = "../etc/p.toml"\nrepo = "o/p"\nlabels = {}\n');
    expect(configError(() => loadConfig({ file, env: REQUIRED })).message).toBe(
      `${file} (issues.bot_secret): must be a KV v2 data path like kv/data/disinto/bots/dev\n${file} (issues.projects.0.project_toml): must be a .toml file of the ops repo like projects/disinto.toml`,
    );
  });
});

describe("disinto's layout: vault.secret_path, [formulas]", () => {
  it("defaults to runner/{name}, the ops repo's formulas and no arguments", () => {
    const c = loadConfig({ env: REQUIRED });
    expect(c.vault.secretPath).toBe("runner/{name}");
    expect(c.formulas).toEqual({ factoryRemote: "", factoryCommit: "", args: "none", home: "" });
    expect(runnerLayoutOf(c)).toEqual({ secretPath: "runner/{name}", formulaArgs: "none" });
  });

  it("takes the old layout from the environment", () => {
    const commit = "3f0b447c1d2e3f405162738495a6b7c8d9e0f1a2";
    const c = loadConfig({ env: { ...REQUIRED, DISPATCHER_SECRET_PATH: "disinto/runner/{name}", DISPATCHER_FACTORY_REMOTE: "git://h/factory.git", DISPATCHER_FACTORY_COMMIT: commit, DISPATCHER_FORMULA_ARGS: "action-id" } });
    expect(runnerLayoutOf(c)).toEqual({ secretPath: "disinto/runner/{name}", formulaArgs: "action-id", factory: { repo: "git://h/factory.git", commit } });
  });

  it("refuses a branch as the factory pin, a factory without a pin, and a secret path without {name}", () => {
    const err = (env: Record<string, string>) => {
      try {
        loadConfig({ env: { ...REQUIRED, ...env } });
        return "no error";
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(err({ DISPATCHER_FACTORY_REMOTE: "git://h/factory.git", DISPATCHER_FACTORY_COMMIT: "main" })).toBe(
      "DISPATCHER_FACTORY_COMMIT: must be a full 40-hex commit id (the pin is the approval of that code; a branch would let a push change it), e.g. 3f0b447c1d2e3f405162738495a6b7c8d9e0f1a2",
    );
    expect(err({ DISPATCHER_FACTORY_REMOTE: "git://h/factory.git" })).toBe("DISPATCHER_FACTORY_COMMIT (not set): and formulas.factory_remote go together: the factory repository and the commit pinned in it");
    expect(err({ DISPATCHER_SECRET_PATH: "disinto/runner" })).toBe("DISPATCHER_SECRET_PATH: must be a KV path with one {name}, like runner/{name} or disinto/runner/{name}");
  });
});
