// The forge in the loop, on the real stack (Gitea, Nomad, OpenBao): a pull request adding an
// action, merged in Gitea, starts a pass through Gitea's own signed webhook delivery (its history
// shows 2xx); the merge commit shows pending, then success; the pull request gets one comment with
// the masked log tail. A forged delivery starts nothing. With the forge's API cut off while results
// land, the result commit is still pushed, and statuses and comments follow once, when it is back.
import { createHmac, randomUUID } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkSetup } from "../../dispatcher/cli/doctor.js";
import { loadConfig } from "../../dispatcher/config.js";
import { readOutbox } from "../../dispatcher/forge/outbox.js";
import type { Served } from "../../dispatcher/server/http.js";
import { cliEnv, runCli } from "../helpers/cli.js";
import { commentsOf, createForgeRepo, holdGiteaAlone, startGitea, stopGitea, deliveriesOf, forgeEnv, freePort, mergePullRequest, openPullRequest, statusesOf, type ForgeRepo } from "../helpers/forge.js";
import { waitUntil } from "../helpers/process.js";
import { createRelay, type Outage } from "../helpers/proxy.js";
import { createTestDispatcher, deleteSecret, dispatcherEnv, grantSecret, uniq, type TestDispatcher } from "../helpers/stack.js";

const u = uniq();
const SECRET = `FORGE_TOKEN_${u.toUpperCase()}`;
const secretValue = `forge-secret-${randomUUID()}`;
const action = (id: string, formula: string, secrets: string[] = []) => `id = "${id}"\nformula = "${formula}"\ncontext = "forge test"\nsecrets = ${JSON.stringify(secrets)}\n`;

let repo: ForgeRepo;
let outbox: string;
/** the dispatcher's environment on top of the stack's */
let dEnv: Record<string, string>;
let d: TestDispatcher;
let served: Served;
let relay: Outage;
const stop = new AbortController();
let running: Promise<void>;
/** passes that ended, with the time they ended */
const passes: number[] = [];

beforeAll(async () => {
  await grantSecret(SECRET, secretValue);
  const port = await freePort();
  repo = await createForgeRepo(`forge-${u}`, `http://127.0.0.1:${port}/hooks/push`);
  // the dispatcher reaches the forge's API through a relay the outage test cuts; git goes to Gitea's SSH directly
  relay = await createRelay(forgeEnv().FORGE_URL);
  dEnv = {
    ...repo.env,
    DISPATCHER_FORGE_URL: relay.url,
    DISPATCHER_FORGE_OUTBOX: (outbox = join(await mkdtemp(join(tmpdir(), "forge-outbox-")), "outbox.json")),
    DISPATCHER_SECRETS: SECRET,
    DISPATCHER_LISTEN: `127.0.0.1:${port}`,
    // doctor only: the repo owner's token sees the webhooks
    DISPATCHER_FORGE_HOOKS_TOKEN_FILE: join(forgeEnv().dir, "operator-token"),
  };
  d = await createTestDispatcher(repo.remote, dEnv);
  d.loop.events.on("pass:done", () => passes.push(Date.now()));
  served = (await d.serve())!;
  // a poll every 5 s (results kept through a git outage go out on a pass); a webhook's pass is told by its log line
  running = d.loop.run(stop.signal, 5_000);
  // the first pass (the seeded examples) has run
  expect(await waitUntil(async () => passes.length > 0, 60_000, 200)).toBe(true);
}, 120_000);

afterAll(async () => {
  stop.abort();
  await running;
  d?.forge?.close();
  await served?.close();
  await relay?.close();
  await deleteSecret(SECRET);
});

async function resultAt(id: string): Promise<Record<string, unknown> | undefined> {
  const res = await fetch(`${forgeEnv().FORGE_URL}/api/v1/repos/${repo.repo}/raw/vault/actions/${id}.result.json?ref=main`, { headers: { Authorization: `token ${forgeEnv().operatorToken}` } });
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`reading ${id}.result.json from Gitea: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

describe("a pull request's life on the forge", () => {
  const id = `forge-pr-${u}`;
  let pr: { number: number; head: string };
  let merge: string;

  it("a merge in Gitea starts a pass through Gitea's own signed delivery, and its history shows 2xx", async () => {
    pr = await openPullRequest(repo.repo, `add-${id}`, { [`vault/actions/${id}.toml`]: action(id, "forge-echo", [SECRET]), "formulas/forge-echo.sh": `#!/usr/bin/env bash\necho "run by the forge test"\necho "the token is $${SECRET}"\nsleep 2\n` }, `actions: ${id}`);
    const before = passes.length;
    const hooked = d.captured.lines.filter((l) => l.msg === "push webhook: starting a pass").length;
    merge = await mergePullRequest(repo.repo, pr.number);
    expect(await waitUntil(async () => (await resultAt(id)) !== undefined, 180_000, 1000)).toBe(true);
    expect(passes.length).toBeGreaterThan(before);
    const started = d.captured.lines.filter((l) => l.msg === "push webhook: starting a pass");
    expect(started.length).toBeGreaterThan(hooked);
    // Gitea's delivery (it sends X-Hub-Signature-256 too) is read as Gitea's, by its own signature
    expect(started.filter((l) => l.tip === merge).map((l) => l.source), JSON.stringify(started)).toEqual(["gitea"]);
    // Gitea's own record of the delivery of the merge's push: delivered, 2xx
    const mergeDelivery = (await deliveriesOf(repo.repo)).filter((x) => x.event === "push");
    expect(mergeDelivery.length).toBeGreaterThan(0);
    expect(mergeDelivery.every((x) => x.delivered && x.succeeded && x.status >= 200 && x.status < 300)).toBe(true);
    expect((await resultAt(id))!.status).toBe("succeeded");
  });

  it("the merge commit shows pending, then success, under dispatcher/<id>", async () => {
    expect(await waitUntil(async () => (await statusesOf(repo.repo, merge)).some((s) => s.status === "success"), 60_000, 500)).toBe(true);
    const seen = (await statusesOf(repo.repo, merge)).filter((s) => s.context === `dispatcher/${id}`);
    expect(seen.map((s) => s.status)).toEqual(["pending", "success"]);
    expect(seen[0]!.description).toBe("dispatched (attempt 1)");
    expect(seen[1]!.description).toMatch(/^succeeded: exit 0, in \d+\.\d s, attempt 1$/);
  });

  it("the pull request has one result comment, by the bot, with the masked log tail", async () => {
    expect(await waitUntil(async () => (await commentsOf(repo.repo, pr.number)).length > 0, 60_000, 500)).toBe(true);
    const comments = await commentsOf(repo.repo, pr.number);
    expect(comments).toHaveLength(1);
    expect(comments[0]!.user.login).toBe("dispatcher-bot");
    const body = comments[0]!.body;
    expect(body.startsWith(`<!-- nomad-dispatcher:result:${id} -->\n`)).toBe(true);
    expect(body).toContain("| status | succeeded |\n| exit code | 0 |");
    expect(body).toContain("| attempts | 1 |");
    expect(body).toContain("run by the forge test\nthe token is [redacted]");
    expect(body).not.toContain(secretValue);
  });

  it("a forged delivery (the wrong secret) is refused with 401 and starts nothing", async () => {
    const body = JSON.stringify({ ref: "refs/heads/main", after: "f".repeat(40) });
    const forged = createHmac("sha256", "not-the-secret-at-all-0123456789").update(body).digest("hex");
    const delivery = randomUUID();
    /** passes this delivery started (Gitea's own deliveries may start others meanwhile) */
    const woken = () => d.captured.lines.filter((l) => l.msg === "push webhook: starting a pass" && (l.delivery === delivery || l.tip === "f".repeat(40))).length;
    const res = await fetch(`${served.url}/hooks/push`, {
      method: "POST",
      body,
      headers: { "Content-Type": "application/json", "X-Gitea-Event": "push", "X-Gitea-Delivery": delivery, "X-Gitea-Signature": forged },
    });
    expect(res.status).toBe(401);
    expect(await res.text()).toBe("X-Gitea-Signature does not match the body under the shared secret\n");
    // under the real secret a delivery passes the check (a push to another branch: signed, ignored)
    const other = JSON.stringify({ ref: "refs/heads/other", after: "f".repeat(40) });
    const real = readFileSync(forgeEnv().FORGE_WEBHOOK_SECRET_FILE, "utf8").trim();
    const signed = await fetch(`${served.url}/hooks/push`, { method: "POST", body: other, headers: { "Content-Type": "application/json", "X-Gitea-Event": "push", "X-Gitea-Signature": createHmac("sha256", real).update(other).digest("hex") } });
    expect([signed.status, await signed.text()]).toEqual([202, "ignored: push to refs/heads/other, not refs/heads/main\n"]);
    // refused before the loop heard of it: no wake, the refusal logged and counted
    await new Promise((r) => setTimeout(r, 1000));
    expect(woken()).toBe(0);
    expect(d.captured.lines.filter((l) => l.msg === "webhook delivery refused").map((l) => l.problem)).toEqual(["X-Gitea-Signature does not match the body under the shared secret"]);
    expect(await (await fetch(`${served.url}/metrics`)).text()).toContain('dispatcher_webhook_deliveries_total{outcome="unauthorized"} 1');
  });
});

describe("the forge away while results land", () => {
  const id = `forge-outage-${u}`;

  it("the result commit is pushed; statuses and the comment follow once when the forge is back", async () => {
    const pr = await openPullRequest(repo.repo, `add-${id}`, { [`vault/actions/${id}.toml`]: action(id, "forge-slow"), "formulas/forge-slow.sh": '#!/usr/bin/env bash\necho "slow start"\nsleep 6\necho "slow end"\n' }, `actions: ${id}`);
    const merge = await mergePullRequest(repo.repo, pr.number);
    // dispatched: pending reaches the forge; then the forge's API goes away
    expect(await waitUntil(async () => (await statusesOf(repo.repo, merge)).some((s) => s.status === "pending"), 120_000, 300)).toBe(true);
    await relay.down();
    expect(await waitUntil(async () => (await resultAt(id)) !== undefined, 120_000, 1000)).toBe(true);
    expect((await resultAt(id))!.status).toBe("succeeded");
    // the result is at the tip; the forge heard nothing of it, and the outbox says so
    await new Promise((r) => setTimeout(r, 2000));
    expect((await statusesOf(repo.repo, merge)).map((s) => s.status)).toEqual(["pending"]);
    expect(await commentsOf(repo.repo, pr.number)).toEqual([]);
    const unsent = d.forge!.unsent();
    expect(unsent.map((r) => [r.id, r.status.state, r.commit])).toEqual([[id, "success", merge]]);
    expect(unsent[0]!.tries).toBeGreaterThan(0);
    // `status` shows it from the daemon's outbox
    const status = await runCli(["status"], await cliEnv(repo.remote, dEnv));
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`forge: 1 report not sent yet (retried by the daemon):\n  ${id}  success + comment on ${merge.slice(0, 12)} since `);
    expect(readOutbox(outbox).map((r) => r.id)).toEqual([id]);
    await relay.up();
    expect(await waitUntil(async () => d.forge!.unsent().length === 0, 90_000, 500)).toBe(true);
    expect(readOutbox(outbox)).toEqual([]);
    expect((await statusesOf(repo.repo, merge)).map((s) => `${s.context} ${s.status}`)).toEqual([`dispatcher/${id} pending`, `dispatcher/${id} success`]);
    const comments = await commentsOf(repo.repo, pr.number);
    expect(comments).toHaveLength(1);
    expect(comments[0]!.body).toContain("slow start\nslow end");
    // a while later: nothing was sent twice
    await new Promise((r) => setTimeout(r, 3000));
    expect((await statusesOf(repo.repo, merge)).length).toBe(2);
    expect(await commentsOf(repo.repo, pr.number)).toHaveLength(1);
  });
});

describe("Gitea stopped while a result lands", () => {
  const id = `forge-stopped-${u}`;

  it("the result waits for the git remote (Gitea's own SSH), then the commit is pushed, and status and comment follow once", { timeout: 600_000 }, async () => {
    // the other files using Gitea finish first (they hold it shared), and wait for this test
    const release = await holdGiteaAlone();
    try {
      await stoppedWhileResultLands();
    } finally {
      release();
    }
  });

  async function stoppedWhileResultLands(): Promise<void> {
    const pr = await openPullRequest(repo.repo, `add-${id}`, { [`vault/actions/${id}.toml`]: action(id, "forge-slow2"), "formulas/forge-slow2.sh": '#!/usr/bin/env bash\necho "slow two"\nsleep 8\necho "done two"\n' }, `actions: ${id}`);
    const merge = await mergePullRequest(repo.repo, pr.number);
    expect(await waitUntil(async () => (await statusesOf(repo.repo, merge)).some((s) => s.context === `dispatcher/${id}` && s.status === "pending"), 120_000, 300)).toBe(true);
    let kept = 0;
    const off = d.loop.events.on("results:kept", () => kept++);
    await stopGitea();
    try {
      // the run ends while Gitea is away: the push fails and the result is kept (in the ledger too)
      expect(await waitUntil(async () => kept > 0, 120_000, 500)).toBe(true);
    } finally {
      await startGitea();
      off();
    }
    expect(await waitUntil(async () => (await resultAt(id)) !== undefined, 120_000, 1000)).toBe(true);
    expect((await resultAt(id))!.status).toBe("succeeded");
    expect(await waitUntil(async () => d.forge!.unsent().length === 0 && (await commentsOf(repo.repo, pr.number)).length > 0, 90_000, 500)).toBe(true);
    expect((await statusesOf(repo.repo, merge)).map((s) => `${s.context} ${s.status}`)).toEqual([`dispatcher/${id} pending`, `dispatcher/${id} success`]);
    const comments = await commentsOf(repo.repo, pr.number);
    expect(comments).toHaveLength(1);
    expect(comments[0]!.body).toContain("slow two\ndone two");
  }
});

describe("doctor checks the forge", () => {
  const forgeChecks = async (env: Record<string, string> = {}) => {
    const config = loadConfig({ env: { ...dispatcherEnv(repo.remote), ...dEnv, DISPATCHER_WORKDIR: join(tmpdir(), `doctor-${u}`), ...env } });
    return (await checkSetup(config)).filter((c) => c.name.startsWith("forge"));
  };

  it("the bot's token is valid, writes to the repo, is no admin and has no user scope; the push webhook is registered", async () => {
    const checks = await forgeChecks();
    expect(checks.map((c) => [c.name, c.ok])).toEqual([["forge token", true], ["forge scope", true], ["forge webhook", true]]);
    expect(checks[0]!.detail).toBe(`${relay.url}: valid for ${repo.repo}`);
    expect(checks[1]!.detail).toBe(`writes to ${repo.repo}, not as its admin; no user scope`);
    expect(checks[2]!.detail).toMatch(new RegExp(`^push webhook #\\d+ → ${served.url}/hooks/push active; its last deliveries: ${relay.url}/${repo.repo}/settings/hooks/\\d+ \\(the API has no delivery history\\)$`));
  });

  it("a site admin's token fails the scope check (more than the bot needs)", async () => {
    const scope = (await forgeChecks({ DISPATCHER_FORGE_TOKEN_FILE: join(forgeEnv().dir, "admin-token") })).find((c) => c.name === "forge scope")!;
    expect(scope.ok).toBe(false);
    expect(scope.detail).toBe(`the token's user is an admin of ${repo.repo}: write access is enough; the token reads its user's account (admin: a user scope); admin is a site admin`);
  });

  it("the repo owner's token (with a user scope) fails the scope check", async () => {
    const scope = (await forgeChecks({ DISPATCHER_FORGE_TOKEN_FILE: join(forgeEnv().dir, "operator-token") })).find((c) => c.name === "forge scope")!;
    expect(scope.ok).toBe(false);
    expect(scope.detail).toBe(`the token's user is an admin of ${repo.repo}: write access is enough; the token reads its user's account (operator: a user scope)`);
  });
});
