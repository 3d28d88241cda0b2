// The issue loop on the real stack (Gitea, Nomad, OpenBao): an issue labelled bug-report gets one
// reproduce sidecar with issue_number and project_toml, the progress label while it runs, then one
// comment and the outcome label, and its result under vault/issues/<project>/; two replicas start
// one sidecar between them, a re-run dispatcher none, and the label added again a new one. The
// sidecar reads its bot token through its wrapped token and nothing beside it; a runner action's
// formula cannot read the bot's path.
import { randomUUID } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Served } from "../../dispatcher/server/http.js";
import { cliEnv, runCli } from "../helpers/cli.js";
import { commentsOf, createForgeRepo, forgeApi, forgeEnv, freePort, holdGitea, operatorPush, type ForgeRepo } from "../helpers/forge.js";
import { waitUntil } from "../helpers/process.js";
import { adminNomad, childrenOf, createTestDispatcher, deleteSecret, grantBot, grantSecret, uniq, writeKv, type TestDispatcher } from "../helpers/stack.js";

const u = uniq();
const project = `p-${u}`;
const BOT_PATH = `kv/data/disinto/bots/dev-${u}`;
const SIBLING = `kv/data/disinto/bots/ops-${u}`;
const BOT_POLICY = `sidecar-bot-${u}`;
const botValue = `bot-token-${randomUUID()}`;
const siblingValue = `ops-bot-token-${randomUUID()}`;
const SECRET = `ISSUES_${u.toUpperCase()}`;
const secretValue = `runner-secret-${randomUUID()}`;

/** reads the bot path, the sibling path and nothing else with its own token; its verdict: not-reproduced */
const reproduce = `#!/usr/bin/env bash
echo "reproducing issue $ISSUE_NUMBER of $PROJECT_TOML"
echo "bot token: $FORGE_BOT_TOKEN"
own=$(curl -s -H "X-Vault-Token: $VAULT_TOKEN" "$VAULT_ADDR/v1/${BOT_PATH}" | jq -r .data.data.token)
[ "$own" = "$FORGE_BOT_TOKEN" ] && echo "own path: the same token"
echo "sibling: $(curl -s -o /dev/null -w '%{http_code}' -H "X-Vault-Token: $VAULT_TOKEN" "$VAULT_ADDR/v1/${SIBLING}")"
echo "runner secret: $(curl -s -o /dev/null -w '%{http_code}' -H "X-Vault-Token: $VAULT_TOKEN" "$VAULT_ADDR/v1/kv/data/runner/${SECRET}")"
sleep 6
echo not-reproduced > "$DISPATCHER_OUTCOME_FILE"
`;
/** a runner action with a secret tries the bot's path with its token */
const steal = `#!/usr/bin/env bash
echo "bot path: $(curl -s -o /dev/null -w '%{http_code}' -H "X-Vault-Token: $VAULT_TOKEN" "$VAULT_ADDR/v1/${BOT_PATH}")"
echo "own secret: $([ -n "$${SECRET}" ] && echo set)"
`;

let repo: ForgeRepo;
let port: number;
let config: string;
const replicas: { d: TestDispatcher; stop: AbortController; running: Promise<void>; served?: Served }[] = [];

async function startReplica(name: string, issuesPoll: number, listen: boolean, extra: Record<string, string> = {}): Promise<TestDispatcher> {
  const d = await createTestDispatcher(repo.remote, {
    ...repo.env,
    DISPATCHER_CONFIG: config,
    DISPATCHER_SECRETS: SECRET,
    DISPATCHER_INSTANCE: `${name}-${u}`,
    DISPATCHER_ISSUES_POLL_SECONDS: String(issuesPoll),
    DISPATCHER_LISTEN: listen ? `127.0.0.1:${port}` : "off",
    DISPATCHER_LEASE_SECONDS: "10",
    ...extra,
  });
  const stop = new AbortController();
  const served = listen ? await d.serve() : undefined;
  replicas.push({ d, stop, running: d.loop.run(stop.signal, 2_000), ...(served ? { served } : {}) });
  return d;
}

async function stopReplicas(): Promise<void> {
  for (const r of replicas.splice(0)) {
    r.stop.abort();
    await r.running;
    await r.served?.close();
    r.d.close();
  }
}

async function labelsOf(issue: number): Promise<string[]> {
  return (await forgeApi<{ name: string }[]>("GET", `/repos/${repo.repo}/issues/${issue}/labels`)).map((l) => l.name).sort();
}

async function addLabel(issue: number, name: string): Promise<void> {
  const all = await forgeApi<{ id: number; name: string }[]>("GET", `/repos/${repo.repo}/labels`);
  await forgeApi("POST", `/repos/${repo.repo}/issues/${issue}/labels`, { labels: [all.find((l) => l.name === name)!.id] });
}

/** the label's add events on the issue's timeline, oldest first */
async function labelEvents(issue: number, name: string): Promise<number[]> {
  const timeline = await forgeApi<{ id: number; type: string; body: string; label?: { name: string } }[]>("GET", `/repos/${repo.repo}/issues/${issue}/timeline`);
  return timeline.filter((e) => e.type === "label" && e.body === "1" && e.label?.name === name).map((e) => e.id);
}

async function resultAt(path: string): Promise<Record<string, unknown> | undefined> {
  const res = await fetch(`${forgeEnv().FORGE_URL}/api/v1/repos/${repo.repo}/raw/${path}?ref=main`, { headers: { Authorization: `token ${forgeEnv().operatorToken}` } });
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`reading ${path}: HTTP ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

/** the sidecar children of the run `id`, in every parent of the sidecar kind */
async function sidecarsOf(id: string): Promise<string[]> {
  return childrenOf("sidecar", id);
}

/** Gitea stays up while this file runs (forge.test.ts stops it once) */
let releaseGitea: (() => void) | undefined;

beforeAll(async () => {
  releaseGitea = await holdGitea();
  await grantBot(BOT_PATH, BOT_POLICY, botValue);
  await writeKv(SIBLING, { token: siblingValue });
  await grantSecret(SECRET, secretValue);
  port = await freePort();
  repo = await createForgeRepo(`issues-${u}`, `http://127.0.0.1:${port}/hooks/push`);
  // the issue events reach the same listener, signed with the same secret
  const secret = readFileSync(forgeEnv().FORGE_WEBHOOK_SECRET_FILE, "utf8").trim();
  await forgeApi("POST", `/repos/${repo.repo}/hooks`, { type: "gitea", active: true, events: ["issues", "issue_label"], config: { url: `http://127.0.0.1:${port}/hooks/push`, content_type: "json", secret } });
  await forgeApi("POST", `/repos/${repo.repo}/labels`, { name: "bug-report", color: "#ee0701" });
  await operatorPush(repo.repo, "main", { [`projects/${project}.toml`]: `name = "${project}"\n`, "formulas/reproduce.sh": reproduce, [`formulas/steal-${u}.sh`]: steal }, "project, reproduce formula");
  config = join(await mkdtemp(join(tmpdir(), "issues-config-")), "dispatcher.toml");
  await writeFile(
    config,
    [
      "[issues]",
      'progress_label = "in-progress"',
      `bot_secret = "${BOT_PATH}"`,
      `bot_policy = "${BOT_POLICY}"`,
      "[[issues.projects]]",
      `name = "${project}"`,
      `project_toml = "projects/${project}.toml"`,
      `repo = "${repo.repo}"`,
      'labels = { "bug-report" = "reproduce" }',
      "",
    ].join("\n"),
  );
}, 120_000);

afterAll(async () => {
  releaseGitea?.();
  await stopReplicas();
  await deleteSecret(SECRET);
});

describe("an issue's life", () => {
  let issue: number;
  let firstId: string;
  let a: TestDispatcher;
  let b: TestDispatcher;

  it("two replicas: a bug-report label starts one reproduce sidecar, with issue_number and project_toml, the issue labelled in-progress while it runs", async () => {
    // a: woken by the forge's issue webhook only (its poll is an hour); b: polls every 2 s (a missed delivery)
    a = await startReplica("a", 3600, true);
    b = await startReplica("b", 2, false);
    issue = (await forgeApi<{ number: number }>("POST", `/repos/${repo.repo}/issues`, { title: "the build breaks on Tuesdays", body: "steps: …" })).number;
    await addLabel(issue, "bug-report");
    const [event] = await labelEvents(issue, "bug-report");
    firstId = `${project}/${issue}-bug-report-${event}`;
    expect(await waitUntil(async () => (await sidecarsOf(firstId)).length > 0, 60_000, 500)).toBe(true);
    expect(await waitUntil(async () => (await labelsOf(issue)).includes("in-progress"), 30_000, 500)).toBe(true);
    expect(await labelsOf(issue)).toEqual(["bug-report", "in-progress"]);
    const [child] = await sidecarsOf(firstId);
    const meta = (await adminNomad().listChildren("sidecar")).find((c) => c.jobId === child)!.meta;
    expect({ issue: meta.issue_number, project: meta.project_toml, formula: meta.formula, path: meta.action_path }).toEqual({ issue: String(issue), project: `projects/${project}.toml`, formula: "reproduce", path: `projects/${project}.toml` });
    // no secret, no bot value in meta
    expect(JSON.stringify(meta)).not.toContain(botValue);
    expect(meta.secrets_csv ?? "").toBe("");
  }, 120_000);

  it("the run ends: its result under vault/issues/<project>/, one comment, the trigger label replaced by the formula's verdict", async () => {
    const path = `vault/issues/${firstId}.result.json`;
    expect(await waitUntil(async () => (await resultAt(path)) !== undefined, 120_000, 1000)).toBe(true);
    // the outcome on, then the progress and trigger labels off
    expect(await waitUntil(async () => (await labelsOf(issue)).join() === "not-reproduced", 30_000, 500)).toBe(true);
    const result = (await resultAt(path))!;
    expect(result.id).toBe(firstId);
    expect(result.status).toBe("succeeded");
    expect(result.policies).toEqual([BOT_POLICY]);
    const logs = String(result.logs);
    expect(logs).toContain(`reproducing issue ${issue} of projects/${project}.toml\nbot token: [redacted]\nown path: the same token\nsibling: 403\nrunner secret: 403`);
    expect(logs).toContain("[outcome] not-reproduced");
    expect(logs).not.toContain(botValue);
    const comments = await commentsOf(repo.repo, issue);
    expect(comments).toHaveLength(1);
    expect(comments[0]!.user.login).toBe("dispatcher-bot");
    expect(comments[0]!.body.startsWith(`<!-- nomad-dispatcher:issue-run:${firstId} -->\n**reproduce** ran for this issue (label \`bug-report\`): **not-reproduced**`)).toBe(true);
    expect(comments[0]!.body).toContain(`| result | \`${path}\` |`);
    expect(comments[0]!.body).not.toContain(botValue);
    // one sidecar between the two replicas; the webhook woke a
    expect(await sidecarsOf(firstId)).toHaveLength(1);
    expect(a.captured.lines.some((l) => l.msg === "issue webhook: starting an issue pass")).toBe(true);
    const starts = [...a.captured.lines, ...b.captured.lines].filter((l) => l.msg === "issue run started" && l.run === firstId);
    expect(starts.length).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it("a dispatcher run again starts no second sidecar", async () => {
    await stopReplicas();
    const c = await startReplica("c", 1, false);
    const passes: number[] = [];
    c.loop.events.on("pass:done", () => passes.push(Date.now()));
    expect(await waitUntil(async () => passes.length >= 4, 60_000, 500)).toBe(true);
    expect(await sidecarsOf(firstId)).toHaveLength(1);
    expect(await commentsOf(repo.repo, issue)).toHaveLength(1);
  }, 90_000);

  it("the label added again later is a new run: a second sidecar, a second comment, a second result", async () => {
    await addLabel(issue, "bug-report");
    const events = await labelEvents(issue, "bug-report");
    expect(events).toHaveLength(2);
    const secondId = `${project}/${issue}-bug-report-${events[1]}`;
    expect(await waitUntil(async () => (await resultAt(`vault/issues/${secondId}.result.json`)) !== undefined, 150_000, 1000)).toBe(true);
    expect(await waitUntil(async () => (await commentsOf(repo.repo, issue)).length === 2, 30_000, 500)).toBe(true);
    expect(await sidecarsOf(secondId)).toHaveLength(1);
    expect(await sidecarsOf(firstId)).toHaveLength(1);
    expect(await waitUntil(async () => (await labelsOf(issue)).join() === "not-reproduced", 30_000, 500)).toBe(true);
  }, 180_000);
});

describe("operators see it", () => {
  it("plan names the issue a pass would start and its sidecar; status lists the issue runs beside the actions", async () => {
    await stopReplicas();
    const n = (await forgeApi<{ number: number }>("POST", `/repos/${repo.repo}/issues`, { title: "crashes on start" })).number;
    await addLabel(n, "bug-report");
    const [event] = await labelEvents(n, "bug-report");
    const env = await cliEnv(repo.remote, { ...repo.env, DISPATCHER_CONFIG: config, DISPATCHER_SECRETS: SECRET });
    const plan = await runCli(["plan"], env);
    expect(plan.code, plan.stderr).toBe(0);
    const planned = plan.stdout.split("\n").filter((l) => l.startsWith(`  ${repo.repo}#`));
    expect(planned).toContain(`  ${repo.repo}#${n} (bug-report) ${project}/${n}-bug-report-${event}: start sidecar reproduce (meta issue_number=${n} project_toml=projects/${project}.toml; policies ${BOT_POLICY})`);
    const status = await runCli(["status"], env);
    expect(status.code, status.stderr).toBe(0);
    const runs = status.stdout.slice(status.stdout.indexOf("issue runs (vault/issues/<project>/<issue>-<label>-<event>):"));
    const rows = runs.split("\n").filter((l) => l.startsWith(`${project}/`)).map((l) => l.split(/\s+/).slice(0, 3));
    expect(rows).toHaveLength(2);
    expect(rows.every(([, kind, state]) => kind === "sidecar" && state === "succeeded")).toBe(true);
  }, 120_000);
});

describe("the bot's path is the sidecar's alone", () => {
  it("a runner action's formula, with a secret of its own, is refused the bot's path (403)", async () => {
    const id = `steal-${u}`;
    await startReplica("d", 3600, false);
    await operatorPush(repo.repo, "main", { [`vault/actions/${id}.toml`]: `id = "${id}"\nformula = "steal-${u}"\ncontext = "try the bot path"\nsecrets = ["${SECRET}"]\n` }, `actions: ${id}`);
    expect(await waitUntil(async () => (await resultAt(`vault/actions/${id}.result.json`)) !== undefined, 120_000, 1000)).toBe(true);
    const result = (await resultAt(`vault/actions/${id}.result.json`))!;
    expect(result.status).toBe("succeeded");
    expect(result.policies).toEqual([`runner-${SECRET.toLowerCase()}`]);
    expect(String(result.logs)).toBe("bot path: 403\nown secret: set");
  }, 150_000);
});

describe("the approval rule binds issue runs", () => {
  it("with provider = forge, a formula pushed directly (no approved merge) starts no sidecar with the bot's token: the issue waits, unapproved", async () => {
    await stopReplicas();
    // the attack: a pusher without an approver changes the formula the bot token runs with
    await operatorPush(repo.repo, "main", { "formulas/reproduce.sh": `${reproduce}echo "pushed without review"\n` }, "reproduce: pushed directly");
    const e = await startReplica("e", 1, false, { DISPATCHER_APPROVALS_PROVIDER: "forge", DISPATCHER_APPROVERS: `reviewer-${u}` });
    const n = (await forgeApi<{ number: number }>("POST", `/repos/${repo.repo}/issues`, { title: "after a direct push" })).number;
    await addLabel(n, "bug-report");
    const [event] = await labelEvents(n, "bug-report");
    const run = `${project}/${n}-bug-report-${event}`;
    const waits = () => e.captured.lines.filter((l) => l.msg === "issue run waits" && l.run === run);
    expect(await waitUntil(async () => waits().length >= 3, 90_000, 500)).toBe(true);
    expect(String(waits()[0]!.reason)).toMatch(/^unapproved at [0-9a-f]{12}: /);
    expect(await sidecarsOf(run)).toEqual([]);
    expect(await labelsOf(n)).toEqual(["bug-report"]);
  }, 150_000);
});
