import type { Mount } from "../actions/schema.js";
import { DEFAULT_SECRET_PATH, secretPathOf } from "../contract.js";
import { failureClassOf } from "../errors.js";
import { policyFor } from "./catalog.js";
import { pinProblem, type PinFile } from "./pins.js";
import { parentJobsOf } from "./request.js";

// `dispatcher doctor` and the pre-flight of `dispatcher run`: each check says ok or what is wrong
// and how to fix it. Fatal checks stop `run`; the others only limit which actions can run.

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
  /** `run` refuses to start when a fatal check fails */
  fatal: boolean;
}

export interface DoctorDeps {
  nomad: {
    agentVersion(): Promise<string>;
    parentSpec(jobId: string): Promise<Record<string, unknown> | undefined>;
    hostVolumes(pool?: string): Promise<Map<string, string>>;
  };
  vault: {
    version(): Promise<string>;
    login(): Promise<{ method: string; ttlSeconds: number }>;
    capabilities(paths: string[]): Promise<Record<string, string[]>>;
    missingPolicies(policies: string[]): Promise<string[]>;
    /** a policy's rules (HCL), to see which path a runner policy reads; absent: not checked */
    policyRules?(policy: string): Promise<string | undefined>;
  };
  remoteTip(): Promise<string | undefined>;
  /** the forge the results are reported to (forge.url set) */
  forge?: {
    url: string;
    repo: string;
    /** the token's user, when the token may read it (a user scope); undefined when it may not */
    whoami(): Promise<{ login: string; isAdmin: boolean } | undefined>;
    /** what the token's user may do on the repo (fails on an invalid token) */
    permissions(): Promise<{ admin: boolean; push: boolean; pull: boolean }>;
    /** approvals.provider = "forge": the approvers, and whether each exists (undefined: the forge will not say) */
    approvers?: readonly string[];
    userExists?(name: string): Promise<boolean | undefined>;
    /** with forge.hooks_token_file (a repo admin's token, doctor only): the repo's webhooks; undefined: not checked */
    hooks?(): Promise<{ id: number; url: string; active: boolean; events: string[] }[] | undefined>;
  };
  settings: {
    nomadAddr: string;
    vaultAddr: string;
    runnerJob: string;
    sidecarJob: string;
    /** runner classes: node pools with parents of their own */
    classes: readonly string[];
    /** the parents as pinned after registration (undefined: no pin file configured) */
    pins: PinFile | undefined;
    role: string;
    kvMount: string;
    /** vault.secret_path: where secret NAME lives under <kv>/data/ (default runner/{name}) */
    secretPath?: string;
    knownSecrets: string[];
    hostVolumes: Readonly<Record<Mount, string>>;
    /** the parents' mount sets (mount_sets); absent: every subset of ssh/gpg/sops */
    mountSets?: readonly (readonly string[])[];
    remote: string;
    branch: string;
  };
}

const CREATE = new Set(["create", "update", "sudo", "root"]);
const READ = new Set(["read", "sudo", "root"]);

export async function runChecks(deps: DoctorDeps): Promise<Check[]> {
  const s = deps.settings;
  const checks: Check[] = [];
  const add = (name: string, fatal: boolean, ok: boolean, detail: string, fix?: string) => checks.push({ name, ok, detail, fatal, ...(ok ? {} : { fix }) });
  const failure = (err: unknown) => (err instanceof Error ? err.message : String(err));

  // Nomad, then what depends on it; an unreachable agent is one failure, not four
  let nomadUp = false;
  try {
    const version = await deps.nomad.agentVersion();
    nomadUp = true;
    add("nomad", true, true, `${s.nomadAddr} reachable, version ${version}`);
  } catch (err) {
    add("nomad", true, false, failure(err), "start Nomad or set NOMAD_ADDR (and NOMAD_TOKEN) to a reachable agent");
  }
  if (nomadUp) {
    for (const [base, fatal] of [[s.runnerJob, true], [s.sidecarJob, false]] as const) {
      const parents = parentJobsOf(base, s.classes, s.mountSets);
      const problems: string[] = [];
      for (const job of parents) {
        const problem = await deps.nomad.parentSpec(job).then((live) => pinProblem(s.pins, job, live), failure);
        if (problem) problems.push(problem);
      }
      const fix = "register the parents from jobspecs/runner.nomad.hcl with scripts/register-jobs.sh (it pins them), or run `dispatcher jobs pin` if the change is intended";
      const per = s.classes.length > 0 ? `one per class (default, ${s.classes.join(", ")}) and mount set` : "one per mount set";
      if (problems.length === 0) add(`jobspec ${base}`, fatal, true, `${parents.length} parents (${per}) registered as pinned`);
      else add(`jobspec ${base}`, fatal, false, `${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more parents)` : ""}`, fix);
    }
    try {
      const aliases = Object.keys(s.hostVolumes);
      const volumes = await deps.nomad.hostVolumes();
      const named = (m: Mount) => (s.hostVolumes[m]! === m ? m : `${m} (host volume ${s.hostVolumes[m]!})`);
      const missing = aliases.filter((m) => !volumes.has(s.hostVolumes[m]!));
      if (missing.length === 0) add("host volumes", false, true, `${aliases.map(named).join(", ")} offered`);
      else {
        const offered = aliases.filter((m) => volumes.has(s.hostVolumes[m]!));
        add("host volumes", false, false, `${missing.map(named).join(", ")} not offered by any ready node (offered: ${offered.map(named).join(", ") || "none"}); actions asking for them are refused`, `declare host_volume "${s.hostVolumes[missing[0]!]!}" in the Nomad client config`);
      }
      for (const cls of s.classes) {
        const inPool = await deps.nomad.hostVolumes(cls);
        const there = aliases.filter((m) => inPool.has(s.hostVolumes[m]!));
        add(`class ${cls}`, false, true, `node pool ${cls} offers ${there.map(named).join(", ") || "no mounts"}`);
      }
    } catch (err) {
      add("host volumes", false, false, failure(err), "check the Nomad token may read nodes (node:read)");
    }
  }

  // OpenBao/Vault and the dispatcher's own token
  let vaultUp = false;
  try {
    const version = await deps.vault.version();
    vaultUp = true;
    add("openbao", true, true, `${s.vaultAddr} reachable, version ${version}`);
  } catch (err) {
    add("openbao", true, false, failure(err), "start OpenBao (or Vault) or set VAULT_ADDR to a reachable, unsealed server");
  }
  if (vaultUp) {
    try {
      const { method, ttlSeconds } = await deps.vault.login();
      add("vault login", true, true, `${method}: token TTL ${ttlSeconds === 0 ? "unlimited" : `${ttlSeconds} s, renewed at half`}`);
    } catch (err) {
      add("vault login", true, false, failure(err), "give the dispatcher an AppRole (DISPATCHER_VAULT_ROLE_ID_FILE, DISPATCHER_VAULT_SECRET_ID_FILE; scripts/bootstrap-vault.sh makes one), a token file or VAULT_TOKEN");
      vaultUp = false;
    }
  }
  if (vaultUp) {
    const rolePath = `auth/token/create/${s.role}`;
    const secretPaths = s.knownSecrets.map((n) => secretPathIn(s, n));
    try {
      const caps = await deps.vault.capabilities([rolePath, ...secretPaths]);
      const onRole = caps[rolePath] ?? [];
      if (onRole.some((c) => CREATE.has(c))) add("token role", true, true, `the dispatcher's token can create tokens on ${rolePath}`);
      else add("token role", true, false, `the dispatcher's token cannot create tokens on ${rolePath} (capabilities: ${onRole.join(", ") || "none"})`, "give VAULT_TOKEN the service-dispatcher policy (scripts/bootstrap-vault.sh)");
      const readable = secretPaths.filter((p) => (caps[p] ?? []).some((c) => READ.has(c)));
      if (readable.length > 0) {
        const shown = readable.map((p) => `${p} (capabilities: ${caps[p]!.join(", ")})`).join(", ");
        add("secret isolation", true, false, `the dispatcher's token can read ${shown}`, "use a token with only the service-dispatcher policy, never root or a runner-* policy");
      } else if (secretPaths.length === 0) add("secret isolation", true, true, "no known secrets to check (DISPATCHER_SECRETS is empty)");
      else add("secret isolation", true, true, `the dispatcher's token cannot read any of the ${secretPaths.length} known secrets under ${s.kvMount}/data/${secretPrefix(s)}`);
    } catch (err) {
      add("token role", true, false, failure(err), "the token needs the default policy (sys/capabilities-self); create it with scripts/bootstrap-vault.sh");
    }
    try {
      const missing = new Set(await deps.vault.missingPolicies(s.knownSecrets.map(policyFor)));
      const without = s.knownSecrets.filter((n) => missing.has(policyFor(n)));
      if (without.length > 0) {
        add("runner policies", false, false, `missing ${without.map((n) => `${policyFor(n)} (secret ${n})`).join(", ")}; actions asking for them fail as secret_unknown`, `run scripts/bootstrap-vault.sh with ${without.join(", ")} in its secrets file`);
      } else {
        const astray = await policiesReadingElsewhere(deps.vault, s);
        if (astray.length > 0) {
          add("runner policies", false, false, `${astray.map(({ name, path }) => `${policyFor(name)} does not read ${path}`).join(", ")}; its runner gets a token that cannot read the secret and fails as secret_missing`, `write the policies for vault.secret_path = "${s.secretPath ?? DEFAULT_SECRET_PATH}" (DISPATCHER_SECRET_PATH=… scripts/bootstrap-vault.sh), or set vault.secret_path to where they read`);
        } else add("runner policies", false, true, s.knownSecrets.length === 0 ? "no known secrets" : `${s.knownSecrets.map(policyFor).join(", ")} present`);
      }
    } catch (err) {
      add("runner policies", false, false, failure(err), "give VAULT_TOKEN the service-dispatcher policy (read on sys/policies/acl/runner-*)");
    }
  }

  try {
    const tip = await deps.remoteTip();
    if (tip) add("ops repo", true, true, `${s.remote} reachable, ${s.branch} at ${tip.slice(0, 12)}`);
    else add("ops repo", true, false, `${s.remote} has no branch ${s.branch}`, "push the branch or set DISPATCHER_OPS_BRANCH");
  } catch (err) {
    const fix =
      failureClassOf(err) === "auth"
        ? "the remote refused the dispatcher's credential: DISPATCHER_GIT_SSH_KEY must be a deploy key with write access there, DISPATCHER_GIT_KNOWN_HOSTS must pin the remote's current host key"
        : "check DISPATCHER_OPS_REMOTE is reachable";
    add("ops repo", true, false, failure(err), fix);
  }
  if (deps.forge) await forgeChecks(deps.forge, add, failure);
  return checks;
}

/** Where doctor expects secret `name`: <kv>/data/ and the secret path template. */
function secretPathIn(s: DoctorDeps["settings"], name: string): string {
  return `${s.kvMount}/data/${secretPathOf(s.secretPath ?? DEFAULT_SECRET_PATH, name)}`;
}

/** What comes before {name} in the secret path template: runner/ by default. */
function secretPrefix(s: DoctorDeps["settings"]): string {
  const template = s.secretPath ?? DEFAULT_SECRET_PATH;
  return template.slice(0, template.indexOf("{name}"));
}

/** Known secrets whose runner policy names no `path "<where the secret is>"` (an older layout's policy): none when rules cannot be read. */
async function policiesReadingElsewhere(vault: DoctorDeps["vault"], s: DoctorDeps["settings"]): Promise<{ name: string; path: string }[]> {
  if (!vault.policyRules) return [];
  const astray: { name: string; path: string }[] = [];
  for (const name of s.knownSecrets) {
    const path = secretPathIn(s, name);
    const rules = await vault.policyRules(policyFor(name));
    if (rules !== undefined && !rules.includes(`path "${path}"`)) astray.push({ name, path });
  }
  return astray;
}

/** The forge: the bot's token (valid, least scopes, no admin), its write access, the push webhook. None is fatal: reports wait in the outbox. */
async function forgeChecks(f: NonNullable<DoctorDeps["forge"]>, add: (name: string, fatal: boolean, ok: boolean, detail: string, fix?: string) => void, failure: (err: unknown) => string): Promise<void> {
  const tokenFix = "give forge.token_file (DISPATCHER_FORGE_TOKEN_FILE) a bot user's token with the scopes write:repository and write:issue only";
  let perm: { admin: boolean; push: boolean; pull: boolean };
  try {
    perm = await f.permissions();
    add("forge token", false, true, `${f.url}: valid for ${f.repo}`);
  } catch (err) {
    add("forge token", false, false, failure(err), failureClassOf(err) === "auth" ? tokenFix : "check forge.url (DISPATCHER_FORGE_URL) is the forge's reachable base URL and forge.repo names the ops repo");
    return;
  }
  try {
    // a least-scope token cannot read its own user: an answer means a user scope
    const user = await f.whoami();
    const problems = [
      ...(perm.push ? [] : [`the token's user cannot write to ${f.repo} (commit statuses need write access)`]),
      ...(perm.admin ? [`the token's user is an admin of ${f.repo}: write access is enough`] : []),
      ...(user ? [`the token reads its user's account (${user.login}: a user scope)`] : []),
      ...(user?.isAdmin ? [`${user.login} is a site admin`] : []),
    ];
    if (problems.length === 0) add("forge scope", false, true, `writes to ${f.repo}, not as its admin; no user scope`);
    else add("forge scope", false, false, problems.join("; "), `${tokenFix}, of a user that is a collaborator of ${f.repo} with write access (not admin)`);
  } catch (err) {
    add("forge scope", false, false, failure(err), tokenFix);
  }
  if (f.approvers && f.userExists) {
    try {
      const found = await Promise.all(f.approvers.map(async (a) => [a, await f.userExists!(a)] as const));
      const missing = found.filter(([, e]) => e === false).map(([a]) => a);
      const unknown = found.filter(([, e]) => e === undefined).map(([a]) => a);
      if (missing.length > 0) add("forge approvers", false, false, `no user ${missing.join(", ")} on ${f.url}; their approvals can never count`, "fix approvals.approvers (DISPATCHER_APPROVERS): forge user names, e.g. [\"alice\", \"bob\"]");
      else if (unknown.length > 0) add("forge approvers", false, true, `${f.url} does not show profiles to anonymous requests; ${unknown.join(", ")} not checked`);
      else add("forge approvers", false, true, `${f.approvers.join(", ")} exist`);
    } catch (err) {
      add("forge approvers", false, false, failure(err), "check forge.url is reachable");
    }
  }
  if (!f.hooks) return;
  try {
    const hooks = await f.hooks();
    const push = (hooks ?? []).filter((h) => h.active && h.events.includes("push") && /\/hooks\/push$/.test(h.url));
    if (hooks === undefined) add("forge webhook", false, false, `forge.hooks_token_file may not list the webhooks of ${f.repo}`, `use a token of an admin of ${f.repo} (read:repository) for doctor`);
    else if (push.length === 0) add("forge webhook", false, false, `${f.repo} has no active push webhook to …/hooks/push (${hooks.length} webhooks)`, `add one in ${f.repo}'s settings: URL http://<dispatcher>/hooks/push, content type json, the secret of server.webhook_secret_file, push events`);
    // Gitea 1.27's API lists no deliveries: their history is on the webhook's settings page
    else add("forge webhook", false, true, `push webhook ${push.map((h) => `#${h.id} → ${h.url}`).join(", ")} active; its last deliveries: ${f.url}/${f.repo}/settings/hooks/${push[0]!.id} (the API has no delivery history)`);
  } catch (err) {
    add("forge webhook", false, false, failure(err), `check the webhooks of ${f.repo}`);
  }
}

/** `ok <check>: <detail>` or `fail <check>: <detail>; fix: <how>`, one line each (git's multi-line errors folded). */
export function formatChecks(checks: Check[]): string {
  const line = (c: Check) => {
    const detail = c.detail.trim().replace(/\s*\n\s*/g, " ");
    return c.ok ? `ok ${c.name}: ${detail}` : `fail ${c.name}: ${detail}; fix: ${c.fix}`;
  };
  return `${checks.map(line).join("\n")}\n`;
}
