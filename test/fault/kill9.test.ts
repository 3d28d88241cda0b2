// kill -9 the dispatcher at random points, 30+ times, over 50+ actions: every action ends with
// exactly one result and Nomad holds exactly one dispatched child per attempt.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { waitUntil } from "../helpers/process.js";
import { childrenByAction, grantSecret, uniq } from "../helpers/stack.js";
import { FORMULAS, actionFiles, actionIds, killRepeatedly, readResults, resultWrites } from "./corpus.js";

const ACTIONS = Number(process.env.FAULT_ACTIONS ?? 50);
const KILLS = Number(process.env.FAULT_KILLS ?? 30);
let remote: OpsRemote | undefined;

afterAll(async () => {
  await remote?.cleanup();
});

it(`survives ${KILLS} kill -9 over ${ACTIONS} actions without losing or doubling one`, async () => {
  const prefix = `k9-${uniq()}`;
  await grantSecret("FAULT_SECRET", "fault-secret-value");
  remote = await createOpsRemote({ ...FORMULAS, ...actionFiles(prefix, ACTIONS, "FAULT_SECRET") });
  const work = await mkdtemp(join(tmpdir(), "fault-k9-"));
  const env = {
    DISPATCHER_OPS_REMOTE: remote.remote,
    DISPATCHER_WORKDIR: join(work, "ops"),
    // the same instance name across restarts: a restart resumes its own claims at once
    DISPATCHER_INSTANCE: `k9-${prefix}`,
    DISPATCHER_SECRETS: "FAULT_SECRET",
    DISPATCHER_POLL_SECONDS: "1",
    DISPATCHER_LEASE_SECONDS: "10",
    DISPATCHER_MAX_IN_FLIGHT: "8",
    DISPATCHER_CONFIG: "",
  };
  const logFile = join(work, "dispatcher.log");
  const started = Date.now();
  const ids = actionIds(prefix, ACTIONS);
  const kills = KILLS;
  const last = await killRepeatedly(env, logFile, KILLS);
  const allDone = await waitUntil(async () => (await readResults(remote!, ids)).size === ids.length, 300_000, 2000);
  last.child.kill("SIGTERM");
  await last.exited;
  const results = await readResults(remote, ids);
  const writes = await resultWrites(remote);
  const children = await childrenByAction("runner");
  const duplicates = ids.filter((id) => (children.get(id)?.length ?? 0) !== (results.get(id)?.attempts ?? -1));
  const lost = ids.filter((id) => !results.has(id));
  console.log(
    `fault kill9: kills=${kills} actions=${ACTIONS} results=${results.size} duplicates=${duplicates.length} lost=${lost.length} duration_s=${Math.round((Date.now() - started) / 1000)} log=${logFile}`,
  );
  expect(allDone).toBe(true);
  expect(lost).toEqual([]);
  expect(duplicates).toEqual([]);
  expect([...results.values()].filter((r) => r.status !== "succeeded").map((r) => `${r.id}: ${r.status} ${r.error?.message}`)).toEqual([]);
  expect([...writes.entries()].filter(([, n]) => n !== 1)).toEqual([]);
}, 900_000);
