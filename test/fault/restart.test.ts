// OpenBao is restarted (on its persisted state) during a run: every action ends with a result,
// none ran without its secrets, none was dispatched twice. (Nomad: see outage.test.ts and
// scripts/stack.sh — its dev agent keeps its state in memory.)
import { execFileSync } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { sleep, spawnDispatcher, waitUntil } from "../helpers/process.js";
import { childrenByAction, grantSecret, uniq } from "../helpers/stack.js";
import { FORMULAS, actionFiles, actionIds, readResults } from "./corpus.js";

const ACTIONS = 25;
const stack = new URL("../../scripts/stack.sh", import.meta.url).pathname;
let remote: OpsRemote | undefined;

afterAll(async () => {
  await remote?.cleanup();
});

function restartBao(): void {
  execFileSync("bash", [stack, "restart", "bao"], { stdio: "pipe" });
}

it("finishes every action across two restarts of OpenBao", async () => {
  const prefix = `rs-${uniq()}`;
  await grantSecret("FAULT_SECRET", "fault-secret-value");
  remote = await createOpsRemote({ ...FORMULAS, ...actionFiles(prefix, ACTIONS, "FAULT_SECRET") });
  const work = await mkdtemp(join(tmpdir(), "fault-restart-"));
  const logFile = join(work, "dispatcher.log");
  const p = spawnDispatcher(
    ["run"],
    {
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
  await sleep(2000);
  restartBao();
  await sleep(3000);
  restartBao();
  const allDone = await waitUntil(async () => (await readResults(remote!, ids)).size === ids.length, 300_000, 2000);
  const alive = p.child.exitCode === null;
  p.child.kill("SIGTERM");
  await p.exited;
  const results = await readResults(remote, ids);
  const children = await childrenByAction("runner");
  console.log(`fault restart: actions=${ACTIONS} results=${results.size} log=${logFile}`);
  expect(alive).toBe(true);
  expect(allDone).toBe(true);
  expect([...results.values()].filter((r) => r.status !== "succeeded").map((r) => `${r.id}: ${r.status} ${r.error?.message}`)).toEqual([]);
  expect(ids.filter((id) => (children.get(id)?.length ?? 0) !== 1)).toEqual([]);
}, 400_000);
