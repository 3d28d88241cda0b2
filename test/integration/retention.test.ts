// Bounded state, on the real ledger: the heartbeat of a replica silent past the retention leaves
// the ledger when a dispatcher beats; a replica that beat within it stays, and so does the
// dispatcher's own. `status --instances` no longer lists the one that is gone.
import { afterAll, expect, it } from "vitest";
import { cliEnv, runCli } from "../helpers/cli.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createTestDispatcher, dispatcherNomad, uniq } from "../helpers/stack.js";
import { createNomadLedger } from "../../dispatcher/nomad/ledger.js";

let remote: OpsRemote | undefined;
afterAll(async () => {
  await remote?.cleanup();
});

it("removes the heartbeats of replicas silent past the retention, keeps the others", async () => {
  const tag = `ret-${uniq()}`;
  const id = `${tag}-a`;
  remote = await createOpsRemote({
    "formulas/say.sh": "#!/usr/bin/env bash\necho said\n",
    [`vault/actions/${id}.toml`]: `id = "${id}"\nformula = "say"\ncontext = "retention"\nsecrets = []\n`,
  });
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
