// OpenBao and Nomad go off the network and the ops remote vanishes during a run: nothing is
// dispatched without its token, the dispatcher does not crash, and every action ends with a
// result once they are back.
import { rename } from "node:fs/promises";
import { afterAll, expect, it } from "vitest";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createRelay, type Outage } from "../helpers/proxy.js";
import { sleep } from "../helpers/process.js";
import { grantSecret, stackEnv, uniq } from "../helpers/stack.js";
import { FORMULAS, actionFiles, actionIds, runDisturbed, unsuccessful } from "./corpus.js";

const ACTIONS = 25;
let remote: OpsRemote | undefined;
const relays: Outage[] = [];

afterAll(async () => {
  await Promise.all(relays.map((r) => r.close()));
  await remote?.cleanup();
});

it("waits out OpenBao, Nomad and git remote outages, then finishes every action with its secrets", async () => {
  const prefix = `out-${uniq()}`;
  await grantSecret("FAULT_SECRET", "fault-secret-value");
  remote = await createOpsRemote({ ...FORMULAS, ...actionFiles(prefix, ACTIONS, "FAULT_SECRET") });
  const stack = stackEnv();
  const vault = await createRelay(stack.VAULT_ADDR);
  const nomad = await createRelay(stack.NOMAD_ADDR);
  relays.push(vault, nomad);
  const ids = actionIds(prefix, ACTIONS);
  const run = await runDisturbed(remote, ids, { NOMAD_ADDR: nomad.url, VAULT_ADDR: vault.url, DISPATCHER_INSTANCE: prefix }, async () => {
    await sleep(1500);
    await vault.down();
    await sleep(6000);
    await vault.up();
    await sleep(2000);
    await nomad.down();
    await sleep(6000);
    await nomad.up();
    // the ops remote vanishes: finished results wait in the ledger and are pushed when it is back
    await rename(remote!.remote, `${remote!.remote}.away`);
    await sleep(6000);
    await rename(`${remote!.remote}.away`, remote!.remote);
  });
  console.log(`fault outage: actions=${ACTIONS} results=${run.results.size} log=${run.logFile}`);
  expect(run.alive).toBe(true);
  expect(run.allDone).toBe(true);
  // the with-secret formula exits 1 without its secret: all succeeded means none ran without it
  expect(unsuccessful(run.results)).toEqual([]);
  expect(ids.filter((id) => (run.children.get(id)?.length ?? 0) !== 1)).toEqual([]);
}, 400_000);
