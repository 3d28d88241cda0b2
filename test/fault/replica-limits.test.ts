// Replicas sharing a ledger prefix share one set of limits: serialize_by keys and max_in_flight
// hold across them (core/limits.ts, nomad/places.ts). Measured from Nomad's own allocation times.
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { spawnDispatcher, waitUntil } from "../helpers/process.js";
import { childrenByAction, nomadHttp, stackEnv, uniq } from "../helpers/stack.js";
import { readResults } from "./corpus.js";

const remotes: OpsRemote[] = [];

afterAll(async () => {
  await Promise.all(remotes.map((r) => r.cleanup()));
});

interface Span {
  id: string;
  start: number;
  end: number;
}

/** When each action's child ran, from its allocations' task states (first start, last finish). */
async function spans(ids: string[]): Promise<Span[]> {
  const children = await childrenByAction("runner");
  const out: Span[] = [];
  for (const id of ids) {
    for (const jobId of children.get(id) ?? []) {
      const res = await nomadHttp("GET", `/v1/job/${encodeURIComponent(jobId)}/allocations?namespace=${stackEnv().NOMAD_NAMESPACE}`);
      const allocs = (await res.json()) as { TaskStates?: Record<string, { StartedAt?: string; FinishedAt?: string }> }[];
      for (const a of allocs) {
        const states = Object.values(a.TaskStates ?? {}).filter((t) => t.StartedAt && !t.StartedAt.startsWith("0001"));
        if (states.length === 0) continue;
        out.push({ id, start: Math.min(...states.map((t) => Date.parse(t.StartedAt!))), end: Math.max(...states.map((t) => Date.parse(t.FinishedAt!))) });
      }
    }
  }
  return out;
}

/** The most children running at one instant. */
function peak(all: Span[]): number {
  const edges = all.flatMap((s) => [
    { at: s.start, d: 1 },
    { at: s.end, d: -1 },
  ]);
  // an end at the same instant as a start comes first: touching is not overlapping
  edges.sort((a, b) => a.at - b.at || a.d - b.d);
  let now = 0;
  let max = 0;
  for (const e of edges) max = Math.max(max, (now += e.d));
  return max;
}

async function runReplicas(opts: { replicas: number; actions: number; formulas: (i: number) => string; config: string; label: string }) {
  const tag = `rl-${uniq()}`;
  const files: Record<string, string> = {};
  const ids: string[] = [];
  for (let i = 0; i < opts.actions; i++) {
    const id = `${tag}-${String(i).padStart(2, "0")}`;
    const formula = opts.formulas(i);
    ids.push(id);
    files[`formulas/${formula}.sh`] = '#!/usr/bin/env bash\nset -eu\nsleep 2\necho "ran $ACTION_ID"\n';
    files[`vault/actions/${id}.toml`] = `id = "${id}"\nformula = "${formula}"\ncontext = "replica limits"\nsecrets = []\n`;
  }
  const remote = await createOpsRemote(files);
  remotes.push(remote);
  const work = await mkdtemp(join(tmpdir(), "fault-limits-"));
  const config = join(work, "dispatcher.toml");
  await writeFile(config, opts.config);
  const started = Date.now();
  const names = Array.from({ length: opts.replicas }, (_, i) => String.fromCharCode(97 + i));
  const replicas = names.map((name) =>
    spawnDispatcher(
      ["run"],
      {
        DISPATCHER_OPS_REMOTE: remote.remote,
        DISPATCHER_WORKDIR: join(work, name),
        DISPATCHER_INSTANCE: `${tag}-${name}`,
        DISPATCHER_LEDGER_PREFIX: `dispatcher/${tag}`,
        DISPATCHER_POLL_SECONDS: "1",
        DISPATCHER_CONFIG: config,
        // the waits on another replica's place are logged at debug
        LOG_LEVEL: "debug",
      },
      join(work, `${name}.log`),
    ),
  );
  const allDone = await waitUntil(async () => (await readResults(remote, ids)).size === ids.length, 400_000, 2000);
  for (const r of replicas) r.child.kill("SIGTERM");
  await Promise.all(replicas.map((r) => r.exited));
  const results = await readResults(remote, ids);
  const ran = await spans(ids);
  const byInstance = new Map<string, number>();
  for (const r of results.values()) byInstance.set(r.dispatcher.instance, (byInstance.get(r.dispatcher.instance) ?? 0) + 1);
  const figures = { replicas: opts.replicas, actions: ids.length, results: results.size, children: ran.length, peak: peak(ran), by_instance: Object.fromEntries(byInstance), duration_s: Math.round((Date.now() - started) / 1000), logs: work };
  console.log(`fault ${opts.label}: ${JSON.stringify(figures)}`);
  // per replica: did it dispatch, did it wait on a place another replica held
  const took = await Promise.all(
    names.map(async (name) => {
      const lines = (await readFile(join(work, `${name}.log`), "utf8")).split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { msg?: string });
      return { dispatched: lines.some((l) => l.msg === "dispatched"), waited: lines.some((l) => l.msg === "actions waiting for places other replicas hold") };
    }),
  );
  console.log(`fault ${opts.label}: per replica ${JSON.stringify(Object.fromEntries(names.map((n, i) => [n, took[i]])))}`);
  return { allDone, results, ran, byInstance, ids, took };
}

for (const replicas of [2, 3]) {
  it(`${replicas} replicas, serialize_by = "formula", ten actions of one formula: never two of its children at once, all ten results`, async () => {
    const run = await runReplicas({ replicas, actions: 10, formulas: () => "serial", config: '[limits]\nserialize_by = "formula"\nmax_in_flight = 4\n', label: `serialize replicas=${replicas}` });
    expect(run.allDone).toBe(true);
    expect([...run.results.values()].filter((r) => r.status !== "succeeded").map((r) => r.id)).toEqual([]);
    // one child per action, and never two running at the same instant
    expect(run.ran.map((s) => s.id).sort()).toEqual(run.ids);
    const sorted = [...run.ran].sort((a, b) => a.start - b.start);
    const overlaps = sorted.slice(1).flatMap((s, i) => (s.start < sorted[i]!.end ? [`${sorted[i]!.id} and ${s.id}`] : []));
    expect(overlaps).toEqual([]);
    // every replica took part: it ran children or waited for the lock another held (the one
    // that frees the lock often takes it again at once); without the shared lock the same run
    // had 2 and 3 children of the formula at once
    expect(run.took.filter((t) => !t.dispatched && !t.waited)).toEqual([]);
    expect(run.took.some((t) => t.waited)).toBe(true);
  }, 600_000);
}

it("max_in_flight = 3 across three replicas: never more than three children running", async () => {
  const run = await runReplicas({ replicas: 3, actions: 12, formulas: (i) => `spread${i}`, config: '[limits]\nserialize_by = "none"\nmax_in_flight = 3\n', label: "max_in_flight replicas=3" });
  expect(run.allDone).toBe(true);
  expect([...run.results.values()].filter((r) => r.status !== "succeeded").map((r) => r.id)).toEqual([]);
  expect(run.ran.map((s) => s.id).sort()).toEqual(run.ids);
  expect(peak(run.ran)).toBeLessThanOrEqual(3);
  // every replica took part: it ran children or waited for a slot another held; without the
  // shared slots the same run had 9 children at once
  expect(run.took.filter((t) => !t.dispatched && !t.waited)).toEqual([]);
  expect(run.took.some((t) => t.waited)).toBe(true);
}, 600_000);
