// Parameterized jobs the bench registers next to the stack's `runner`. Both name their task
// "runner" so the dispatcher can read their logs like the real runner's.
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Stack } from "./settings.js";

/** `/bin/true`: the floor of a raw_exec child on this agent. */
export const NOOP_JOB = "bench-noop";
/** Accepts the runner's meta and sleeps: allocations to track, at 10 MHz / 10 MB each. */
export const SLEEP_JOB = "bench-sleep";

// same meta contract as jobspecs/runner.nomad.hcl, so the dispatcher can dispatch it as its runner
const RUNNER_META = `meta_required = ["action_id", "action_sha", "action_path", "commit", "formula", "ops_repo"]
    meta_optional = ["secrets_csv", "mounts_csv", "kv_mount", "model", "tools_csv", "blast_radius", "dispatch_mode", "timeout_minutes", "attempt"]`;

function jobspec(name: string, parameterized: string, command: string, args: string[]): string {
  return `job "${name}" {
  type        = "batch"
  datacenters = ["*"]
  parameterized {
    payload = "optional"
    ${parameterized}
  }
  group "runner" {
    restart {
      attempts = 0
      mode     = "fail"
    }
    reschedule {
      attempts  = 0
      unlimited = false
    }
    ephemeral_disk {
      size = 10
    }
    task "runner" {
      driver = "raw_exec"
      config {
        command = "${command}"
        args    = ${JSON.stringify(args)}
      }
      resources {
        cpu    = 10
        memory = 10
      }
      logs {
        max_files     = 1
        max_file_size = 1
      }
    }
  }
}
`;
}

export async function registerBenchJobs(stack: Stack): Promise<void> {
  const specs = { [NOOP_JOB]: jobspec(NOOP_JOB, "", "/bin/true", []), [SLEEP_JOB]: jobspec(SLEEP_JOB, RUNNER_META, "/bin/sleep", ["3600"]) };
  for (const [name, hcl] of Object.entries(specs)) {
    const file = join(stack.dir, `${name}.nomad.hcl`);
    await writeFile(file, hcl);
    await promisify(execFile)(stack.NOMAD_BIN, ["job", "run", "-detach", file], { env: { ...process.env, NOMAD_ADDR: stack.NOMAD_ADDR } });
  }
}
