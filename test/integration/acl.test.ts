// Nomad with ACLs on, attacked the way a hostile formula, a stray operator token or a forged
// ledger entry would: each attack must fail on the real stack.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { VaultPort } from "../../dispatcher/core/ports.js";
import { createVaultPort } from "../../dispatcher/vault/tokens.js";
import { cliEnv, runCli } from "../helpers/cli.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { adminNomad, childrenOf, createTestDispatcher, dispatcherNomad, nomadHttp, serviceToken, stackEnv, uniq } from "../helpers/stack.js";

const u = uniq();
const s = stackEnv();
const cleanups: (() => Promise<unknown>)[] = [];

/** A plain batch job (not a dispatched child) that sleeps: an unrelated victim. */
function sleeper(id: string, namespace: string) {
  return {
    Job: {
      ID: id,
      Name: id,
      Namespace: namespace,
      Type: "batch",
      Datacenters: ["*"],
      TaskGroups: [
        {
          Name: "victim",
          Count: 1,
          RestartPolicy: { Attempts: 0, Mode: "fail" },
          ReschedulePolicy: { Attempts: 0, Unlimited: false },
          Tasks: [{ Name: "victim", Driver: "exec", User: "nobody", Config: { command: "/usr/bin/sleep", args: ["600"] }, Resources: { CPU: 50, MemoryMB: 32 } }],
        },
      ],
    },
  };
}

async function register(job: ReturnType<typeof sleeper>): Promise<void> {
  const res = await nomadHttp("PUT", "/v1/jobs", { body: job });
  expect(res.status, await res.clone().text()).toBe(200);
  cleanups.push(() => nomadHttp("DELETE", `/v1/job/${job.Job.ID}?purge=true&namespace=${job.Job.Namespace}`));
}

async function waitRunning(jobId: string, namespace: string): Promise<void> {
  for (let i = 0; i < 60; i++) {
    const allocs = (await (await nomadHttp("GET", `/v1/job/${jobId}/allocations?namespace=${namespace}`)).json()) as { ClientStatus: string }[];
    if (allocs.some((a) => a.ClientStatus === "running")) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`job ${jobId} in ${namespace} is not running after 30 s`);
}

async function vaultRoot(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, any> }> {
  const res = await fetch(`${s.VAULT_ADDR}/v1/${path}`, {
    method,
    headers: { "X-Vault-Token": s.rootToken, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: res.status === 204 ? {} : ((await res.json()) as Record<string, any>) };
}

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

describe("the dispatcher's Nomad token", () => {
  const token = s.NOMAD_TOKEN;
  const other = `victim-${u}`;

  beforeAll(async () => {
    await register(sleeper(other, "default"));
  });

  it("dispatches runner and sidecar children and reads them, their allocations and logs", async () => {
    const nomad = dispatcherNomad();
    const meta = { action_id: `acl-${u}`, action_sha: "0".repeat(40), action_path: "x.toml", commit: "0".repeat(40), formula: "none", ops_repo: "/nowhere" };
    const runner = await nomad.dispatch({ job: "runner", meta, idempotencyToken: `acl-runner-${u}` });
    const sidecar = await nomad.dispatch({ job: "sidecar", meta: { ...meta, issue_number: "1" }, idempotencyToken: `acl-sidecar-${u}` });
    for (const { jobId } of [runner, sidecar]) {
      expect(await nomad.childJob(jobId)).toMatchObject({ jobId, namespace: "dispatch", meta: { action_id: `acl-${u}` } });
      let index = 0;
      let done;
      for (let i = 0; i < 30 && !done; i++) {
        const placement = await nomad.watchJob(jobId, index, 2000);
        index = placement.index;
        done = placement.allocations.find((a) => ["complete", "failed"].includes(a.clientStatus));
      }
      expect(done, `${jobId} did not end`).toBeDefined();
      // the runner refuses to run without its checkout: its own error line is in the task's stderr
      expect(await nomad.readLog(done!.id, "runner", "stderr")).toMatch(/^\[runner\] error /m);
    }
  });

  it("gets 403 registering any job, in its namespace or another", async () => {
    for (const ns of ["dispatch", "default"]) {
      const res = await nomadHttp("PUT", "/v1/jobs", { token, body: sleeper(`intruder-${u}`, ns) });
      expect(res.status).toBe(403);
    }
    // re-registering the runner parent (another entrypoint) would hand it every minted token
    const runner = (await (await nomadHttp("GET", "/v1/job/runner?namespace=dispatch")).json()) as Record<string, unknown>;
    expect((await nomadHttp("PUT", "/v1/jobs", { token, body: { Job: runner } })).status).toBe(403);
  });

  it("gets 403 reading or stopping a job in another namespace, and stopping one in its own", async () => {
    expect((await nomadHttp("GET", `/v1/job/${other}?namespace=default`, { token })).status).toBe(403);
    expect((await nomadHttp("DELETE", `/v1/job/${other}?namespace=default`, { token })).status).toBe(403);
    expect((await nomadHttp("DELETE", `/v1/job/runner?namespace=dispatch`, { token })).status).toBe(403);
    expect((await nomadHttp("GET", `/v1/job/${other}?namespace=default`)).status).toBe(200); // the job is there
  });

  it("gets 403 reading or writing variables outside its ledger prefix", async () => {
    const outside = [`other/${u}`, `nomad/jobs/dispatcher`];
    for (const path of outside) {
      expect((await nomadHttp("PUT", `/v1/var/${path}?namespace=dispatch`, { token, body: { Path: path, Items: { x: "y" } } })).status).toBe(403);
      expect((await nomadHttp("GET", `/v1/var/${path}?namespace=dispatch`, { token })).status).toBe(403);
    }
    expect((await nomadHttp("GET", `/v1/var/nomad/jobs/dispatcher?namespace=dispatcher`, { token })).status).toBe(403);
    const inside = `dispatcher/acl-${u}`;
    expect((await nomadHttp("PUT", `/v1/var/${inside}?namespace=dispatch`, { token, body: { Path: inside, Items: { x: "y" } } })).status).toBe(200);
    cleanups.push(() => nomadHttp("DELETE", `/v1/var/${inside}?namespace=dispatch`));
  });
});

describe("tokens that must not see a dispatch payload", () => {
  let child: string;
  const ledgerVar = `dispatcher/acl-probe-${u}`;

  beforeAll(async () => {
    await nomadHttp("PUT", `/v1/var/${ledgerVar}?namespace=dispatch`, { body: { Path: ledgerVar, Items: { state: "claimed" } } });
    cleanups.push(() => nomadHttp("DELETE", `/v1/var/${ledgerVar}?namespace=dispatch`));
    // an in-flight child whose payload stands for a wrapping token
    const dispatched = await dispatcherNomad().dispatch({
      job: "runner",
      meta: { action_id: `victim-${u}`, action_sha: "0".repeat(40), action_path: "x.toml", commit: "0".repeat(40), formula: "none", ops_repo: "/nowhere" },
      payload: `s.payload-${u}`,
      idempotencyToken: `acl-payload-${u}`,
    });
    child = dispatched.jobId;
  });

  it("anonymous requests get 403 on jobs, a dispatched child and a ledger variable; the variable list is empty", async () => {
    for (const path of ["/v1/jobs?namespace=dispatch", `/v1/job/${encodeURIComponent(child)}?namespace=dispatch`, `/v1/var/${ledgerVar}?namespace=dispatch`]) {
      expect((await nomadHttp("GET", path, { token: "" })).status, path).toBe(403);
    }
    // Nomad filters a variable listing by ACL instead of refusing it
    expect(await (await nomadHttp("GET", "/v1/vars?namespace=dispatch", { token: "" })).json()).toEqual([]);
  });

  it("the operator-readonly token lists children but cannot read one (its payload)", async () => {
    expect((await nomadHttp("GET", "/v1/jobs?namespace=dispatch&prefix=runner", { token: s.operatorToken })).status).toBe(200);
    expect((await nomadHttp("GET", `/v1/job/${encodeURIComponent(child)}?namespace=dispatch`, { token: s.operatorToken })).status).toBe(403);
  });

  it("a formula (a task with no Nomad token) gets 403 on jobs, the in-flight child and the ledger, and lists no variable", async () => {
    const id = `probe-${u}`;
    const probe = [
      "#!/usr/bin/env bash",
      'echo "NOMAD_TOKEN=${NOMAD_TOKEN:-unset}"',
      `node -e 'const paths = ["/v1/jobs?namespace=dispatch", "/v1/job/${encodeURIComponent(child)}?namespace=dispatch", "/v1/var/${ledgerVar}?namespace=dispatch", "/v1/vars?namespace=dispatch"];`,
      `  (async () => { for (const p of paths) { const r = await fetch("${s.NOMAD_ADDR}" + p); console.log(p.split("?")[0], r.status, r.status === 200 ? await r.text() : ""); } })()'`,
      "",
    ].join("\n");
    const remote = await createOpsRemote({
      "formulas/probe.sh": probe,
      [`vault/actions/${id}.toml`]: `id = "${id}"\nformula = "probe"\ncontext = "hostile"\nsecrets = []\n`,
    });
    cleanups.push(() => remote.cleanup());
    await (await createTestDispatcher(remote.remote)).loop.once();
    const result = JSON.parse((await remote.read(`vault/actions/${id}.result.json`))!) as { status: string; logs: string };
    expect(result.status).toBe("succeeded");
    expect(result.logs).toBe(`NOMAD_TOKEN=unset\n/v1/jobs 403 \n/v1/job/${encodeURIComponent(child)} 403 \n/v1/var/${ledgerVar} 403 \n/v1/vars 200 []`);
  });
});

describe("a forged ledger entry", () => {
  let remote: OpsRemote;
  const id = `forged-${u}`;
  const victim = `unrelated-${u}`;
  let accessor: string;
  let foreignToken: string;

  beforeAll(async () => {
    await register(sleeper(victim, "dispatch"));
    await waitRunning(victim, "dispatch");
    // a token the dispatcher never made
    const created = await vaultRoot("POST", "auth/token/create", { policies: ["default"], ttl: "10m", meta: { action: id } });
    foreignToken = created.json.auth.client_token;
    accessor = created.json.auth.accessor;
    cleanups.push(() => vaultRoot("POST", "auth/token/revoke-accessor", { accessor }));
    remote = await createOpsRemote({
      "formulas/noop.sh": "#!/usr/bin/env bash\necho noop\n",
      [`vault/actions/${id}.toml`]: `id = "${id}"\nformula = "noop"\ncontext = "c"\nsecrets = []\n`,
    });
    cleanups.push(() => remote.cleanup());
    // what an attacker with write access to the ledger's variables would write
    const path = `dispatcher/actions/${id}`;
    const items = { state: "dispatched", owner: "ghost", attempt: "1", action_sha: "f".repeat(40), commit: "f".repeat(40), job_id: victim, accessor, dispatched_at: "2020-01-01T00:00:00.000Z", updated_at: "2020-01-01T00:00:00.000Z" };
    expect((await nomadHttp("PUT", `/v1/var/${path}?namespace=dispatch`, { body: { Path: path, Items: items } })).status).toBe(200);
    cleanups.push(() => nomadHttp("DELETE", `/v1/var/${path}?namespace=dispatch`));
  });

  it("is not acted on: the unrelated job keeps running, the foreign token stays valid, no result is written", async () => {
    const d = await createTestDispatcher(remote.remote);
    // the first pass's claim finds the entry (check-and-set); each pass after reads and refuses it
    for (let pass = 0; pass < 3; pass++) {
      await d.loop.pass();
      while (d.loop.inFlightIds().length > 0) await new Promise((r) => setTimeout(r, 100));
    }
    const forged = d.captured.lines.filter((l) => l.msg === "ledger entry does not match its job: not acting on it");
    expect(forged.length).toBe(2);
    expect(forged[0]).toMatchObject({ level: 50, action: id, owner: "ghost", problem: `job ${victim} is not a dispatched child of a runner/sidecar parent (parent: "none")` });
    const allocs = (await (await nomadHttp("GET", `/v1/job/${victim}/allocations?namespace=dispatch`)).json()) as { ClientStatus: string }[];
    expect(allocs.map((a) => a.ClientStatus)).toEqual(["running"]);
    const self = await fetch(`${s.VAULT_ADDR}/v1/auth/token/lookup-self`, { headers: { "X-Vault-Token": foreignToken } });
    expect(self.status).toBe(200);
    expect(await remote.read(`vault/actions/${id}.result.json`)).toBeUndefined();
    expect(await childrenOf("runner", id)).toEqual([]);
  });

  it("the dispatcher's Vault port refuses to revoke an accessor not made on its role for that action", async () => {
    const port = createVaultPort({ addr: s.VAULT_ADDR, token: await serviceToken(), role: "dispatcher-runner", wrapTtlSeconds: 60 });
    await expect(port.revokeAccessor(accessor, id)).rejects.toThrow(
      `refusing to revoke token accessor ${accessor}: it was made at "auth/token/create" for action "${id}", expected "auth/token/create/dispatcher-runner" for "${id}"`,
    );
    expect((await fetch(`${s.VAULT_ADDR}/v1/auth/token/lookup-self`, { headers: { "X-Vault-Token": foreignToken } })).status).toBe(200);
  });
});

describe("a runner parent re-registered with another entrypoint", () => {
  const parent = "runner-gpg-sops";
  const id = `pinned-${u}`;
  let original: Record<string, unknown>;
  let remote: OpsRemote;

  beforeAll(async () => {
    original = (await (await nomadHttp("GET", `/v1/job/${parent}?namespace=dispatch`)).json()) as Record<string, unknown>;
    const evil = structuredClone(original) as { TaskGroups: { Tasks: { Config: { args: string[] } }[] }[] };
    evil.TaskGroups[0]!.Tasks[0]!.Config.args = ["/tmp/evil.js"];
    expect((await nomadHttp("PUT", "/v1/jobs", { body: { Job: evil } })).status).toBe(200);
    remote = await createOpsRemote({
      "formulas/noop.sh": "#!/usr/bin/env bash\necho noop\n",
      [`vault/actions/${id}.toml`]: `id = "${id}"\nformula = "noop"\ncontext = "c"\nsecrets = ["DEMO_TOKEN"]\nmounts = ["gpg", "sops"]\n`,
    });
  });

  afterAll(async () => {
    // the pinned spec again, as registered
    await nomadHttp("PUT", "/v1/jobs", { body: { Job: original } });
    await remote?.cleanup();
  });

  it("gets nothing minted or dispatched; the action waits and the dispatcher logs why at error", async () => {
    let mints = 0;
    const d = await createTestDispatcher(remote.remote, { DISPATCHER_SECRETS: "DEMO_TOKEN" }, (v: VaultPort) => ({
      ...v,
      mintWrapped: (req) => (mints++, v.mintWrapped(req)),
    }));
    await d.loop.pass();
    while (d.loop.inFlightIds().length > 0) await new Promise((r) => setTimeout(r, 100));
    expect(mints).toBe(0);
    expect(await adminNomad().listChildren(parent)).toEqual([]);
    expect(await remote.read(`vault/actions/${id}.result.json`)).toBeUndefined();
    const line = d.captured.lines.find((l) => l.msg === "the runner parent differs from its pin: nothing minted or dispatched");
    expect(line).toMatchObject({
      level: 50,
      action: id,
      class: "parent_changed",
      problem: `job "${parent}" differs from its pin: TaskGroups[runner].Tasks[runner].Config.args: pinned ["/opt/dispatcher/node","/opt/dispatcher/runner.mjs"], now ["/tmp/evil.js"]`,
    });
  });

  it("makes doctor fail, naming the field that differs", async () => {
    const run = await runCli(["doctor"], await cliEnv(remote.remote, { DISPATCHER_SECRETS: "DEMO_TOKEN" }));
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(
      `fail jobspec runner: job "${parent}" differs from its pin: TaskGroups[runner].Tasks[runner].Config.args: pinned ["/opt/dispatcher/node","/opt/dispatcher/runner.mjs"], now ["/tmp/evil.js"]; fix: register the parents from jobspecs/runner.nomad.hcl with scripts/register-jobs.sh (it pins them), or run \`dispatcher jobs pin\` if the change is intended`,
    );
  });
});
