// Bounded state, on the real ledger: the heartbeat of a replica silent past the retention leaves
// the ledger when a dispatcher beats; a replica that beat within it stays, and so does the
// dispatcher's own. `status --instances` no longer lists the one that is gone.
import { afterAll, expect, it } from "vitest";
import { cliEnv, runCli } from "../helpers/cli.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { sleep } from "../helpers/process.js";
import { childrenOf, createTestDispatcher, dispatcherNomad, uniq } from "../helpers/stack.js";
import { createNomadLedger } from "../../dispatcher/nomad/ledger.js";

const remotes: OpsRemote[] = [];
afterAll(async () => {
  await Promise.all(remotes.map((r) => r.cleanup()));
});

it("removes the heartbeats of replicas silent past the retention, keeps the others", async () => {
  const tag = `ret-${uniq()}`;
  const id = `${tag}-a`;
  const remote = await createOpsRemote({
    "formulas/say.sh": "#!/usr/bin/env bash\necho said\n",
    [`vault/actions/${id}.toml`]: `id = "${id}"\nformula = "say"\ncontext = "retention"\nsecrets = []\n`,
  });
  remotes.push(remote);
  const prefix = `dispatcher/${tag}`;
  const ledger = createNomadLedger(dispatcherNomad(), prefix);
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
  const tag = `ret-${uniq()}`;
  const id = `${tag}-a`;
  const remote = await createOpsRemote({
    "formulas/say.sh": "#!/usr/bin/env bash\necho said\n",
    [`vault/actions/${id}.toml`]: `id = "${id}"\nformula = "say"\ncontext = "retention"\nsecrets = []\n`,
  });
  remotes.push(remote);
  const prefix = `dispatcher/${tag}`;
  const ledger = createNomadLedger(dispatcherNomad(), prefix);
  const env = (name: string) => ({ DISPATCHER_LEDGER_PREFIX: prefix, DISPATCHER_INSTANCE: `${tag}-${name}`, DISPATCHER_LEDGER_RETENTION_SECONDS: "5" });
  const first = await createTestDispatcher(remote.remote, env("one"));
  await first.loop.once();
  expect((await ledger.get(id))?.state).toBe("recorded");
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
