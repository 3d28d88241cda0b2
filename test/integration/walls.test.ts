// Nothing outlives the formula: a hostile formula leaves `set -m` background jobs (each in a
// process group of its own, holding the output pipes) and a double-forked daemon, or forks
// 10,000 sleepers. The task must end (at the formula's exit, at its deadline, or at the process
// limit), the token must be revoked, the allocation must be terminal within the grace period,
// and an action beside it runs as usual.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createTestDispatcher, deleteSecret, grantSecret, nomadHttp, serviceToken, stackEnv, uniq } from "../helpers/stack.js";

const u = uniq();
const SECRET = `WALLS_${u.toUpperCase()}`;
const ids = { bg: `bg-${u}`, hang: `hang-${u}`, bomb: `bomb-${u}`, neighbour: `neighbour-${u}` };
let remote: OpsRemote;

/** background jobs in process groups of their own, and a daemon whose parent is gone */
const leave = `set -m
sleep infinity &
( ( exec sleep infinity ) & )
echo started`;

async function result(id: string): Promise<ActionResult> {
  const text = await remote.read(`vault/actions/${id}.result.json`);
  if (!text) throw new Error(`no result for ${id}`);
  return JSON.parse(text) as ActionResult;
}

async function allocation(id: string): Promise<{ ClientStatus: string; startedMs: number; finishedMs: number }> {
  const res = await nomadHttp("GET", `/v1/allocation/${id}?namespace=${stackEnv().NOMAD_NAMESPACE}`);
  const a = (await res.json()) as { ClientStatus: string; TaskStates: Record<string, { StartedAt: string; FinishedAt: string }> };
  const t = a.TaskStates.runner!;
  return { ClientStatus: a.ClientStatus, startedMs: Date.parse(t.StartedAt), finishedMs: Date.parse(t.FinishedAt) };
}

/** a revoked token's accessor is unknown to Vault */
async function accessorAlive(accessor: string): Promise<boolean> {
  const res = await fetch(`${stackEnv().VAULT_ADDR}/v1/auth/token/lookup-accessor`, {
    method: "POST",
    headers: { "X-Vault-Token": await serviceToken() },
    body: JSON.stringify({ accessor }),
  });
  return res.ok;
}

beforeAll(async () => {
  await grantSecret(SECRET, `walls-value-${u}`);
  const action = (id: string, formula: string, extra = "") => `id = "${id}"\nformula = "${formula}"\ncontext = "c"\nsecrets = ["${SECRET}"]\ntimeout_minutes = 1\n${extra}`;
  remote = await createOpsRemote({
    "formulas/leave.sh": `#!/usr/bin/env bash\n${leave}\nexit 0\n`,
    "formulas/hang.sh": `#!/usr/bin/env bash\n${leave}\nsleep infinity\n`,
    "formulas/bomb.sh": `#!/usr/bin/env bash\nfor i in $(seq 1 10000); do sleep 600 & done\necho "all started"\nwait\n`,
    "formulas/neighbour.sh": "#!/usr/bin/env bash\nsleep 8\necho fine\n",
    [`vault/actions/${ids.bg}.toml`]: action(ids.bg, "leave"),
    [`vault/actions/${ids.hang}.toml`]: action(ids.hang, "hang"),
    [`vault/actions/${ids.bomb}.toml`]: action(ids.bomb, "bomb"),
    [`vault/actions/${ids.neighbour}.toml`]: action(ids.neighbour, "neighbour"),
  });
  const d = await createTestDispatcher(remote.remote, { DISPATCHER_SECRETS: SECRET, DISPATCHER_MAX_IN_FLIGHT: "4" });
  await d.loop.once();
}, 400_000);

afterAll(async () => {
  await deleteSecret(SECRET);
  await remote?.cleanup();
});

describe("nothing outlives the formula", () => {
  it("a formula that exits leaving background jobs and a daemon: the task ends at once, succeeded, token revoked", async () => {
    const r = await result(ids.bg);
    expect(r).toMatchObject({ status: "succeeded", exit_code: 0, logs: "started", attempts: 1 });
    const a = await allocation(r.alloc_id!);
    expect(a.ClientStatus).toBe("complete");
    console.log(`walls: background jobs left behind: task ran ${a.finishedMs - a.startedMs} ms`);
    expect(a.finishedMs - a.startedMs).toBeLessThan(20_000);
    expect(await accessorAlive(r.token_accessor!)).toBe(false);
  });

  it("a formula that hangs with them: the task ends at the deadline as the runner's timeout, within the grace period", async () => {
    const r = await result(ids.hang);
    expect(r).toMatchObject({
      status: "timeout",
      exit_code: 124,
      error: { class: "timeout", message: "formula ran past its timeout of 1 min and was killed by the runner" },
      attempts: 1,
    });
    expect(r.logs).not.toContain("could not revoke");
    const a = await allocation(r.alloc_id!);
    expect(a.ClientStatus).toBe("failed");
    console.log(`walls: hang past the deadline: task ran ${a.finishedMs - a.startedMs} ms (deadline 60,000 ms)`);
    // deadline 60 s + the runner's 10 s SIGTERM grace + 2 s drain, with room for the start
    expect(a.finishedMs - a.startedMs).toBeLessThan(85_000);
    expect(await accessorAlive(r.token_accessor!)).toBe(false);
  });

  it("a 10,000-process fork loop ends with the task at the process limit, and an action beside it runs", async () => {
    const r = await result(ids.bomb);
    expect(r).toMatchObject({ status: "failed", exit_code: 90, error: { class: "agent" }, attempts: 1 });
    expect(r.error!.message).toMatch(/^the formula ran more than 512 processes at once \(the task's limit; \d+ seen\): every process of the task was killed$/);
    expect(r.logs).not.toContain("all started");
    const a = await allocation(r.alloc_id!);
    expect(a.ClientStatus).toBe("failed");
    console.log(`walls: fork loop: ${r.error!.message}; task ran ${a.finishedMs - a.startedMs} ms`);
    expect(a.finishedMs - a.startedMs).toBeLessThan(30_000);
    expect(await result(ids.neighbour)).toMatchObject({ status: "succeeded", logs: "fine" });
  });
});
