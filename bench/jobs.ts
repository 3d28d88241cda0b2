// Parameterized jobs the bench registers next to the stack's runner parents, in the runner
// namespace with the management token (the dispatcher's own token cannot register jobs). All name
// their task "runner" so the dispatcher can read their logs like the real runner's; the bench pins
// them beside the stack's parents so a dispatcher contender may dispatch them.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { buildPinFile } from "../core/pins.js";
import { parentJobsOf } from "../core/request.js";
import { createNomadPort } from "../nomad/client.js";
import { readPinFile, writePinFile } from "../pinfile.js";
import type { BenchNomad } from "./nomad.js";
import { ROOT, type Stack } from "./settings.js";

/** `/bin/true`: the floor of a raw_exec child on this agent. */
export const NOOP_JOB = "bench-noop";
/** mock_driver (our non-release Nomad build): no process at all, exits 0 at once; scale benches only. */
export const MOCK_JOB = "bench-mock";
/** mock_driver that "runs" for an hour: in-flight allocations without processes. */
export const MOCK_HOLD_JOB = "bench-mock-hold";
/** The real runner from jobspecs/runner.nomad.hcl under raw_exec (no isolation): exec's start cost. */
export const RAW_EXEC_RUNNER = "bench-runner-raw-exec";

// same meta contract as jobspecs/runner.nomad.hcl, so the dispatcher can dispatch it as its runner
const RUNNER_META = {
  MetaRequired: ["action_id", "action_sha", "action_path", "commit", "formula", "ops_repo"],
  MetaOptional: ["secrets_csv", "mounts_csv", "kv_mount", "model", "tools_csv", "blast_radius", "dispatch_mode", "timeout_minutes", "deadline", "attempt"],
};

interface Task {
  driver: string;
  config: Record<string, unknown>;
  /** MHz reserved: a mock allocation needs next to none, so thousands fit the dev client */
  cpu: number;
  /** no log collection: no logmon process per allocation on the agent */
  noLogs?: boolean;
}

const rawExec = (command: string, args: string[]): Task => ({ driver: "raw_exec", config: { command, args }, cpu: 10 });
const mock = (runFor: string, noLogs = false): Task => ({ driver: "mock_driver", config: { run_for: runFor, exit_code: 0, stdout_string: "ok\n" }, cpu: 1, noLogs });

function trivialJob(id: string, namespace: string, meta: object, task: Task): Record<string, unknown> {
  return {
    ID: id,
    Name: id,
    Namespace: namespace,
    Type: "batch",
    Datacenters: ["*"],
    ParameterizedJob: { Payload: "optional", ...meta },
    TaskGroups: [
      {
        Name: "runner",
        Count: 1,
        RestartPolicy: { Attempts: 0, Mode: "fail" },
        ReschedulePolicy: { Attempts: 0, Unlimited: false },
        EphemeralDisk: { SizeMB: 10 },
        Tasks: [
          {
            Name: "runner",
            Driver: task.driver,
            Config: task.config,
            Resources: { CPU: task.cpu, MemoryMB: 10 },
            LogConfig: { MaxFiles: 1, MaxFileSizeMB: 1, Disabled: task.noLogs ?? false },
          },
        ],
      },
    ],
  };
}

/** jobspecs/runner.nomad.hcl rendered for raw_exec, as scripts/register-jobs.sh renders it. */
async function rawExecRunner(stack: Stack): Promise<Record<string, unknown>> {
  const vars = { driver: "raw_exec", node_bin: process.execPath, runner_dir: `${ROOT}.dev/runner`, mount_root: `${ROOT}.dev/volumes`, vault_addr: stack.VAULT_ADDR };
  const args = ["job", "run", "-output", ...Object.entries(vars).flatMap(([k, v]) => ["-var", `${k}=${v}`]), `${ROOT}jobspecs/runner.nomad.hcl`];
  const { stdout } = await promisify(execFile)(stack.NOMAD_BIN, args, { maxBuffer: 16 * 1024 * 1024 });
  const job = (JSON.parse(stdout) as { Job: Record<string, unknown> }).Job;
  return { ...job, ID: RAW_EXEC_RUNNER, Name: RAW_EXEC_RUNNER };
}

/** Registers the bench's parents (admin: management token) and writes stack.pins. */
export async function registerBenchJobs(stack: Stack, admin: BenchNomad): Promise<void> {
  const ns = stack.NOMAD_NAMESPACE;
  await admin.register(trivialJob(NOOP_JOB, ns, {}, rawExec("/bin/true", [])));
  // `dispatcher run` checks at start that every mount-set variant of its runner job is pinned;
  // the bench's actions mount nothing, so the variants are copies
  for (const job of parentJobsOf(MOCK_JOB)) await admin.register(trivialJob(job, ns, RUNNER_META, mock("0s")));
  await admin.register(trivialJob(MOCK_HOLD_JOB, ns, RUNNER_META, mock("1h", true)));
  await admin.register(await rawExecRunner(stack));
  const nomad = createNomadPort({ addr: stack.NOMAD_ADDR, token: stack.NOMAD_TOKEN, namespace: ns });
  // the file's specs travel packed on disk: read through the dispatcher's own reader
  const stackPins = readPinFile(stack.DISPATCHER_JOB_PINS)!;
  const specs = new Map(Object.entries(stackPins.jobs).map(([id, p]) => [id, p.spec]));
  for (const job of [...parentJobsOf(MOCK_JOB), MOCK_HOLD_JOB, RAW_EXEC_RUNNER]) specs.set(job, (await nomad.parentSpec(job))!);
  writePinFile(stack.pins, buildPinFile(specs, new Date()));
}
