import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import type { Registry } from "prom-client";
import { ConfigInvalid } from "./errors.js";
import { createMetrics } from "./server/metrics.js";
import { createReadiness, type Readiness } from "./server/health.js";
import { startServer, type Served } from "./server/http.js";
import { deprecatedSettings, forgeOutboxOf, formulaMountsOf, formulaSecretsOf, logOptionsOf, mountLayoutOf, runnerLayoutOf, sshCredentialOf, vaultAuthOf, type Config } from "./config.js";
import { createForgeReporter, type ForgeReporter } from "./core/forge-report.js";
import { createGiteaForge } from "./forge/gitea.js";
import { createFileOutbox } from "./forge/outbox.js";
import { createRepoHistory } from "./opsrepo/history.js";
import { systemClock } from "./clock.js";
import type { DoctorDeps } from "./core/doctor.js";
import { createLoop, type Loop, type LoopDeps } from "./core/loop.js";
import { createIssueLoop, type IssueLoop, type IssueLoopDeps } from "./core/issue-loop.js";
import { parentJobsOf } from "./core/request.js";
import { readRuleApproval } from "./core/forge-approval.js";
import { createGiteaIssues } from "./forge/gitea-issues.js";
import type { Clock, FactoryPort, ForgeGatePort, ForgePort, LedgerPort, NomadPort, OpsRepoPort, PlacesPort, VaultPort } from "./core/ports.js";
import { createLogger, type Logger } from "./log.js";
import { createAllocationFeed } from "./nomad/feed.js";
import { createLoopEmitter, type LoopEmitter } from "./core/events.js";
import { logLoopEvents } from "./core/log-events.js";
import { createNomadLedger, issuesLedgerPrefix } from "./nomad/ledger.js";
import { createNomadDeliveries } from "./nomad/deliveries.js";
import { createNomadPlaces } from "./nomad/places.js";
import { createNomadPort, type NomadClient } from "./nomad/client.js";
import { redactUrls, remoteTip } from "./opsrepo/exec.js";
import { createGitOpsRepo } from "./opsrepo/git.js";
import { createFactoryFormulas } from "./opsrepo/factory.js";
import { createVaultInspector } from "./vault/inspect.js";
import { createVaultSession, type VaultSession } from "./vault/login.js";
import { createVaultPort } from "./vault/tokens.js";
import { readPinFile } from "./pinfile.js";
import { VERSION } from "./version.js";

export interface Overrides {
  nomad?: NomadPort;
  ledger?: LedgerPort;
  places?: PlacesPort;
  vault?: VaultPort;
  repo?: OpsRepoPort;
  log?: Logger;
  clock?: Clock;
  forge?: ForgePort;
}

export interface Dispatcher {
  loop: Loop;
  config: Config;
  log: Logger;
  /** renews the dispatcher's own Vault token at half TTL (a fresh login when that fails) until `signal` */
  keepVaultAlive(signal: AbortSignal): Promise<void>;
  metrics: Registry;
  readiness: Readiness;
  /** serves /metrics, /healthz, /readyz and the push webhook on server.listen; undefined when "off" */
  serve(): Promise<Served | undefined>;
  /** reports results to the forge (commit statuses, pull request comments); undefined without forge.url */
  forge?: ForgeReporter;
  /** sidecars for labelled issues ([issues] projects); undefined without any */
  issues?: IssueLoop & { stop(): void };
  /** once its loop is done: the event stream, idle connections to Nomad, the forge's retries (a process that exits needs none of it) */
  close(): void;
}

export interface Engines {
  nomad: NomadClient;
  vault: VaultPort;
  /** the dispatcher's own Vault login, kept alive by `run` and `once` */
  vaultSession: VaultSession;
  repo: OpsRepoPort;
  /** formulas.factory_remote: the factory repository's formulas at the pinned commit */
  factory?: FactoryPort;
}

/**
 * The adapters for `config`. `workdir` is the private clone; read-only commands (status, logs,
 * plan) pass their own so they never share a clone with a running daemon.
 */
export function createEngines(config: Config, log: Logger, workdir = config.repo.workdir): Engines {
  const vaultSession = createVaultSession(config.vault.addr, vaultAuthOf(config.vault), log.child({ component: "vault" }), systemClock);
  return {
    nomad: createNomadPort(config.nomad),
    vault: createVaultPort({ addr: config.vault.addr, session: vaultSession, role: config.vault.role, wrapTtlSeconds: config.vault.wrapTtlSeconds }),
    vaultSession,
    repo: createGitOpsRepo({
      remote: config.repo.remote,
      ssh: sshCredentialOf(config.repo),
      branch: config.repo.branch,
      workdir,
      shared: workdir !== config.repo.workdir,
      author: { name: config.repo.authorName, email: config.repo.authorEmail },
      log: log.child({ component: "opsrepo" }),
      signatureChecksPerPass: config.approvals.signatureChecksPerPass,
    }),
    ...(config.formulas.factoryRemote
      ? { factory: createFactoryFormulas({ remote: config.formulas.factoryRemote, commit: config.formulas.factoryCommit, dir: `${workdir}-factory`, ssh: sshCredentialOf(config.repo) }) }
      : {}),
  };
}

/** The clone read-only commands use, beside the daemon's. */
export function viewWorkdir(config: Config): string {
  return `${config.repo.workdir}-view`;
}

/** What `doctor` (and `run` before it starts) asks the engines. */
export function doctorDeps(config: Config, engines: Pick<Engines, "nomad" | "vault" | "vaultSession">): DoctorDeps {
  const inspector = createVaultInspector(config.vault.addr, engines.vaultSession);
  return {
    nomad: engines.nomad,
    vault: { ...inspector, missingPolicies: (p) => engines.vault.missingPolicies(p) },
    remoteTip: () => remoteTip(config.repo.remote, config.repo.branch, tmpdir(), sshCredentialOf(config.repo)),
    ...(config.forge.url ? { forge: forgeDoctor(config) } : {}),
    settings: {
      nomadAddr: config.nomad.addr,
      vaultAddr: config.vault.addr,
      runnerJob: config.nomad.runnerJob,
      sidecarJob: config.nomad.sidecarJob,
      classes: config.nomad.classes,
      pins: readPinFile(config.nomad.pins),
      role: config.vault.role,
      kvMount: config.vault.kvMount,
      secretPath: config.vault.secretPath,
      knownSecrets: config.secrets,
      hostVolumes: mountLayoutOf(config).volumes,
      mountSets: mountLayoutOf(config).sets,
      // doctor prints it: a credential in a URL never reaches its output
      remote: redactUrls(config.repo.remote),
      branch: config.repo.branch,
    },
  };
}

/** The loop's settings from config; `plan` uses the same so it decides like the loop. */
export function loopSettings(config: Config): LoopDeps["settings"] {
  return {
    runnerJob: config.nomad.runnerJob,
    sidecarJob: config.nomad.sidecarJob,
    runnerRemote: config.repo.runnerRemote,
    actionsDir: config.repo.actionsDir,
    kvMount: config.vault.kvMount,
    layout: runnerLayoutOf(config),
    defaultTimeoutMinutes: config.timeouts.defaultMinutes,
    tokenGraceSeconds: config.vault.tokenGraceSeconds,
    placementSeconds: config.timeouts.placementSeconds,
    reevaluateSeconds: config.timeouts.reevaluateSeconds,
    purgeAfterMs: config.nomad.purgeAfterSeconds * 1000,
    knownSecrets: config.secrets,
    classes: config.nomad.classes,
    formulaSecrets: formulaSecretsOf(config),
    formulaMounts: formulaMountsOf(config),
    hostVolumes: mountLayoutOf(config).volumes,
    mountSets: mountLayoutOf(config).sets,
    limits: config.limits,
    tailBytes: config.logs.tailBytes,
    maxLogBytes: config.logs.maxBytes,
    leaseMs: config.leaseSeconds * 1000,
    instanceRetentionMs: config.instanceRetentionSeconds * 1000,
    ledgerRetentionMs: config.ledgerRetentionSeconds * 1000,
    pins: readPinFile(config.nomad.pins),
    namespace: config.nomad.namespace ?? "default",
    approvals:
      config.approvals.provider === "forge"
        ? { approvers: config.approvals.approvers, count: config.approvals.count, directFormulas: config.approvals.directFormulas, actionsDir: config.repo.actionsDir, formulasPinned: Boolean(config.formulas.factoryRemote) }
        : config.approvals.requireSigned
          ? { allowedSigners: config.approvals.allowedSigners, approvals: config.approvals.count, actionsDir: config.repo.actionsDir, formulasPinned: Boolean(config.formulas.factoryRemote) }
          : undefined,
    dispatcher: { version: VERSION, instance: config.instance },
  };
}

/** The port with allocation tracking on the shared event stream (dispatches go through it: it knows which are covered). */
function withFeed(nomad: NomadClient, log: Logger): NomadPort & { close(): void } {
  const feed = createAllocationFeed(nomad, log);
  return {
    ...nomad,
    watchJob: feed.watchJob,
    dispatch: feed.dispatch,
    close() {
      feed.close();
      nomad.close();
    },
  };
}

/** The forge bot's token, from forge.token_file. */
export function readForgeToken(path: string): string {
  let token: string;
  try {
    token = readFileSync(path, "utf8").trim();
  } catch (err) {
    throw new ConfigInvalid(`forge.token_file (DISPATCHER_FORGE_TOKEN_FILE) ${path}: cannot read the forge bot's token (${(err as NodeJS.ErrnoException).code})`, { cause: err });
  }
  if (!token) throw new ConfigInvalid(`forge.token_file (DISPATCHER_FORGE_TOKEN_FILE) ${path}: the file is empty; expected the bot's access token (scopes write:repository, write:issue)`);
  return token;
}

/** What doctor asks the forge: the bot's token, and with forge.hooks_token_file the repo's webhooks. */
function forgeDoctor(config: Config): NonNullable<DoctorDeps["forge"]> {
  const bot = createForge(config)!;
  const admin = config.forge.hooksTokenFile ? createGiteaForge({ url: config.forge.url, repo: config.forge.repo, token: readForgeToken(config.forge.hooksTokenFile) }) : undefined;
  return {
    url: config.forge.url,
    repo: config.forge.repo,
    whoami: () => bot.whoami(),
    permissions: () => bot.permissions(),
    ...(config.approvals.provider === "forge" ? { approvers: config.approvals.approvers, userExists: (n: string) => bot.userExists(n) } : {}),
    ...(admin ? { hooks: () => admin.hooks() } : {}),
  };
}

/** What the forge gate reads ([approvals] provider = "forge"): the clone at `workdir` and the forge; undefined for another provider. */
export function forgeGateOf(config: Config, workdir = config.repo.workdir): ForgeGatePort | undefined {
  if (config.approvals.provider !== "forge") return undefined;
  const forge = createForge(config);
  if (!forge) throw new ConfigInvalid('approvals.provider (DISPATCHER_APPROVALS_PROVIDER) "forge" needs the forge: set forge.url, forge.repo and forge.token_file (DISPATCHER_FORGE_URL, DISPATCHER_FORGE_REPO, DISPATCHER_FORGE_TOKEN_FILE)');
  const history = createRepoHistory(workdir, config.repo.branch);
  return { lastChange: (c, p, outside) => history.lastChange(c, p, outside), mergedPullRequestReviews: (c) => forge.mergedPullRequestReviews(c) };
}

/** The forge adapter for `config` (Gitea/Forgejo API); undefined without forge.url. */
export function createForge(config: Config) {
  if (!config.forge.url) return undefined;
  return createGiteaForge({ url: config.forge.url, repo: config.forge.repo, token: readForgeToken(config.forge.tokenFile) });
}

function readWebhookSecret(path: string): string {
  let secret: string;
  try {
    secret = readFileSync(path, "utf8").trim();
  } catch (err) {
    throw new ConfigInvalid(`server.webhook_secret_file (DISPATCHER_WEBHOOK_SECRET_FILE) ${path}: cannot read the webhook secret (${(err as NodeJS.ErrnoException).code})`, { cause: err });
  }
  // a short shared secret can be guessed offline from one signed delivery
  if (secret.length < 16) throw new ConfigInvalid(`server.webhook_secret_file ${path}: the secret is ${secret.length} characters; at least 16 expected (e.g. openssl rand -hex 32)`);
  return secret;
}

/**
 * The issue loop beside the action loop ([issues] projects): an issue pass after each pass of
 * the action loop, its results pushed with the action loop's, its issues told when they land.
 * Its ledger entries live under <prefix>/issues; leases are the action ledger's heartbeats.
 */
/** The configured approval rule as the issue loop asks it; nothing when none is set. */
function approvalOf(config: Config, repo: OpsRepoPort, workdir?: string): Pick<IssueLoopDeps, "approve"> {
  const rule = loopSettings(config).approvals;
  if (!rule) return {};
  const gate = forgeGateOf(config, workdir);
  return { approve: (commit, file, action) => readRuleApproval(rule, { repo, ...(gate ? { gate } : {}) }, commit, file, action) };
}

export function startIssueLoop(
  config: Config,
  w: {
    engines: Pick<Engines, "nomad">;
    nomad: NomadPort;
    vault: VaultPort;
    repo: OpsRepoPort;
    ledger: LedgerPort;
    clock: Clock;
    events: LoopEmitter;
    log: Logger;
    queueResult: IssueLoopDeps["queueResult"];
    /** the clone the forge gate reads (plan: its own) */
    workdir?: string;
  },
): (IssueLoop & { stop(): void }) | undefined {
  const c = config.issues;
  if (c.projects.length === 0) return undefined;
  if (!config.forge.url) throw new ConfigInvalid("issues.projects needs the forge its issues are on: set forge.url and forge.token_file (DISPATCHER_FORGE_URL, DISPATCHER_FORGE_TOKEN_FILE), e.g. http://git.example.org");
  const own = createNomadLedger(w.engines.nomad, issuesLedgerPrefix(config.nomad.ledgerPrefix));
  const ledger: LedgerPort = { ...own, heartbeat: w.ledger.heartbeat, lastSeen: w.ledger.lastSeen, instances: w.ledger.instances, forgetInstance: w.ledger.forgetInstance };
  const log = w.log.child({ component: "issues" });
  const attemptEvents = createLoopEmitter();
  logLoopEvents(attemptEvents, log);
  const stop = new AbortController();
  const settings = loopSettings(config);
  const issues = createIssueLoop({
    forge: createGiteaIssues({ url: config.forge.url, token: readForgeToken(config.forge.tokenFile) }),
    repo: w.repo,
    ledger,
    nomad: w.nomad,
    vault: w.vault,
    clock: w.clock,
    log,
    attemptEvents,
    events: w.events,
    me: config.instance,
    fence: { parents: new Set(parentJobsOf(config.nomad.sidecarJob, config.nomad.classes, settings.mountSets)), namespace: settings.namespace },
    signal: stop.signal,
    settings: { ...settings, actionsDir: c.dir },
    queueResult: w.queueResult,
    ...approvalOf(config, w.repo, w.workdir),
    issues: {
      dir: c.dir,
      progressLabel: c.progressLabel,
      pollMs: c.pollSeconds * 1000,
      maxInFlight: c.maxInFlight,
      leaseMs: config.leaseSeconds * 1000,
      projects: c.projects,
      ...(c.botSecret ? { identity: { policy: c.botPolicy, bot: { path: c.botSecret, field: c.botField, env: c.botEnv } } } : {}),
      dispatcher: settings.dispatcher,
    },
  });
  w.events.on("pass:done", (e) => void issues.pass(e.commit));
  w.events.on("results:pushed", (e) => void issues.pushed(e.ids));
  return { ...issues, stop: () => stop.abort(new Error("dispatcher stopping")) };
}

/** The one place that wires config to adapters and the loop; tests override any port. */
export function startDispatcher(config: Config, overrides: Overrides = {}): Dispatcher {
  const log = (overrides.log ?? createLogger(logOptionsOf(config.logs))).child({ instance: config.instance });
  const engines = createEngines(config, log);
  const loopLog = log.child({ component: "loop" });
  for (const message of deprecatedSettings(config)) log.warn(message);
  const events = createLoopEmitter();
  logLoopEvents(events, loopLog);
  const ledger = overrides.ledger ?? createNomadLedger(engines.nomad, config.nomad.ledgerPrefix);
  const fed = withFeed(engines.nomad, log.child({ component: "nomad" }));
  const loop = createLoop({
    nomad: overrides.nomad ?? fed,
    vault: overrides.vault ?? engines.vault,
    repo: overrides.repo ?? engines.repo,
    ...(engines.factory ? { factory: engines.factory } : {}),
    ledger,
    // the shared limits live beside the ledger: a ledger of a test's own keeps the limits in-process
    places: overrides.places ?? (overrides.ledger ? undefined : createNomadPlaces(engines.nomad, config.nomad.ledgerPrefix)),
    clock: overrides.clock ?? systemClock,
    log: loopLog,
    events,
    ...(config.approvals.provider === "forge" ? { forgeGate: forgeGateOf(config) } : {}),
    settings: loopSettings(config),
  });
  const clock = overrides.clock ?? systemClock;
  const forgePort = overrides.forge ?? createForge(config);
  const forge = forgePort
    ? createForgeReporter({
        events,
        forge: forgePort,
        ledger,
        history: createRepoHistory(config.repo.workdir, config.repo.branch),
        outbox: createFileOutbox(forgeOutboxOf(config)),
        clock,
        log: log.child({ component: "forge" }),
        actionsDir: config.repo.actionsDir,
      })
    : undefined;
  const issues = startIssueLoop(config, { engines, nomad: overrides.nomad ?? fed, vault: overrides.vault ?? engines.vault, repo: overrides.repo ?? engines.repo, ledger, clock, events, log, queueResult: (result, fullLog, dir) => loop.queueResult(result, fullLog, dir) });
  const metrics = createMetrics({ events, inFlight: () => loop.inFlightIds().length });
  const readiness = createReadiness({
    events,
    clock,
    // a pass every poll; a few missed ones (a slow fetch) are not yet unready
    maxPassAgeMs: Math.max(3 * config.pollSeconds, 60) * 1000,
    vaultTokenSeconds: () => engines.vaultSession.remainingSeconds(),
    nomadLeader: () => engines.nomad.leader(),
  });
  return {
    loop,
    config,
    log,
    metrics,
    readiness,
    ...(forge ? { forge } : {}),
    keepVaultAlive: (signal) => engines.vaultSession.keepAlive(signal),
    ...(issues ? { issues } : {}),
    close() {
      issues?.stop();
      forge?.close();
      fed.close();
    },
    async serve() {
      if (config.server.listen === "off") return undefined;
      const secretFile = config.server.webhookSecretFile;
      const served = await startServer({
        listen: config.server.listen,
        metrics,
        readiness,
        webhook: secretFile
          ? {
              secret: readWebhookSecret(secretFile),
              branch: config.repo.branch,
              onPush: (tip) => loop.wake(tip),
              ...(issues ? { onIssues: () => (issues.wake(), loop.wake()) } : {}),
              // beside the ledger, as the shared limits: a ledger of a test's own keeps the guard in-process
              ...(overrides.ledger ? {} : { replays: { deliveries: createNomadDeliveries(engines.nomad, config.nomad.ledgerPrefix), windowSeconds: config.server.webhookReplaySeconds } }),
            }
          : undefined,
        log: log.child({ component: "server" }),
        now: () => clock.now().getTime(),
      }).catch((err: unknown) => {
        throw new ConfigInvalid(`server.listen (DISPATCHER_LISTEN) ${config.server.listen}: cannot listen: ${(err as Error).message}; choose another host:port, e.g. 127.0.0.1:9465, or "off"`, { cause: err });
      });
      log.info({ url: served.url, webhook: secretFile !== "" }, "serving /metrics, /healthz, /readyz");
      return served;
    },
  };
}
