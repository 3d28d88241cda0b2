// Bounded state, on the real ledger: the heartbeat of a replica silent past the retention leaves
// the ledger when a dispatcher beats; a replica that beat within it stays, and so does the
// dispatcher's own. `status --instances` no longer lists the one that is gone.
import { afterAll, expect, it } from "vitest";
import { cliEnv, runCli } from "../helpers/cli.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { sleep } from "../helpers/process.js";
import { waitUntil } from "../helpers/process.js";
import { childrenOf, createTestDispatcher, dispatcherNomad, nomadHttp, stackEnv, uniq } from "../helpers/stack.js";
import { createNomadLedger } from "../../dispatcher/nomad/ledger.js";

const remotes: OpsRemote[] = [];
afterAll(async () => {
  await Promise.all(remotes.map((r) => r.cleanup()));
});

/** An ops repo with one action, on a ledger prefix of its own (its limits, heartbeats and entries are this test's alone). */
async function oneAction() {
  const tag = `ret-${uniq()}`;
  const id = `${tag}-a`;
  const remote = await createOpsRemote({
    "formulas/say.sh": "#!/usr/bin/env bash\necho said\n",
    [`vault/actions/${id}.toml`]: `id = "${id}"\nformula = "say"\ncontext = "retention"\nsecrets = []\n`,
  });
  remotes.push(remote);
  const prefix = `dispatcher/${tag}`;
  return { tag, id, remote, prefix, ledger: createNomadLedger(dispatcherNomad(), prefix) };
}

it("removes the heartbeats of replicas silent past the retention, keeps the others", async () => {
  const { tag, id, remote, prefix, ledger } = await oneAction();
  await ledger.heartbeat(`${tag}-gone`, new Date(Date.now() - 120_000), { inFlight: 0, draining: false, version: "0" });
  await ledger.heartbeat(`${tag}-recent`, new Date(Date.now() - 10_000), { inFlight: 0, draining: false, version: "0" });
  const me = `${tag}-me`;
  const d = await createTestDispatcher(remote.remote, { DISPATCHER_LEDGER_PREFIX: prefix, DISPATCHER_INSTANCE: me, DISPATCHER_INSTANCE_RETENTION_SECONDS: "60" });
  await d.loop.once();
  expect((await ledger.instances()).map((b) => b.instance).sort()).toEqual([`${tag}-me`, `${tag}-recent`]);
  expect(d.captured.lines.filter((l) => l.msg === "removed the heartbeat of a replica silent past the retention").map((l) => l.replica)).toEqual([`${tag}-gone`]);
  const status = await runCli(["status", "--instances"], await cliEnv(remote.remote, { DISPATCHER_LEDGER_PREFIX: prefix }));
  expect(status.stdout).not.toContain(`${tag}-gone`);
  expect(status.stdout).toContain(`${tag}-recent`);
  // the action itself ran once and is recorded
  expect(JSON.parse((await remote.read(`vault/actions/${id}.result.json`))!).status).toBe("succeeded");
});

it("removes a recorded action's ledger entry after the retention, never before; nothing runs again and status still shows it", async () => {
  const { tag, id, remote, prefix, ledger } = await oneAction();
  const env = (name: string) => ({ DISPATCHER_LEDGER_PREFIX: prefix, DISPATCHER_INSTANCE: `${tag}-${name}`, DISPATCHER_LEDGER_RETENTION_SECONDS: "5" });
  const first = await createTestDispatcher(remote.remote, env("one"));
  await first.loop.once();
  // once returns when the result is pushed; marking the entry recorded may land just after
  expect(await waitUntil(async () => (await ledger.get(id))?.state === "recorded", 10_000, 200)).toBe(true);
  // within the retention a sweep (a new replica's first beat) leaves it
  await (await createTestDispatcher(remote.remote, env("two"))).loop.once();
  expect((await ledger.get(id))?.state).toBe("recorded");
  await sleep(5500);
  const third = await createTestDispatcher(remote.remote, env("three"));
  await third.loop.once();
  expect(await ledger.get(id)).toBeUndefined();
  expect(third.captured.lines.filter((l) => l.msg === "removed a recorded ledger entry past the retention").map((l) => l.action)).toEqual([id]);
  // the result at the tip is the record: no replica claims the action again
  await (await createTestDispatcher(remote.remote, env("four"))).loop.once();
  expect(await ledger.get(id)).toBeUndefined();
  expect(await childrenOf("runner", id)).toHaveLength(1);
  const status = await runCli(["status"], await cliEnv(remote.remote, { DISPATCHER_LEDGER_PREFIX: prefix }));
  expect(status.stdout.split("\n").some((l) => l.startsWith(id) && l.includes("succeeded"))).toBe(true);
});

it("a restart resumes the purge schedule from the ledger: the child its earlier life recorded is purged after the retention", async () => {
  const { tag, id, remote, prefix } = await oneAction();
  const env = { NOMAD_TOKEN: stackEnv().janitorToken, DISPATCHER_LEDGER_PREFIX: prefix, DISPATCHER_INSTANCE: `${tag}-me`, DISPATCHER_PURGE_AFTER_SECONDS: "4" };
  // the first life records the result and ends before the purge is due: its schedule dies with it
  await (await createTestDispatcher(remote.remote, env)).loop.once();
  const [jobId] = await childrenOf("runner", id);
  const exists = async () => (await nomadHttp("GET", `/v1/job/${encodeURIComponent(jobId!)}?namespace=${stackEnv().NOMAD_NAMESPACE}`)).status === 200;
  expect(await exists()).toBe(true);
  // the next life reads it back from the ledger and purges the child once the retention has passed
  const next = await createTestDispatcher(remote.remote, env);
  const stop = new AbortController();
  const running = next.loop.run(stop.signal, 1000);
  try {
    expect(await waitUntil(async () => !(await exists()), 30_000, 500)).toBe(true);
  } finally {
    stop.abort();
    await running;
  }
  expect(next.captured.lines.filter((l) => l.msg === "purged from Nomad: its result is in the ops repo").map((l) => l.job_id)).toEqual([jobId]);
  expect((await createNomadLedger(dispatcherNomad(), prefix).get(id))?.purgedAt).toBeDefined();
});
