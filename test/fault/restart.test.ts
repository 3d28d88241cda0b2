// OpenBao is restarted (on its persisted state) during a run: every action ends with a result,
// none ran without its secrets, none was dispatched twice. (Nomad: see outage.test.ts and
// scripts/stack.sh — its dev agent keeps its state in memory.)
import { execFileSync } from "node:child_process";
import { afterAll, expect, it } from "vitest";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { sleep } from "../helpers/process.js";
import { grantSecret, uniq } from "../helpers/stack.js";
import { FORMULAS, actionFiles, actionIds, runDisturbed, unsuccessful } from "./corpus.js";

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
  const ids = actionIds(prefix, ACTIONS);
  const run = await runDisturbed(remote, ids, { DISPATCHER_INSTANCE: prefix }, async () => {
    await sleep(2000);
    restartBao();
    await sleep(3000);
    restartBao();
  });
  console.log(`fault restart: actions=${ACTIONS} results=${run.results.size} log=${run.logFile}`);
  expect(run.alive).toBe(true);
  expect(run.allDone).toBe(true);
  expect(unsuccessful(run.results)).toEqual([]);
  expect(ids.filter((id) => (run.children.get(id)?.length ?? 0) !== 1)).toEqual([]);
}, 400_000);
