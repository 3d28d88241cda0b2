// jobspecs/dispatcher.nomad.hcl for real: the dispatcher runs as a Nomad service job on the dev
// stack (its Vault token from a Nomad variable), picks up an action and pushes its result.
import { execFile } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { nomadHttp, runnerRemoteFor, stackEnv, uniq } from "../helpers/stack.js";

const root = new URL("../..", import.meta.url).pathname;
const u = uniq();
const id = `hosted-${u}`;
let remote: OpsRemote;

function nomad(args: string[]): Promise<string> {
  const s = stackEnv();
  return new Promise((resolve, reject) =>
    // the operator who installs the dispatcher holds a management token; the job itself never does
    execFile(s.NOMAD_BIN, args, { env: { ...process.env, NOMAD_ADDR: s.NOMAD_ADDR, NOMAD_TOKEN: s.managementToken, NOMAD_NAMESPACE: "dispatcher" } }, (err, stdout, stderr) =>
      err ? reject(new Error(`nomad ${args.join(" ")}: ${stderr || err.message}`)) : resolve(stdout),
    ),
  );
}

beforeAll(async () => {
  const s = stackEnv();
  remote = await createOpsRemote({
    "formulas/hosted.sh": '#!/usr/bin/env bash\necho "run by a dispatcher inside Nomad"\n',
    [`vault/actions/${id}.toml`]: `id = "${id}"\nformula = "hosted"\ncontext = "c"\nsecrets = []\n`,
  });
  // the job's workload identity gets the shipped dispatcher policy, and nothing else
  await nomad(["acl", "policy", "apply", "-namespace", "dispatcher", "-job", "dispatcher", "dispatcher-job", `${root}acl/dispatcher.hcl`]);
  await nomad(["var", "put", "-force", "nomad/jobs/dispatcher", `vault_role_id=@${s.DISPATCHER_VAULT_ROLE_ID_FILE}`, `vault_secret_id=@${s.DISPATCHER_VAULT_SECRET_ID_FILE}`, `job_pins=@${s.DISPATCHER_JOB_PINS}`]);
  await nomad([
    "job", "run", "-detach",
    "-var", `cli=${root}dist/dispatcher.mjs`,
    "-var", `node_bin=${process.execPath}`,
    "-var", `nomad_addr=${s.NOMAD_ADDR}`,
    "-var", `vault_addr=${s.VAULT_ADDR}`,
    "-var", `ops_remote=${remote.remote}`,
    "-var", `runner_remote=${runnerRemoteFor(remote.remote)}`,
    `${root}jobspecs/dispatcher.nomad.hcl`,
  ]);
}, 60_000);

afterAll(async () => {
  await nomad(["job", "stop", "-purge", "-detach", "dispatcher"]).catch(() => undefined);
  await nomad(["var", "purge", "nomad/jobs/dispatcher"]).catch(() => undefined);
  await nomad(["acl", "policy", "delete", "dispatcher-job"]).catch(() => undefined);
  await remote?.cleanup();
});

describe("the dispatcher as a Nomad service job", () => {
  it("runs, passes its checks and pushes the action's result", async () => {
    let text: string | undefined;
    for (let i = 0; i < 120 && !text; i++) {
      text = await remote.read(`vault/actions/${id}.result.json`);
      if (!text) await new Promise((r) => setTimeout(r, 1000));
    }
    expect(text, "no result after 120 s: see `nomad alloc logs -stderr` of the dispatcher job").toBeDefined();
    expect(JSON.parse(text!)).toMatchObject({ id, status: "succeeded", exit_code: 0, logs: "run by a dispatcher inside Nomad" });
    const allocs = (await (await nomadHttp("GET", "/v1/job/dispatcher/allocations?namespace=dispatcher")).json()) as { ClientStatus: string }[];
    expect(allocs.map((a) => a.ClientStatus)).toEqual(["running"]);
  });

  it("registers its service in Nomad, where Prometheus finds /metrics, and its /healthz check passes", async () => {
    const services = (await (await nomadHttp("GET", "/v1/service/dispatcher?namespace=dispatcher")).json()) as { Address: string; Port: number; Tags: string[] }[];
    expect(services).toHaveLength(1);
    expect(services[0]!.Tags).toEqual(["metrics"]);
    const base = `http://${services[0]!.Address}:${services[0]!.Port}`;
    expect(await (await fetch(`${base}/healthz`)).text()).toBe("ok\n");
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^dispatcher_results_pushed_total 1$/m);
    expect(metrics).toMatch(/^dispatcher_actions_total\{status="succeeded",class="none"\} 1$/m);
  });

  it("listens on loopback by default: /readyz and /metrics are not open to the network", async () => {
    const job = (await (await nomadHttp("GET", "/v1/job/dispatcher?namespace=dispatcher")).json()) as { TaskGroups: { Services: { Address: string }[]; Tasks: { Env: Record<string, string> }[] }[] };
    expect(job.TaskGroups[0]!.Tasks[0]!.Env.DISPATCHER_LISTEN).toBe("127.0.0.1:${NOMAD_PORT_http}");
    expect(job.TaskGroups[0]!.Services[0]!.Address).toBe("127.0.0.1");
  });
});
