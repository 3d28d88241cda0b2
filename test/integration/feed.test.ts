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
/** jobs the feed listed (its fallback when the stream may have missed a change) */
const listed: string[] = [];
const counted = { ...nomad, watchJob: (...a: Parameters<typeof nomad.watchJob>) => (listed.push(a[0]), nomad.watchJob(...a)) };
const feed = createAllocationFeed(counted, createLogger({ level: "silent", pretty: false }));
let remote: OpsRemote;
let commit: string;
/** the action file's blob: the runner checks its checkout against it before it runs anything */
let actionSha: string;

beforeAll(async () => {
  // the formula exits with the number that ends the action id: feed-<u>-<code>
  remote = await createOpsRemote({ "formulas/code.sh": '#!/usr/bin/env bash\nsleep 1\nexit "${ACTION_ID##*-}"\n', "vault/actions/x.toml": "x\n" });
  commit = execFileSync("git", ["--git-dir", remote.remote, "rev-parse", "main"]).toString().trim();
  actionSha = execFileSync("git", ["--git-dir", remote.remote, "rev-parse", "main:vault/actions/x.toml"]).toString().trim();
});

afterAll(async () => {
  feed.close();
  await remote.cleanup();
});

async function dispatch(code: number, through: Pick<typeof nomad, "dispatch"> = nomad): Promise<string> {
  const u = uniq();
  const { jobId } = await through.dispatch({
    job: "runner",
    meta: { action_id: `feed-${u}-${code}`, action_sha: actionSha, action_path: "vault/actions/x.toml", commit, formula: "code", ops_repo: runnerRemoteFor(remote.remote) },
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

/** waits, past the feed, until the job's allocation is complete or failed */
async function completed(jobId: string) {
  let p = await nomad.watchJob(jobId, 0, 1000);
  while (!p.allocations.some((a) => ["complete", "failed"].includes(a.clientStatus))) p = await nomad.watchJob(jobId, p.index, 5000);
  return p;
}

describe("allocation feed", () => {
  it("follows several jobs at once to their exit codes", async () => {
    const jobs = await Promise.all([0, 3, 5].map((code) => dispatch(code)));
    const allocs = await Promise.all(jobs.map(follow));
    expect(allocs.map((a) => [a.clientStatus, a.exitCode])).toEqual([
      ["complete", 0],
      ["failed", 3],
      ["failed", 5],
    ]);
  });

  it("finds a job that finished before anyone watched it", async () => {
    const jobId = await dispatch(0);
    const direct = await completed(jobId);
    expect(direct.allocations).toHaveLength(1);
    expect(await follow(jobId)).toMatchObject({ clientStatus: "complete", exitCode: 0 });
  });

  it("follows a child dispatched on the live stream from the stream alone, though it ended before it was watched", async () => {
    // the first dispatch opens the stream: it is not live yet, so that child is listed
    const first = await dispatch(0, feed);
    await completed(first);
    const second = await dispatch(4, feed);
    await completed(second);
    const before = listed.length;
    expect(await follow(second)).toMatchObject({ clientStatus: "failed", exitCode: 4 });
    expect(listed.slice(before)).toEqual([]);
    expect(await follow(first)).toMatchObject({ clientStatus: "complete", exitCode: 0 });
    expect(listed.slice(before)).toEqual([first]);
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
