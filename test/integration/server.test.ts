// What `dispatcher run` serves, on the real stack: /metrics counts what the results say,
// /readyz follows OpenBao going away and coming back, /hooks/push starts a pass only for a
// correctly signed push (a forged or replayed delivery starts none), and the replicas' view.
import { createHmac, randomUUID } from "node:crypto";
import { spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Served } from "../../dispatcher/server/http.js";
import { cliEnv, runCli } from "../helpers/cli.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { waitUntil } from "../helpers/process.js";
import { createRelay, type Outage } from "../helpers/proxy.js";
import { createTestDispatcher, stackEnv, uniq, type TestDispatcher } from "../helpers/stack.js";

const cliPath = new URL("../../dist/dispatcher.mjs", import.meta.url).pathname;
const u = uniq();
const ids = { ok: `metrics-ok-${u}`, secret: `metrics-secret-${u}`, bad: `metrics-bad-${u}`, hooked: `hooked-${u}` };
const action = (id: string, formula: string, secrets = "[]") => `id = "${id}"\nformula = "${formula}"\ncontext = "server test"\nsecrets = ${secrets}\n`;
const secret = `hook-${randomUUID()}`;

let remote: OpsRemote;
let vault: Outage;
let d: TestDispatcher;
let served: Served;
const stop = new AbortController();
let running: Promise<void>;
/** commits of the passes that finished, in order */
const passes: string[] = [];

beforeAll(async () => {
  remote = await createOpsRemote({
    "formulas/hello.sh": '#!/usr/bin/env bash\necho "hello from the server test"\n',
    "formulas/uses-secret.sh": '#!/usr/bin/env bash\ntest -n "$DEMO_TOKEN" && echo "have the token"\n',
    [`vault/actions/${ids.ok}.toml`]: action(ids.ok, "hello"),
    [`vault/actions/${ids.secret}.toml`]: action(ids.secret, "uses-secret", '["DEMO_TOKEN"]'),
    [`vault/actions/${ids.bad}.toml`]: action(ids.bad, "missing"),
  });
  vault = await createRelay(stackEnv().VAULT_ADDR);
  const secretFile = join(await mkdtemp(join(tmpdir(), "hook-")), "secret");
  await writeFile(secretFile, `${secret}\n`);
  d = await createTestDispatcher(remote.remote, {
    VAULT_ADDR: vault.url,
    DISPATCHER_SECRETS: "DEMO_TOKEN",
    DISPATCHER_LISTEN: "127.0.0.1:0",
    DISPATCHER_WEBHOOK_SECRET_FILE: secretFile,
  });
  d.loop.events.on("pass:done", (e) => passes.push(e.commit));
  served = (await d.serve())!;
  // a poll every 10 minutes: any later pass in this file was started by the webhook
  running = d.loop.run(stop.signal, 600_000);
}, 60_000);

afterAll(async () => {
  stop.abort();
  await running;
  await served?.close();
  await vault?.close();
  await remote?.cleanup();
});

async function get(path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${served.url}${path}`);
  return { status: res.status, text: await res.text() };
}

function sample(text: string, line: string): string | undefined {
  return text.split("\n").find((l) => l.startsWith(`${line} `));
}

function deliver(body: string, headers: Record<string, string>): Promise<Response> {
  return fetch(`${served.url}/hooks/push`, { method: "POST", body, headers: { "Content-Type": "application/json", ...headers } });
}

const sign = (body: string, key = secret) => createHmac("sha256", key).update(body).digest("hex");

describe("/metrics and /healthz", () => {
  it("count the results the run wrote", async () => {
    const done = await waitUntil(async () => (await Promise.all([ids.ok, ids.secret, ids.bad].map((id) => remote.read(`vault/actions/${id}.result.json`)))).every(Boolean), 120_000);
    expect(done).toBe(true);
    expect(JSON.parse((await remote.read(`vault/actions/${ids.secret}.result.json`))!)).toMatchObject({ status: "succeeded" });
    expect(await get("/healthz")).toEqual({ status: 200, text: "ok\n" });
    // the ledger is marked recorded right after the push; metrics follow the same events
    await waitUntil(async () => sample((await get("/metrics")).text, "dispatcher_results_pushed_total") !== undefined && !/results_pushed_total [0-2]$/m.test((await get("/metrics")).text), 10_000, 200);
    const m = await get("/metrics");
    expect(m.status).toBe(200);
    expect(sample(m.text, 'dispatcher_actions_total{status="succeeded",class="none"}')).toBe('dispatcher_actions_total{status="succeeded",class="none"} 2');
    expect(sample(m.text, 'dispatcher_actions_total{status="invalid",class="invalid"}')).toBe('dispatcher_actions_total{status="invalid",class="invalid"} 1');
    expect(sample(m.text, "dispatcher_results_pushed_total")).toBe("dispatcher_results_pushed_total 3");
    expect(sample(m.text, 'dispatcher_tokens_total{op="mint",outcome="ok"}')).toBe('dispatcher_tokens_total{op="mint",outcome="ok"} 1');
    expect(sample(m.text, 'dispatcher_tokens_total{op="revoke",outcome="ok"}')).toBe('dispatcher_tokens_total{op="revoke",outcome="ok"} 1');
    expect(sample(m.text, 'dispatcher_dispatches_total{duplicate="false"}')).toBe('dispatcher_dispatches_total{duplicate="false"} 2');
    expect(sample(m.text, "dispatcher_dispatch_to_start_seconds_count")).toBe("dispatcher_dispatch_to_start_seconds_count 2");
    expect(sample(m.text, "dispatcher_dispatch_to_result_seconds_count")).toBe("dispatcher_dispatch_to_result_seconds_count 2");
    expect(sample(m.text, "dispatcher_actions_in_flight")).toBe("dispatcher_actions_in_flight 0");
    expect(sample(m.text, "dispatcher_ledger_conflicts_total")).toBe("dispatcher_ledger_conflicts_total 0");
    // no metric carries a token or secret value
    expect(m.text).not.toMatch(/hvs\.|s\.[A-Za-z0-9]{24}|demo-token-value/);
  });
});

describe("/readyz", () => {
  it("turns unready when OpenBao goes away and ready again when it is back", async () => {
    const ready = await get("/readyz");
    expect(ready.status, ready.text).toBe(200);
    expect(JSON.parse(ready.text)).toMatchObject({ ready: true, checks: [{ name: "pass", ok: true }, { name: "vault", ok: true }, { name: "nomad", ok: true }] });
    await vault.down();
    const down = await get("/readyz");
    expect(down.status).toBe(503);
    const vaultCheck = (JSON.parse(down.text) as { checks: { name: string; ok: boolean; detail: string }[] }).checks.find((c) => c.name === "vault");
    expect(vaultCheck).toMatchObject({ ok: false });
    expect(vaultCheck!.detail).toMatch(/ECONNREFUSED|socket hang up|ECONNRESET/);
    await vault.up();
    expect(await waitUntil(async () => (await get("/readyz")).status === 200, 10_000, 250)).toBe(true);
  });
});

describe("POST /hooks/push", () => {
  it("starts a pass for a signed push to the branch; a forged or replayed delivery starts none", async () => {
    const tip = await remote.commit({ [`vault/actions/${ids.hooked}.toml`]: action(ids.hooked, "hello") }, "add an action");
    const body = JSON.stringify({ ref: "refs/heads/main", after: tip });
    const before = passes.length;

    const forged = await deliver(body, { "X-Hub-Signature-256": `sha256=${sign(body, "not-the-secret-at-all")}`, "X-GitHub-Event": "push", "X-GitHub-Delivery": "forged-1" });
    expect(forged.status).toBe(401);
    expect(await forged.text()).toBe("X-Hub-Signature-256 does not match the body under the shared secret\n");
    const other = JSON.stringify({ ref: "refs/heads/feature" });
    const ignored = await deliver(other, { "X-Gitea-Signature": sign(other), "X-Gitea-Event": "push" });
    expect(ignored.status).toBe(202);
    expect(await ignored.text()).toBe("ignored: push to refs/heads/feature, not refs/heads/main\n");
    await new Promise((r) => setTimeout(r, 1500));
    expect(passes.length).toBe(before);

    const ok = await deliver(body, { "X-Gitea-Signature": sign(body), "X-Gitea-Event": "push", "X-Gitea-Delivery": `delivery-${u}` });
    expect(ok.status).toBe(202);
    expect(await waitUntil(async () => passes.includes(tip), 20_000, 100)).toBe(true);
    expect(await waitUntil(async () => (await remote.read(`vault/actions/${ids.hooked}.result.json`)) !== undefined, 120_000)).toBe(true);

    const after = passes.length;
    const replay = await deliver(body, { "X-Gitea-Signature": sign(body), "X-Gitea-Event": "push", "X-Gitea-Delivery": `delivery-${u}` });
    expect(replay.status).toBe(202);
    expect(await replay.text()).toBe(`delivery delivery-${u} was already handled\n`);
    await new Promise((r) => setTimeout(r, 1500));
    expect(passes.length).toBe(after);
    const m = (await get("/metrics")).text;
    expect(sample(m, 'dispatcher_webhook_deliveries_total{outcome="unauthorized"}')).toBe('dispatcher_webhook_deliveries_total{outcome="unauthorized"} 1');
    expect(sample(m, 'dispatcher_webhook_deliveries_total{outcome="replayed"}')).toBe('dispatcher_webhook_deliveries_total{outcome="replayed"} 1');
  });
});

describe("POST /hooks/push under attack", () => {
  it("a flood of unsigned requests does not starve a signed delivery; a replayed body without a delivery id starts no second pass", async () => {
    const tip = await remote.commit({ [`vault/actions/flood-${u}.toml`]: action(`flood-${u}`, "hello") }, "add an action during a flood");
    const body = JSON.stringify({ ref: "refs/heads/main", after: tip });
    // 50 forged requests in well under the 10 s window (the limit is 20)
    const flood = await Promise.all(Array.from({ length: 50 }, (_, i) => deliver(body, { "X-Hub-Signature-256": `sha256=${sign(`${body}${i}`)}`, "X-GitHub-Event": "push" })));
    expect(flood.map((r) => r.status)).toEqual(Array(50).fill(401));
    const ok = await deliver(body, { "X-Hub-Signature-256": `sha256=${sign(body)}`, "X-GitHub-Event": "push" });
    expect([ok.status, await ok.text()]).toEqual([202, "pass started\n"]);
    expect(await waitUntil(async () => passes.includes(tip), 20_000, 100)).toBe(true);
    // the action's end starts passes of its own: count after its result is in
    expect(await waitUntil(async () => (await remote.read(`vault/actions/flood-${u}.result.json`)) !== undefined, 120_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 3000));
    const after = passes.length;
    // the same signed body again, no delivery id (or a new one: the header is not signed)
    for (const extra of [{}, { "X-GitHub-Delivery": `fresh-${u}` }] as Record<string, string>[]) {
      const replay = await deliver(body, { "X-Hub-Signature-256": `sha256=${sign(body)}`, "X-GitHub-Event": "push", ...extra });
      expect(replay.status).toBe(202);
    }
    await new Promise((r) => setTimeout(r, 1500));
    expect(passes.length).toBe(after);
    const m = (await get("/metrics")).text;
    expect(sample(m, 'dispatcher_webhook_deliveries_total{outcome="limited"}')).toBeUndefined();
    expect(sample(m, 'dispatcher_webhook_deliveries_total{outcome="replayed"}')).toBe('dispatcher_webhook_deliveries_total{outcome="replayed"} 3');
  });
});

describe("status --instances and --watch", () => {
  it("lists this replica as alive with what it holds", async () => {
    const row = new RegExp(`^${d.config.instance} +alive +\\d+s +0 +\\d+\\.\\d+\\.\\d+$`, "m");
    // a heartbeat (every lease/3, 20 s here) may have been written while the webhook's actions
    // still ran: the row shows 0 in flight from the next one
    let run = await runCli(["status", "--instances"], await cliEnv(remote.remote));
    for (let i = 0; i < 10 && run.code === 0 && !row.test(run.stdout); i++) {
      await new Promise((r) => setTimeout(r, 5000));
      run = await runCli(["status", "--instances"], await cliEnv(remote.remote));
    }
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.split("\n")[0]).toMatch(/^INSTANCE +STATE +LAST SEEN +IN FLIGHT +VERSION$/);
    expect(run.stdout).toMatch(row);
  });

  it("prints the table again on each interval and exits 0 on Ctrl-C", async () => {
    const env = await cliEnv(remote.remote);
    const child = spawn(process.execPath, [cliPath, "status", "--watch", "--interval", "1"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    expect(await waitUntil(async () => (out.match(/^ID +KIND +STATE/gm) ?? []).length >= 2, 30_000, 200)).toBe(true);
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(out).toMatch(new RegExp(`^${ids.hooked} +runner +succeeded `, "m"));
  });
});
