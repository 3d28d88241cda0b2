// A three-server Nomad (scripts/cluster.sh): the leader killed with -9 in the middle of a batch
// and brought back; the client agent restarted under running exec tasks. Duplicates are counted
// from Nomad's children and from the formula's own side effect (test/helpers/witness.ts).
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { cluster, clusterAllocations, clusterDispatcherEnv, clusterNomad, clusterUp, leader, type ClusterEnv } from "../helpers/cluster.js";
import type { NomadClient } from "../../dispatcher/nomad/client.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { sleep, spawnDispatcher, waitUntil } from "../helpers/process.js";
import { childrenByAction, grantSecret, uniq } from "../helpers/stack.js";
import { startWitness, type Witness } from "../helpers/witness.js";
import { FORMULAS, actionFiles, actionIds, readResults, resultWrites, tally, unsuccessful, witnessed } from "./corpus.js";

let c: ClusterEnv;
let witness: Witness;
/** one client for the test's own reads: Nomad allows 100 connections per client address */
let nomad: NomadClient;
const remotes: OpsRemote[] = [];

beforeAll(async () => {
  c = await clusterUp();
  nomad = clusterNomad(c);
  witness = await startWitness(join(await mkdtemp(join(tmpdir(), "fault-cluster-")), "runs"));
  await grantSecret("FAULT_SECRET", "fault-secret-value");
}, 180_000);

afterAll(async () => {
  await witness?.close();
  await Promise.all(remotes.map((r) => r.cleanup()));
});

/** `dispatcher run` on the cluster through `addr` over `files`, until `ids` all have results. */
async function runOnCluster(label: string, addr: string, files: Record<string, string>, ids: string[], disturb: (children: () => Promise<number>) => Promise<string[]>) {
  const remote = await createOpsRemote(files);
  remotes.push(remote);
  const work = await mkdtemp(join(tmpdir(), `fault-${label}-`));
  const logFile = join(work, "dispatcher.log");
  const started = Date.now();
  const p = spawnDispatcher(
    ["run"],
    {
      ...clusterDispatcherEnv(c, addr),
      DISPATCHER_OPS_REMOTE: remote.remote,
      DISPATCHER_WORKDIR: join(work, "ops"),
      DISPATCHER_INSTANCE: `${label}-${uniq()}`,
      DISPATCHER_SECRETS: "FAULT_SECRET",
      DISPATCHER_POLL_SECONDS: "1",
      DISPATCHER_MAX_IN_FLIGHT: "8",
      DISPATCHER_CONFIG: "",
    },
    logFile,
  );
  const ours = async () => {
    try {
      const children = await childrenByAction("runner", nomad);
      return ids.filter((id) => children.has(id)).length;
    } catch {
      return 0; // no leader at this moment
    }
  };
  let faults: string[];
  let allDone: boolean;
  try {
    faults = await disturb(ours);
    allDone = await waitUntil(async () => (await readResults(remote, ids)).size === ids.length, 300_000, 2000);
  } finally {
    // a failed check stops it too: a dispatcher left running outlives the test
    p.child.kill("SIGTERM");
    await p.exited;
  }
  const results = await readResults(remote, ids);
  const t = tally(ids, results, await childrenByAction("runner", nomad), witness.runs());
  const attempts = [...results.values()].reduce((n, r) => n + r.attempts, 0);
  console.log(
    `fault ${label}: faults=[${faults.join(", ")}] actions=${ids.length} results=${results.size} attempts=${attempts} formula_runs=${t.runs} duplicates=${t.duplicates.length} lost=${t.lost.length} duration_s=${Math.round((Date.now() - started) / 1000)} log=${logFile}`,
  );
  return { allDone, results, t, writes: await resultWrites(remote) };
}

it("the Nomad leader killed with -9 twice in the middle of 30 dispatches, brought back each time: 0 duplicates, 0 lost", async () => {
  const prefix = `lead-${uniq()}`;
  const ids = actionIds(prefix, 30);
  // the dispatcher talks to the node's agent, as jobspecs/dispatcher.nomad.hcl has it: the agent
  // forwards to whichever server leads
  const run = await runOnCluster("leader", c.NOMAD_CLIENT_ADDR, { ...witnessed(FORMULAS, witness), ...actionFiles(prefix, 30, "FAULT_SECRET") }, ids, async (children) => {
    const faults: string[] = [];
    for (const after of [6, 18]) {
      expect(await waitUntil(async () => (await children()) >= after, 120_000, 250)).toBe(true);
      const dispatchedAtKill = await children();
      const old = await leader();
      await cluster("kill", String(old));
      await sleep(3000);
      const next = await leader();
      await cluster("start", String(old));
      faults.push(`leader ${old} killed at ${dispatchedAtKill} children, ${next} elected, ${old} back`);
      expect(next).not.toBe(old);
    }
    return faults;
  });
  expect(run.allDone).toBe(true);
  expect(run.t.lost).toEqual([]);
  expect(run.t.duplicates).toEqual([]);
  expect(unsuccessful(run.results)).toEqual([]);
  expect([...run.writes.entries()].filter(([, n]) => n !== 1)).toEqual([]);
}, 600_000);

/** six actions, one formula each (serialize_by = "formula" would run them one at a time), each running 12 s */
function longActions(prefix: string): { ids: string[]; files: Record<string, string> } {
  const ids = actionIds(prefix, 6);
  const files: Record<string, string> = {};
  ids.forEach((id, i) => {
    files[`formulas/long${i}.sh`] = `#!/usr/bin/env bash\nset -eu\n${witness.line}\nsleep 12\necho "done $ACTION_ID"\n`;
    files[`vault/actions/${id}.toml`] = `id = "${id}"\nformula = "long${i}"\ncontext = "client faults"\nsecrets = []\n`;
  });
  return { ids, files };
}

/** until all of `ids` have an allocation running */
async function allRunning(ids: string[], through = nomad): Promise<boolean> {
  const running = async () => {
    const children = await childrenByAction("runner", through);
    const jobs = ids.flatMap((id) => children.get(id) ?? []);
    return (await Promise.all(jobs.map((job) => clusterAllocations(c, job)))).flat().filter((a) => a.ClientStatus === "running").length;
  };
  return waitUntil(async () => (await running()) === ids.length, 120_000, 500);
}

it("the client agent restarted under six running exec tasks: Nomad 1.6.3 re-attaches them, each action runs once", async () => {
  const { ids, files } = longActions(`cli-${uniq()}`);
  // through a server: the restarted agent is the tasks' node only
  const run = await runOnCluster("client-restart", c.NOMAD_ADDRS.split(",")[1]!, files, ids, async () => {
    expect(await allRunning(ids)).toBe(true);
    await cluster("restart-client");
    return [`client agent restarted under ${ids.length} running tasks`];
  });
  expect(run.allDone).toBe(true);
  expect(run.t.lost).toEqual([]);
  expect(run.t.duplicates).toEqual([]);
  expect(unsuccessful(run.results)).toEqual([]);
  // re-attached: one attempt each, one run of the formula each
  expect([...run.results.values()].map((r) => r.attempts)).toEqual(ids.map(() => 1));
  expect(run.t.runs).toBe(ids.length);
}, 600_000);

// FAILS TODAY, so it runs only with FAULT_CLIENT_DOWN=1 (vitest lists it as skipped otherwise):
// the agent down 28 s, its six allocations were marked lost; Nomad 1.6.3 then placed a
// replacement allocation of each lost child itself (reschedule attempts 0 notwithstanding) when the
// node came back, and the dispatcher also retried each as a new child: 6 results, 12 attempts,
// 18 formula runs (the original, which finished unseen while the agent was down, Nomad's
// replacement, and the retry). The dispatcher's answer should follow Nomad's replacement of a
// lost allocation (the same child) instead of dispatching another.
it.runIf(process.env.FAULT_CLIENT_DOWN === "1")("the client agent down past the heartbeat grace under six running exec tasks: Nomad marks them lost; each formula runs at most twice (the unseen original and one more)", async () => {
  const { ids, files } = longActions(`cld-${uniq()}`);
  // the test's reads go to a server: the client agent is down
  const server = clusterNomad(c, c.NOMAD_ADDR);
  const run = await runOnCluster("client-down", c.NOMAD_ADDRS.split(",")[1]!, files, ids, async () => {
    expect(await allRunning(ids)).toBe(true);
    await cluster("stop-client");
    // the node is down once its heartbeat TTL and grace have passed (about 20 s here)
    const downFor = Date.now();
    const lost = await waitUntil(async () => {
      const children = await childrenByAction("runner", server);
      const allocs = (await Promise.all(ids.flatMap((id) => children.get(id) ?? []).map((job) => clusterAllocations(c, job)))).flat();
      return allocs.filter((a) => a.ClientStatus === "lost").length >= ids.length;
    }, 120_000, 1000);
    await cluster("start-client");
    return [`client agent down ${Math.round((Date.now() - downFor) / 1000)} s under ${ids.length} running tasks, lost=${lost}`];
  });
  expect(run.allDone).toBe(true);
  expect(run.t.lost).toEqual([]);
  expect(run.t.duplicates).toEqual([]);
  expect(unsuccessful(run.results)).toEqual([]);
  // the original may have finished unseen while its agent was down: one more run at most
  expect(ids.filter((id) => (witness.runs().get(id) ?? 0) > 2)).toEqual([]);
}, 600_000);
