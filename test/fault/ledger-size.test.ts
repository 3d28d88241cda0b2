// Bounded state over a long run: 1,000 actions through `once` in batches of 100, with a ledger
// retention of 2 s, on the real ledger. The ledger's size (the gauge dispatcher_ledger_entries
// after each batch's sweep, and a listing after the batch) stays flat instead of growing by 100
// a batch. The children run on mock_driver (the dev agent's: no process), so the run measures
// the ledger and not exec's start cost; the parent is the stack's runner with only its driver
// changed, pinned as `dispatcher jobs pin` pins it.
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { parentJobsOf } from "../../dispatcher/core/request.js";
import { runCli, cliEnv } from "../helpers/cli.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { sleep } from "../helpers/process.js";
import { createTestDispatcher, nomadHttp, stackEnv, uniq } from "../helpers/stack.js";

const BATCHES = Number(process.env.FAULT_LEDGER_BATCHES ?? 10);
const PER_BATCH = Number(process.env.FAULT_LEDGER_PER_BATCH ?? 100);
const MOCK = "ledger-mock";
let remote: OpsRemote | undefined;

afterAll(async () => {
  await remote?.cleanup();
});

/** The stack's runner parent (and its mount-set variants) as MOCK: mock_driver, no volumes; pinned into `pins`. */
async function registerMockRunner(pins: string, config: string): Promise<void> {
  const ns = stackEnv().NOMAD_NAMESPACE;
  const runner = (await (await nomadHttp("GET", `/v1/job/runner?namespace=${ns}`)).json()) as { TaskGroups: { Volumes?: unknown; Tasks: Record<string, unknown>[] }[] };
  for (const id of parentJobsOf(MOCK)) {
    const job = structuredClone(runner) as Record<string, unknown> & typeof runner;
    Object.assign(job, { ID: id, Name: id });
    for (const group of job.TaskGroups) {
      group.Volumes = null;
      for (const task of group.Tasks) Object.assign(task, { Driver: "mock_driver", Config: { run_for: "0s", exit_code: 0, stdout_string: "ok\n" }, VolumeMounts: null, Templates: null, Artifacts: null });
    }
    const res = await nomadHttp("PUT", `/v1/jobs?namespace=${ns}`, { body: { Job: job } });
    if (!res.ok) throw new Error(`registering ${id}: HTTP ${res.status} ${await res.text()}`);
  }
  const pinned = await runCli(["jobs", "pin", "--out", pins], { ...(await cliEnv(remote!.remote)), DISPATCHER_CONFIG: config, DISPATCHER_JOB_PINS: pins, DISPATCHER_CLASSES: "" });
  if (pinned.code !== 0) throw new Error(`dispatcher jobs pin: ${pinned.stderr}`);
}

/** The gauge's value in a Prometheus text exposition. */
function gauge(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1));
}

it(`the ledger stays flat over ${BATCHES * PER_BATCH} actions through once in batches of ${PER_BATCH} (retention 2 s)`, async () => {
  const tag = `ls-${uniq()}`;
  const prefix = `dispatcher/${tag}`;
  remote = await createOpsRemote({ "formulas/tick.sh": "#!/usr/bin/env bash\necho tick\n" });
  const work = await mkdtemp(join(tmpdir(), "fault-ledger-"));
  const config = join(work, "dispatcher.toml");
  await writeFile(config, `[nomad]\nrunner_job = "${MOCK}"\n[limits]\nserialize_by = "none"\nmax_in_flight = 32\n`);
  const pins = join(work, "pins.json");
  await registerMockRunner(pins, config);
  const ns = stackEnv().NOMAD_NAMESPACE;
  const listed = async () => ((await (await nomadHttp("GET", `/v1/vars?prefix=${prefix}/actions/&namespace=${ns}`)).json()) as unknown[]).length;
  const started = Date.now();
  const sizes: { batch: number; gauge: number; after: number; removed: number; results: number }[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const files: Record<string, string> = {};
    for (let i = 0; i < PER_BATCH; i++) {
      const id = `${tag}-${b}-${i}`;
      files[`vault/actions/${id}.toml`] = `id = "${id}"\nformula = "tick"\ncontext = "ledger size"\nsecrets = []\n`;
    }
    await remote.commit(files, `batch ${b}`);
    // the retention counts from an entry's last write (recorded): the last batch's are past it
    await sleep(2500);
    const d = await createTestDispatcher(remote.remote, { DISPATCHER_CONFIG: config, DISPATCHER_JOB_PINS: pins, DISPATCHER_CLASSES: "", DISPATCHER_LEDGER_PREFIX: prefix, DISPATCHER_INSTANCE: `${tag}-${b}`, DISPATCHER_LEDGER_RETENTION_SECONDS: "2" });
    await d.loop.once();
    const text = await d.metrics.metrics();
    d.close();
    const results = (await remote.log()).filter((s) => s.startsWith("vault: result")).length;
    sizes.push({ batch: b, gauge: gauge(text, "dispatcher_ledger_entries"), after: await listed(), removed: gauge(text, "dispatcher_ledger_entries_removed_total"), results });
    console.log(`fault ledger-size: batch=${b} actions=${(b + 1) * PER_BATCH} ledger_after_sweep=${sizes[b]!.gauge} ledger_after_batch=${sizes[b]!.after} removed_this_batch=${sizes[b]!.removed} seconds=${Math.round((Date.now() - started) / 1000)}`);
  }
  // every action has its result, none ran twice
  const children = new Map<string, number>();
  for (const job of (await (await nomadHttp("GET", `/v1/jobs?prefix=${MOCK}/dispatch-&namespace=${ns}&meta=true`)).json()) as { Meta?: Record<string, string> }[]) {
    const id = job.Meta?.action_id;
    if (id?.startsWith(tag)) children.set(id, (children.get(id) ?? 0) + 1);
  }
  const withResult = (await Promise.all(Array.from({ length: BATCHES * PER_BATCH }, (_, n) => remote!.read(`vault/actions/${tag}-${Math.floor(n / PER_BATCH)}-${n % PER_BATCH}.result.json`)))).filter(Boolean).length;
  console.log(`fault ledger-size: actions=${BATCHES * PER_BATCH} results=${withResult} children=${children.size} doubled=${[...children.values()].filter((n) => n > 1).length} max_ledger=${Math.max(...sizes.map((s) => s.after))} seconds=${Math.round((Date.now() - started) / 1000)}`);
  expect(withResult).toBe(BATCHES * PER_BATCH);
  expect([...children.values()].filter((n) => n > 1)).toEqual([]);
  // flat: the ledger holds about one batch (this one, until the next batch's sweep), never the
  // run's total (every entry is kept without the retention: 100 more a batch)
  expect(sizes.slice(1).filter((s) => s.after > 2 * PER_BATCH)).toEqual([]);
  expect(sizes.slice(2).every((s) => s.gauge <= 2 * PER_BATCH)).toBe(true);
}, 1_200_000);
