// The Nomad adapter against the dev agent: dispatch (with Nomad's idempotency fence), blocking
// queries to the end, exit code and output through the HTTP API, host volumes, stop.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { createOpsRemote } from "../helpers/gitrepo.js";
import { dispatcherNomad, runnerRemoteFor, uniq } from "../helpers/stack.js";
import type { AllocationState } from "../../dispatcher/core/ports.js";

const nomad = dispatcherNomad();

async function waitTerminal(jobId: string): Promise<AllocationState> {
  let p = await nomad.watchJob(jobId, 0, 1000);
  for (;;) {
    const done = p.allocations.find((a) => ["complete", "failed", "lost"].includes(a.clientStatus));
    if (done) return done;
    p = await nomad.watchJob(jobId, p.index, 5000);
  }
}

describe("nomad port", () => {
  it("dispatches the runner, fences a duplicate, and reads the exit code and output", async () => {
    const u = uniq();
    const remote = await createOpsRemote({
      "formulas/smoke.sh": "#!/usr/bin/env bash\necho smoke out\necho smoke err >&2\nexit 7\n",
      [`vault/actions/smoke-${u}.toml`]: "placeholder\n",
    });
    const commit = execFileSync("git", ["--git-dir", remote.remote, "rev-parse", "main"]).toString().trim();
    // the runner checks its checkout against the action's blob before it runs anything
    const actionSha = execFileSync("git", ["--git-dir", remote.remote, "rev-parse", `main:vault/actions/smoke-${u}.toml`]).toString().trim();
    const req = {
      job: "runner",
      meta: { action_id: `smoke-${u}`, action_sha: actionSha, action_path: `vault/actions/smoke-${u}.toml`, commit, formula: "smoke", ops_repo: runnerRemoteFor(remote.remote) },
      idempotencyToken: `smoke-${u}`,
    };
    const first = await nomad.dispatch(req);
    const again = await nomad.dispatch(req);
    expect(again).toEqual({ jobId: first.jobId, evalId: "" });
    expect(first.evalId).not.toBe("");
    const alloc = await waitTerminal(first.jobId);
    expect(alloc).toMatchObject({ clientStatus: "failed", exitCode: 7 });
    expect(await nomad.readLog(alloc.id, "runner", "stdout")).toBe("smoke out\n");
    expect(await nomad.readLog(alloc.id, "runner", "stderr")).toBe("smoke err\n");
    await remote.cleanup();
  });

  it("lists the host volumes the dev client offers", async () => {
    const volumes = await nomad.hostVolumes();
    expect([...volumes.keys()].sort()).toEqual(["agent-data", "dispatcher-runner", "gpg", "ops-repo", "project-repos", "sops", "ssh"]);
    expect(volumes.get("ssh")).toBe(new URL("../../.dev/volumes/ssh", import.meta.url).pathname);
  });

  it("turns a dispatch the job refuses into a permanent, rejected failure naming the keys", async () => {
    const err = await nomad.dispatch({ job: "runner", meta: { action_id: "x" }, idempotencyToken: uniq() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ class: "rejected" });
    expect((err as Error).message).toMatch(
      /^nomad: dispatch runner failed: HTTP 500: Dispatch did not provide required meta keys: \[.*\] \(does the registered runner job match jobspecs\/\?\)$/,
    );
  });
});
