// The watchdog, on the real stack: a dispatched child that Nomad holds without any evaluation
// (as nomad#26655 leaves one: the job written, its evaluation not) is evaluated again once and
// runs. The state is made as Nomad's own tools can: the eval broker paused, the child's
// evaluation deleted, the broker resumed. A fault-suite file because pausing the broker holds
// every scheduling on the stack for a moment.
import { afterAll, beforeAll, expect, it } from "vitest";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { waitUntil } from "../helpers/process.js";
import { childrenOf, createTestDispatcher, nomadHttp, stackEnv, uniq } from "../helpers/stack.js";

const u = uniq();
const id = `unevaluated-${u}`;
let remote: OpsRemote;

async function pauseBroker(paused: boolean): Promise<void> {
  const { SchedulerConfig } = (await (await nomadHttp("GET", "/v1/operator/scheduler/configuration")).json()) as { SchedulerConfig: Record<string, unknown> };
  const res = await nomadHttp("PUT", "/v1/operator/scheduler/configuration", { body: { ...SchedulerConfig, PauseEvalBroker: paused } });
  if (!res.ok) throw new Error(`pausing the eval broker: HTTP ${res.status} ${await res.text()}`);
}

async function evaluationsOf(jobId: string): Promise<string[]> {
  const res = await nomadHttp("GET", `/v1/job/${encodeURIComponent(jobId)}/evaluations?namespace=${stackEnv().NOMAD_NAMESPACE}`);
  return ((await res.json()) as { ID: string }[]).map((e) => e.ID);
}

async function allocationsOf(jobId: string): Promise<unknown[]> {
  return (await (await nomadHttp("GET", `/v1/job/${encodeURIComponent(jobId)}/allocations?namespace=${stackEnv().NOMAD_NAMESPACE}`)).json()) as unknown[];
}

beforeAll(async () => {
  remote = await createOpsRemote({
    "formulas/late.sh": '#!/usr/bin/env bash\necho "ran after all"\n',
    [`vault/actions/${id}.toml`]: `id = "${id}"\nformula = "late"\ncontext = "watchdog"\nsecrets = []\n`,
  });
}, 60_000);

afterAll(async () => {
  await pauseBroker(false);
  await remote?.cleanup();
});

it("evaluates a child without evaluation once, and it runs", async () => {
  const d = await createTestDispatcher(remote.remote, { NOMAD_TOKEN: stackEnv().janitorToken, DISPATCHER_REEVALUATE_SECONDS: "8" });
  const reevaluated: string[] = [];
  d.loop.events.on("job:reevaluated", (e) => reevaluated.push(e.jobId));
  await pauseBroker(true);
  const once = d.loop.once();
  let jobId = "";
  try {
    expect(await waitUntil(async () => ((jobId = (await childrenOf("runner", id))[0] ?? ""), jobId !== ""), 30_000, 200)).toBe(true);
    const evals = await evaluationsOf(jobId);
    expect(evals.length).toBe(1);
    const del = await nomadHttp("DELETE", "/v1/evaluations", { body: { EvalIDs: evals } });
    expect(del.status, await del.text()).toBe(200);
    expect(await evaluationsOf(jobId)).toEqual([]);
  } finally {
    await pauseBroker(false);
  }
  // with the broker running again, nothing schedules this child (no evaluation to work on) until
  // the watchdog, 8 s after the dispatch, evaluates it
  await new Promise((r) => setTimeout(r, 3000));
  expect(reevaluated).toEqual([]);
  expect(await allocationsOf(jobId)).toEqual([]);
  await once;
  expect(reevaluated).toEqual([jobId]);
  expect(JSON.parse((await remote.read(`vault/actions/${id}.result.json`))!)).toMatchObject({ id, status: "succeeded", job_id: jobId, logs: "ran after all" });
  expect(d.captured.lines.find((l) => l.msg === "the job had neither evaluation nor allocation: evaluated again")).toMatchObject({ level: 40, action: id, job_id: jobId });
}, 180_000);
