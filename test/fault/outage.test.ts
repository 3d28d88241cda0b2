// OpenBao and Nomad go off the network and the ops remote vanishes during a run: nothing is
// dispatched without its token, the dispatcher does not crash, and every action ends with a
// result once they are back.
import { mkdtemp, rename } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createRelay, type Outage } from "../helpers/proxy.js";
import { sleep, spawnDispatcher, waitUntil } from "../helpers/process.js";
import { childrenByAction, grantSecret, stackEnv, uniq } from "../helpers/stack.js";
import { FORMULAS, actionFiles, actionIds, readResults } from "./corpus.js";

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
  const work = await mkdtemp(join(tmpdir(), "fault-outage-"));
  const logFile = join(work, "dispatcher.log");
  const p = spawnDispatcher(
    ["run"],
    {
      NOMAD_ADDR: nomad.url,
      VAULT_ADDR: vault.url,
      DISPATCHER_OPS_REMOTE: remote.remote,
      DISPATCHER_WORKDIR: join(work, "ops"),
      DISPATCHER_INSTANCE: prefix,
      DISPATCHER_SECRETS: "FAULT_SECRET",
      DISPATCHER_POLL_SECONDS: "1",
      DISPATCHER_MAX_IN_FLIGHT: "4",
      DISPATCHER_CONFIG: "",
    },
    logFile,
  );
  const ids = actionIds(prefix, ACTIONS);
  await sleep(1500);
  await vault.down();
  await sleep(6000);
  await vault.up();
  await sleep(2000);
  await nomad.down();
  await sleep(6000);
  await nomad.up();
  // the ops remote vanishes: finished results wait in the ledger and are pushed when it is back
  await rename(remote.remote, `${remote.remote}.away`);
  await sleep(6000);
  await rename(`${remote.remote}.away`, remote.remote);
  const allDone = await waitUntil(async () => (await readResults(remote!, ids)).size === ids.length, 240_000, 2000);
  const alive = p.child.exitCode === null;
  p.child.kill("SIGTERM");
  await p.exited;
  const results = await readResults(remote, ids);
  const children = await childrenByAction("runner");
  console.log(`fault outage: actions=${ACTIONS} results=${results.size} log=${logFile}`);
  expect(alive).toBe(true);
  expect(allDone).toBe(true);
  // the with-secret formula exits 1 without its secret: all succeeded means none ran without it
  expect([...results.values()].filter((r) => r.status !== "succeeded").map((r) => `${r.id}: ${r.status} ${r.error?.message}`)).toEqual([]);
  expect(ids.filter((id) => (children.get(id)?.length ?? 0) !== 1)).toEqual([]);
}, 400_000);
