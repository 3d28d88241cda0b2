// The operator's commands on the real stack, run as the CLI: plan (dispatches nothing), status
// while an action runs and after, logs -f streaming a running action to its exit code, logs of a
// finished action after Nomad forgot its job.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runGit } from "../../dispatcher/opsrepo/exec.js";
import { cliEnv, runCli, type CliRun } from "../helpers/cli.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { childrenOf, createTestDispatcher, nomadHttp, runnerRemoteFor, stackEnv, uniq } from "../helpers/stack.js";

const u = uniq();
const ids = { count: `count-${u}`, noop: `noop-${u}`, bad: `bad-${u}`, secret: `secret-${u}` };
const action = (id: string, formula: string, extra = "") => `id = "${id}"\nformula = "${formula}"\ncontext = "operator cli test"\nsecrets = []\n${extra}`;

let remote: OpsRemote;
let env: Record<string, string>;
let tip: string;

async function blob(path: string): Promise<string> {
  return (await runGit(remote.remote, ["rev-parse", `main:${path}`])).toString("utf8").trim();
}

beforeAll(async () => {
  stackEnv();
  remote = await createOpsRemote({
    // numbered lines a second apart, then stderr and a code of its own
    "formulas/count.sh": '#!/usr/bin/env bash\nfor i in 1 2 3 4 5; do echo "line $i"; sleep 1; done\necho "counted to 5" >&2\nexit 7\n',
    "formulas/noop.sh": "#!/usr/bin/env bash\necho noop ok\n",
    [`vault/actions/${ids.count}.toml`]: action(ids.count, "count"),
    [`vault/actions/${ids.noop}.toml`]: action(ids.noop, "noop", "timeout_minutes = 2\n"),
    [`vault/actions/${ids.bad}.toml`]: action(ids.bad, "missing"),
    [`vault/actions/${ids.secret}.toml`]: `id = "${ids.secret}"\nformula = "noop"\ncontext = "c"\nsecrets = ["NOT_KNOWN_${u.toUpperCase()}"]\n`,
  });
  tip = (await runGit(remote.remote, ["rev-parse", "main"])).toString("utf8").trim();
  env = await cliEnv(remote.remote, { DISPATCHER_SECRETS: "DEMO_TOKEN" });
}, 60_000);

afterAll(async () => {
  await remote?.cleanup();
});

describe("dispatcher plan", () => {
  it("prints what would be dispatched or why not, and dispatches nothing", async () => {
    const run = await runCli(["plan"], env);
    const meta = async (id: string, formula: string, timeout: number) => [
      "  meta:",
      `    action_id=${id}`,
      `    action_path=vault/actions/${id}.toml`,
      `    action_sha=${await blob(`vault/actions/${id}.toml`)}`,
      "    attempt=1",
      `    commit=${tip}`,
      `    formula=${formula}`,
      "    kv_mount=kv",
      `    ops_repo=${runnerRemoteFor(remote.remote)}`,
      `    timeout_minutes=${timeout}`,
      "  token: none (no secrets)",
      "  mounts: none",
    ];
    expect(run.stderr).toBe("");
    expect(run.stdout).toBe(
      [
        `plan for ${tip.slice(0, 12)} (nothing is dispatched):`,
        `${ids.bad}: invalid`,
        `  vault/actions/${ids.bad}.toml: formula "missing" has no formulas/missing.sh in the ops repo (have: count, noop)`,
        `${ids.count}: dispatch job runner (task runner), timeout 60 min`,
        ...(await meta(ids.count, "count", 60)),
        `${ids.noop}: dispatch job runner (task runner), timeout 2 min`,
        ...(await meta(ids.noop, "noop", 2)),
        `${ids.secret}: refused (secret_unknown)`,
        `  vault/actions/${ids.secret}.toml: secrets[0] "NOT_KNOWN_${u.toUpperCase()}" is not a known secret (known: DEMO_TOKEN)`,
        "2 to dispatch, 0 waiting, 2 refused",
        "",
      ].join("\n"),
    );
    expect(run.code).toBe(0);
    for (const id of Object.values(ids)) expect(await childrenOf("runner", id)).toEqual([]);
    expect(await remote.read(`vault/actions/${ids.bad}.result.json`)).toBeUndefined();
  });
});

describe("status and logs around a run", () => {
  let follow: CliRun;
  let runningRow: Record<string, unknown> | undefined;

  beforeAll(async () => {
    const d = await createTestDispatcher(remote.remote, { DISPATCHER_SECRETS: "DEMO_TOKEN" });
    const once = d.loop.once();
    // started before the dispatch: logs -f waits for it, then for the task
    const following = runCli(["logs", ids.count, "-f"], env);
    while (!runningRow) {
      const status = await runCli(["status", "--json"], env);
      if (status.code !== 0) throw new Error(`status --json exited ${status.code}: ${status.stderr}`);
      const rows = JSON.parse(status.stdout) as Record<string, unknown>[];
      runningRow = rows.find((r) => r.id === ids.count && r.state === "running");
      if (!runningRow) await new Promise((r) => setTimeout(r, 300));
    }
    [follow] = await Promise.all([following, once]);
  }, 180_000);

  it("status shows the running action with its job, allocation and node", () => {
    expect(runningRow).toMatchObject({ id: ids.count, kind: "runner", state: "running" });
    expect(runningRow!.job).toMatch(/^runner\/dispatch-/);
    expect(runningRow!.alloc).toMatch(/^[0-9a-f-]{36}$/);
    expect(typeof runningRow!.node).toBe("string");
  });

  it("logs -f streams the lines live and in order, and exits with the task's code", () => {
    expect(follow.stdout).toBe("line 1\nline 2\nline 3\nline 4\nline 5\n");
    expect(follow.code).toBe(7);
    // line 1 arrived while four one-second sleeps were still ahead
    const first = follow.chunks.find((c) => c.text.includes("line 1"))!;
    expect(follow.exitedAt - first.at).toBeGreaterThan(2_500);
  });

  it("status shows every action's result state and exit code", async () => {
    const run = await runCli(["status"], env);
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID +KIND +STATE +JOB +ALLOC +NODE +AGE +EXIT$/);
    const cells = Object.fromEntries(lines.slice(1).map((l) => l.split(/ +/)).map((c) => [c[0], c]));
    expect(Object.keys(cells).sort()).toEqual(Object.values(ids).sort());
    expect(cells[ids.count]!.slice(1, 3)).toEqual(["runner", "failed"]);
    expect(cells[ids.count]!.at(-1)).toBe("7");
    expect(cells[ids.noop]!.slice(1, 3)).toEqual(["runner", "succeeded"]);
    expect(cells[ids.noop]!.at(-1)).toBe("0");
    expect(cells[ids.bad]).toEqual([ids.bad, "-", "invalid", "-", "-", "-", expect.stringMatching(/^\d+s$/), "-"]);
    expect(cells[ids.secret]!.slice(1, 3)).toEqual(["-", "failed"]);
  });

  it("logs of a finished action come from the ops repo, also after Nomad purged the job", async () => {
    const result = JSON.parse((await remote.read(`vault/actions/${ids.count}.result.json`))!) as { job_id: string };
    const purge = await nomadHttp("DELETE", `/v1/job/${encodeURIComponent(result.job_id)}?purge=true&namespace=dispatch`);
    expect(purge.status).toBe(200);
    const all = await runCli(["logs", ids.count], env);
    expect(all).toMatchObject({ code: 0, stdout: "line 1\nline 2\nline 3\nline 4\nline 5\n[stderr]\ncounted to 5\n", stderr: "" });
    const err = await runCli(["logs", ids.count, "--stderr"], env);
    expect(err).toMatchObject({ code: 0, stdout: "counted to 5\n" });
    expect((await runCli(["logs", ids.count, "-f"], env)).code).toBe(7);
  });

  it("logs of an unknown action says where it looked", async () => {
    const run = await runCli(["logs", `nope-${u}`], env);
    const head = (await runGit(remote.remote, ["rev-parse", "main"])).toString("utf8").trim();
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `dispatcher: no action "nope-${u}": neither vault/actions/nope-${u}.toml nor its result is in ${remote.remote} at ${head.slice(0, 12)}\n`,
    );
  });
});
