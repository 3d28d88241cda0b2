// Two replicas race over the same 50+ actions: each action is dispatched once and recorded once.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { spawnDispatcher, waitUntil } from "../helpers/process.js";
import { childrenByAction, grantSecret, uniq } from "../helpers/stack.js";
import { FORMULAS, actionFiles, actionIds, readResults, resultWrites } from "./corpus.js";

const ACTIONS = Number(process.env.FAULT_ACTIONS ?? 50);
let remote: OpsRemote | undefined;

afterAll(async () => {
  await remote?.cleanup();
});

it(`two replicas over ${ACTIONS} actions dispatch and record each exactly once`, async () => {
  const prefix = `rep-${uniq()}`;
  await grantSecret("FAULT_SECRET", "fault-secret-value");
  remote = await createOpsRemote({ ...FORMULAS, ...actionFiles(prefix, ACTIONS, "FAULT_SECRET") });
  const work = await mkdtemp(join(tmpdir(), "fault-rep-"));
  const replica = (name: string) =>
    spawnDispatcher(
      ["run"],
      {
        DISPATCHER_OPS_REMOTE: remote!.remote,
        DISPATCHER_WORKDIR: join(work, name),
        DISPATCHER_INSTANCE: `${prefix}-${name}`,
        DISPATCHER_SECRETS: "FAULT_SECRET",
        DISPATCHER_POLL_SECONDS: "1",
        DISPATCHER_MAX_IN_FLIGHT: "6",
        DISPATCHER_CONFIG: "",
      },
      join(work, `${name}.log`),
    );
  const started = Date.now();
  const replicas = [replica("a"), replica("b")];
  const ids = actionIds(prefix, ACTIONS);
  const allDone = await waitUntil(async () => (await readResults(remote!, ids)).size === ids.length, 300_000, 2000);
  for (const r of replicas) r.child.kill("SIGTERM");
  await Promise.all(replicas.map((r) => r.exited));
  const results = await readResults(remote, ids);
  const children = await childrenByAction("runner");
  const duplicates = ids.filter((id) => (children.get(id)?.length ?? 0) !== 1);
  const byInstance = new Map<string, number>();
  for (const r of results.values()) byInstance.set(r.dispatcher.instance, (byInstance.get(r.dispatcher.instance) ?? 0) + 1);
  console.log(
    `fault replicas: actions=${ACTIONS} results=${results.size} duplicates=${duplicates.length} by_instance=${JSON.stringify(Object.fromEntries(byInstance))} duration_s=${Math.round((Date.now() - started) / 1000)}`,
  );
  expect(allDone).toBe(true);
  expect(duplicates).toEqual([]);
  expect([...results.values()].filter((r) => r.status !== "succeeded").map((r) => r.id)).toEqual([]);
  expect([...(await resultWrites(remote)).entries()].filter(([, n]) => n !== 1)).toEqual([]);
  // both replicas did part of the work: the race was real
  expect(byInstance.size).toBe(2);
}, 600_000);
