// SIGTERM: stop claiming, leave running jobs for re-attachment, exit; a successor with another
// name re-attaches once the lease runs out. (The second-signal policy: test/unit/cli/signals.test.ts.)
import { readFile } from "node:fs/promises";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { spawnDispatcher, waitUntil } from "../helpers/process.js";
import { childrenByAction, uniq } from "../helpers/stack.js";
import { actionIds, readResults } from "./corpus.js";

const ACTIONS = 4;
let remote: OpsRemote | undefined;

afterAll(async () => {
  await remote?.cleanup();
});

async function countLines(file: string, msg: string): Promise<number> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.split("\n").filter((l) => l.includes(`"msg":"${msg}"`)).length;
}

it("drains on SIGTERM leaving jobs running, and a successor re-attaches to them", async () => {
  const prefix = `sd-${uniq()}`;
  const files: Record<string, string> = {};
  // one formula each: actions of one formula run one at a time, and these must run together
  actionIds(prefix, ACTIONS).forEach((id, i) => {
    files[`formulas/slow-${i}.sh`] = "#!/usr/bin/env bash\nsleep 8\necho slow done\n";
    files[`vault/actions/${id}.toml`] = `id = "${id}"\nformula = "slow-${i}"\ncontext = "shutdown"\nsecrets = []\n`;
  });
  remote = await createOpsRemote(files);
  const work = await mkdtemp(join(tmpdir(), "fault-sd-"));
  const env = (name: string) => ({
    DISPATCHER_OPS_REMOTE: remote!.remote,
    DISPATCHER_WORKDIR: join(work, name),
    DISPATCHER_INSTANCE: `${prefix}-${name}`,
    DISPATCHER_POLL_SECONDS: "1",
    DISPATCHER_LEASE_SECONDS: "4",
    DISPATCHER_CONFIG: "",
  });
  const firstLog = join(work, "first.log");
  const first = spawnDispatcher(["run"], env("first"), firstLog);
  expect(await waitUntil(async () => (await countLines(firstLog, "dispatched")) === ACTIONS, 60_000, 250)).toBe(true);
  const signalled = Date.now();
  first.child.kill("SIGTERM");
  const exit = await first.exited;
  expect(exit).toEqual({ code: 0, signal: null });
  expect(Date.now() - signalled).toBeLessThan(5_000);
  // it left the jobs running: no result yet
  expect((await readResults(remote, actionIds(prefix, ACTIONS))).size).toBe(0);

  const secondLog = join(work, "second.log");
  const second = spawnDispatcher(["run"], env("second"), secondLog);
  const ids = actionIds(prefix, ACTIONS);
  expect(await waitUntil(async () => (await readResults(remote!, ids)).size === ACTIONS, 120_000, 1000)).toBe(true);
  second.child.kill("SIGTERM");
  await second.exited;
  expect(await countLines(secondLog, "re-attached to a running job")).toBe(ACTIONS);
  expect(await countLines(secondLog, "dispatched")).toBe(0);
  const children = await childrenByAction("runner");
  expect(ids.map((id) => children.get(id)?.length)).toEqual(ids.map(() => 1));
  for (const r of (await readResults(remote, ids)).values()) expect(r).toMatchObject({ status: "succeeded", dispatcher: { instance: `${prefix}-second` } });
}, 300_000);
