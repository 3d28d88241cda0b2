// Allocation tracking on one shared event stream: several jobs at once, and a job whose events
// went by before it was watched (found by listing).
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../dispatcher/log.js";
import { createAllocationFeed } from "../../dispatcher/nomad/feed.js";
import type { AllocationState } from "../../dispatcher/core/ports.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { dispatcherNomad, runnerRemoteFor, uniq } from "../helpers/stack.js";

const nomad = dispatcherNomad();
const feed = createAllocationFeed(nomad, createLogger({ level: "silent", pretty: false }));
let remote: OpsRemote;
let commit: string;

beforeAll(async () => {
  // the formula exits with the number that ends the action id: feed-<u>-<code>
  remote = await createOpsRemote({ "formulas/code.sh": '#!/usr/bin/env bash\nsleep 1\nexit "${ACTION_ID##*-}"\n', "vault/actions/x.toml": "x\n" });
  commit = execFileSync("git", ["--git-dir", remote.remote, "rev-parse", "main"]).toString().trim();
});

afterAll(async () => {
  feed.close();
  await remote.cleanup();
});

async function dispatch(code: number): Promise<string> {
  const u = uniq();
  const { jobId } = await nomad.dispatch({
    job: "runner",
    meta: { action_id: `feed-${u}-${code}`, action_sha: "0".repeat(40), action_path: "vault/actions/x.toml", commit, formula: "code", ops_repo: runnerRemoteFor(remote.remote) },
    idempotencyToken: `feed-${u}`,
  });
  return jobId;
}

async function follow(jobId: string): Promise<AllocationState> {
  let index = 0;
  for (;;) {
    const p = await feed.watchJob(jobId, index, 5000);
    index = p.index;
    const done = p.allocations.find((a) => ["complete", "failed", "lost"].includes(a.clientStatus));
    if (done) return done;
  }
}

describe("allocation feed", () => {
  it("follows several jobs at once to their exit codes", async () => {
    const jobs = await Promise.all([0, 3, 5].map(dispatch));
    const allocs = await Promise.all(jobs.map(follow));
    expect(allocs.map((a) => [a.clientStatus, a.exitCode])).toEqual([
      ["complete", 0],
      ["failed", 3],
      ["failed", 5],
    ]);
  });

  it("finds a job that finished before anyone watched it", async () => {
    const jobId = await dispatch(0);
    const direct = await (async () => {
      let p = await nomad.watchJob(jobId, 0, 1000);
      while (!p.allocations.some((a) => a.clientStatus === "complete")) p = await nomad.watchJob(jobId, p.index, 5000);
      return p;
    })();
    expect(direct.allocations).toHaveLength(1);
    expect(await follow(jobId)).toMatchObject({ clientStatus: "complete", exitCode: 0 });
  });
});

describe("a job that is gone", () => {
  it("is reported gone at once instead of waited for until the placement deadline", async () => {
    const started = Date.now();
    const p = await feed.watchJob(`runner/dispatch-0000000000-${uniq()}`, 0, 20_000);
    expect(p).toMatchObject({ allocations: [], gone: true });
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
