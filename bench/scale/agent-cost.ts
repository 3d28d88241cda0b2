// What each request the dispatcher sends per action costs the Nomad agent (its own CPU, /proc):
// `node dist/bench/scale/agent-cost.js [N]` (the stack up, after a `make bench` registered the bench
// jobs) dispatches one bench-mock child, waits for its end, then sends N (default 300) of each of
// the dispatcher's per-action requests through the dispatcher's own Nomad client (the same
// transport), and prints the agent's CPU per request, less its background rate measured just
// before. Then N mock children twice each way,
// alternating, dispatched at concurrency 64 by the raw client with and without an open
// Allocation event stream beside them: what the stream's subscriber costs the agent per child.
import { buildMeta } from "../../contract.js";
import { createNomadPort } from "../../nomad/client.js";
import { createNomadLedger } from "../../nomad/ledger.js";
import { createNomadPlaces } from "../../nomad/places.js";
import { runRaw } from "../contenders/raw.js";
import { MOCK_JOB } from "../jobs.js";
import { createBenchNomad } from "../nomad.js";
import { diffCpu, readCpu } from "../proc.js";
import { readStack } from "../settings.js";
import { runPool } from "../stats.js";

const n = Number(process.argv[2] ?? 300);
const stack = readStack();
const bench = createBenchNomad(stack.NOMAD_ADDR, stack.NOMAD_TOKEN, stack.NOMAD_NAMESPACE);
const admin = createBenchNomad(stack.NOMAD_ADDR, stack.managementToken, stack.NOMAD_NAMESPACE);
const nomad = createNomadPort({ addr: stack.NOMAD_ADDR, token: stack.NOMAD_TOKEN, namespace: stack.NOMAD_NAMESPACE });
const prefix = `dispatcher/agent-cost-${Date.now().toString(36)}`;
const ledger = createNomadLedger(nomad, prefix);
const places = createNomadPlaces(nomad, prefix);

const meta = (id: string) =>
  buildMeta({ actionId: id, actionSha: "0".repeat(40), actionPath: `vault/actions/${id}.toml`, commit: "0".repeat(40), formula: "noop", opsRepo: "git://127.0.0.1/none.git", secrets: [], mounts: [], kvMount: "kv" }, { attempt: "1", timeout_minutes: "60" });

/** the agent's own CPU per ms while nobody asks it anything (its background work), measured over `ms` */
async function idleRate(ms = 3000): Promise<number> {
  const before = readCpu(stack.nomadPid);
  await new Promise((r) => setTimeout(r, ms));
  return diffCpu(before, readCpu(stack.nomadPid)).selfMs / ms;
}

/**
 * The agent's CPU (itself, not its tasks) per call of `step`, `n` calls at `concurrency` at a
 * time, less its background rate (measured just before) over the same time
 */
async function perCall(name: string, step: (i: number) => Promise<unknown>, concurrency = 8): Promise<void> {
  const idle = await idleRate();
  const before = readCpu(stack.nomadPid);
  const t = performance.now();
  await runPool(
    Array.from({ length: n }, (_, i) => i),
    concurrency,
    async (i) => void (await step(i)),
  );
  const wall = performance.now() - t;
  const agent = diffCpu(before, readCpu(stack.nomadPid));
  const own = (agent.selfMs - idle * wall) / n;
  process.stdout.write(`${name.padEnd(58)} agent ${own.toFixed(2).padStart(6)} ms/call  (${n} calls, ${(wall / n).toFixed(1)} ms wall each; background ${(idle * 1000).toFixed(0)} ms/s)\n`);
}

const child = await bench.dispatch(MOCK_JOB, meta("agent-cost"));
await bench.waitTerminal(child);
const alloc = (await nomad.allocationsOf(child)).allocations[0]!;

// twice each, alternating: the agent's background work (a purge's aftermath) drifts
for (let round = 0; round < 2; round++) {
  await perCall("GET /v1/job/<parent> (check_parent)", () => nomad.parentSpec(MOCK_JOB));
  await perCall("GET /v1/job/<child> (the child's check)", () => nomad.childJob(child));
}
await perCall("GET /v1/job/<child>/allocations", () => nomad.allocationsOf(child));
await perCall("GET logs stdout, from the end (collect)", () => nomad.readLog(alloc.id, "runner", "stdout", 65536));
await perCall("PUT var, cas=0 (ledger claim)", (i) => ledger.create(`c-${i}`, { state: "claimed", owner: "cost", attempt: 1, actionSha: "0".repeat(40), commit: "0".repeat(40), updatedAt: new Date().toISOString() }));
const entries = await Promise.all(Array.from({ length: n }, (_, i) => ledger.get(`c-${i}`)));
await perCall("PUT var, cas=index (ledger update)", (i) => ledger.update(entries[i]!, { state: "dispatched" }));
await perCall("PUT var slot, cas=0 (places create)", (i) => places.create(`slot/${i}`, { owner: "cost", session: "s", action: `c-${i}`, since: new Date().toISOString(), until: new Date().toISOString() }));
const slots = await Promise.all(Array.from({ length: n }, (_, i) => places.get(`slot/${i}`)));
await perCall("DELETE var slot, cas (places free)", (i) => places.remove(slots[i]!));

/** raw's mock batch of `n`, with an Allocation event stream open beside it or not: the agent's CPU per child */
async function batch(withStream: boolean): Promise<number> {
  await admin.collectGarbage();
  const stop = new AbortController();
  let lines = 0;
  const reading = withStream
    ? (async () => {
        for await (const b of nomad.allocationEvents(Number.MAX_SAFE_INTEGER, stop.signal)) if (!b.heartbeat) lines += b.allocations.length;
      })().catch(() => undefined)
    : Promise.resolve();
  await new Promise((r) => setTimeout(r, 500));
  const before = readCpu(stack.nomadPid);
  await runRaw(bench, MOCK_JOB, Array.from({ length: n }, (_, i) => meta(`b-${i}`)), 64);
  const agent = diffCpu(before, readCpu(stack.nomadPid));
  stop.abort();
  await reading;
  process.stdout.write(`mock batch of ${n}, ${withStream ? `event stream open (${lines} allocation changes)` : "no event stream"}`.padEnd(58) + ` agent ${(agent.selfMs / n).toFixed(2).padStart(6)} ms/child\n`);
  return agent.selfMs / n;
}
for (const withStream of [false, true, false, true]) await batch(withStream);
nomad.close();
bench.closeIdle();
admin.closeIdle();
