import type { Config } from "./config.js";
import { systemClock } from "./clock.js";
import { createLoop, type Loop } from "./core/loop.js";
import type { Clock, LedgerPort, NomadPort, OpsRepoPort, VaultPort } from "./core/ports.js";
import { createLogger, type Logger } from "./log.js";
import { createNomadLedger } from "./nomad/ledger.js";
import { createNomadPort } from "./nomad/port.js";
import { createGitOpsRepo } from "./opsrepo/git.js";
import { createVaultPort } from "./vault/port.js";
import { VERSION } from "./version.js";

export interface Overrides {
  nomad?: NomadPort;
  ledger?: LedgerPort;
  vault?: VaultPort;
  repo?: OpsRepoPort;
  log?: Logger;
  clock?: Clock;
}

export interface Dispatcher {
  loop: Loop;
  config: Config;
  log: Logger;
}

/** The one place that wires config to adapters and the loop; tests override any port. */
export function startDispatcher(config: Config, overrides: Overrides = {}): Dispatcher {
  const log = (overrides.log ?? createLogger()).child({ instance: config.instance });
  const nomadClient = createNomadPort(config.nomad);
  const nomad = overrides.nomad ?? nomadClient;
  const ledger = overrides.ledger ?? createNomadLedger(nomadClient, config.nomad.ledgerPrefix);
  const vault =
    overrides.vault ??
    createVaultPort({ addr: config.vault.addr, token: config.vault.token, role: config.vault.role, wrapTtlSeconds: config.vault.wrapTtlSeconds });
  const repo =
    overrides.repo ??
    createGitOpsRepo({
      remote: config.repo.remote,
      branch: config.repo.branch,
      workdir: config.repo.workdir,
      author: { name: config.repo.authorName, email: config.repo.authorEmail },
      log: log.child({ component: "opsrepo" }),
    });
  const loop = createLoop({
    nomad,
    vault,
    ledger,
    repo,
    clock: overrides.clock ?? systemClock,
    log: log.child({ component: "loop" }),
    settings: {
      runnerJob: config.nomad.runnerJob,
      sidecarJob: config.nomad.sidecarJob,
      opsRemote: config.repo.remote,
      actionsDir: config.repo.actionsDir,
      kvMount: config.vault.kvMount,
      defaultTimeoutMinutes: config.timeouts.defaultMinutes,
      tokenGraceSeconds: config.vault.tokenGraceSeconds,
      placementSeconds: config.timeouts.placementSeconds,
      knownSecrets: config.secrets,
      limits: config.limits,
      tailBytes: config.logs.tailBytes,
      maxLogBytes: config.logs.maxBytes,
      leaseMs: config.leaseSeconds * 1000,
      dispatcher: { version: VERSION, instance: config.instance },
    },
  });
  return { loop, config, log };
}
