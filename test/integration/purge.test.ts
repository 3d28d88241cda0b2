// Purge after retention, on the real stack: a child leaves Nomad once its result is pushed and
// the retention has passed, never before the push; `logs` still prints the stored log. The
// dispatcher's own least-privilege token cannot purge (no submit-job): the child stays for
// Nomad's GC and the refusal is logged, naming the policy that would allow it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEnv, runCli } from "../helpers/cli.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { waitUntil } from "../helpers/process.js";
import { childrenOf, createTestDispatcher, nomadHttp, stackEnv, uniq, type TestDispatcher } from "../helpers/stack.js";

const u = uniq();
const ids = { purged: `purged-${u}`, kept: `kept-${u}` };
const action = (id: string) => `id = "${id}"\nformula = "say"\ncontext = "purge test"\nsecrets = []\n`;
let remote: OpsRemote;

beforeAll(async () => {
  remote = await createOpsRemote({
    "formulas/say.sh": '#!/usr/bin/env bash\necho "kept in the ops repo"\n',
    [`vault/actions/${ids.purged}.toml`]: action(ids.purged),
  });
}, 60_000);

afterAll(async () => {
  await remote?.cleanup();
});

async function jobExists(jobId: string): Promise<boolean> {
  const res = await nomadHttp("GET", `/v1/job/${encodeURIComponent(jobId)}?namespace=${stackEnv().NOMAD_NAMESPACE}`);
  return res.status === 200;
}

async function runUntil(d: TestDispatcher, done: () => Promise<boolean>): Promise<void> {
  const stop = new AbortController();
  const running = d.loop.run(stop.signal, 1000);
  try {
    expect(await waitUntil(done, 120_000, 250)).toBe(true);
  } finally {
    stop.abort();
    await running;
  }
}

describe("purge after retention", () => {
  it("purges the child only after its result is pushed and the retention passed; logs still prints the stored log", async () => {
    const d = await createTestDispatcher(remote.remote, { NOMAD_TOKEN: stackEnv().janitorToken, DISPATCHER_PURGE_AFTER_SECONDS: "3" });
    let existedAtPush: boolean | undefined;
    let jobId = "";
    d.loop.events.on("action:dispatched", (e) => (jobId = e.jobId));
    d.loop.events.on("results:pushed", (e) => {
      if (e.ids.includes(ids.purged)) void jobExists(jobId).then((x) => (existedAtPush = x));
    });
    const purged: string[] = [];
    d.loop.events.on("job:purged", (e) => purged.push(e.jobId));
    await runUntil(d, async () => purged.length > 0);
    expect(purged).toEqual([jobId]);
    expect(existedAtPush).toBe(true);
    expect(await jobExists(jobId)).toBe(false);
    expect(await childrenOf("runner", ids.purged)).toEqual([]);
    expect(JSON.parse((await remote.read(`vault/actions/${ids.purged}.result.json`))!)).toMatchObject({ id: ids.purged, status: "succeeded", job_id: jobId });
    const logs = await runCli(["logs", ids.purged], await cliEnv(remote.remote));
    expect(logs.stdout).toBe("kept in the ops repo\n");
    expect(logs.code).toBe(0);
    expect(d.captured.lines.find((l) => l.msg === "purged from Nomad: its result is in the ops repo")).toMatchObject({ action: ids.purged, job_id: jobId });
  });

  it("is refused to the dispatcher's least-privilege token: the child stays and the log says what would allow it", async () => {
    await remote.commit({ [`vault/actions/${ids.kept}.toml`]: action(ids.kept) });
    const d = await createTestDispatcher(remote.remote, { DISPATCHER_PURGE_AFTER_SECONDS: "1" });
    const failed: { jobId: string; class: string }[] = [];
    d.loop.events.on("job:purge-failed", (e) => failed.push({ jobId: e.jobId, class: e.class }));
    await runUntil(d, async () => failed.length > 0);
    const [jobId] = await childrenOf("runner", ids.kept);
    expect(failed).toEqual([{ jobId, class: "auth" }]);
    expect(await jobExists(jobId!)).toBe(true);
    const line = d.captured.lines.find((l) => l.msg === "could not purge the job (needs submit-job: acl/dispatcher-janitor.hcl); it stays until Nomad's own GC");
    expect(line).toMatchObject({ level: 40, action: ids.kept, job_id: jobId, class: "auth" });
    await nomadHttp("DELETE", `/v1/job/${encodeURIComponent(jobId!)}?purge=true&namespace=${stackEnv().NOMAD_NAMESPACE}`);
  });
});
