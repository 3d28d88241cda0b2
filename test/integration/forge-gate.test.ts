// The forge's merge as the gate ([approvals] provider = "forge"), on real Gitea, Nomad and OpenBao:
// only a pull request merged with an approval by a configured approver, on its merged head and not
// by its author, runs; merged without approval, approved before a later push, pushed directly: each
// refused before any token (`unapproved`, naming the commit), its commit status `failure` with why;
// and the code the runner checks out binds too: a helper changed by a direct push voids the approval.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createForgeRepo, createForgeUser, forgeApi, holdGitea, forgeEnv, freePort, mergePullRequest, openPullRequest, operatorPush, statusesOf, type ForgeRepo } from "../helpers/forge.js";
import { waitUntil } from "../helpers/process.js";
import { checkSetup } from "../../dispatcher/cli/doctor.js";
import { loadConfig } from "../../dispatcher/config.js";
import { childrenOf, createTestDispatcher, dispatcherEnv, uniq, type TestDispatcher } from "../helpers/stack.js";

const u = uniq();
const approver = `approver-${u}`;
const action = (id: string) => `id = "${id}"\nformula = "gated"\ncontext = "forge gate test"\nsecrets = []\n`;
const ids = { approved: `gate-ok-${u}`, none: `gate-none-${u}`, stale: `gate-stale-${u}`, direct: `gate-direct-${u}`, helper: `gate-helper-${u}` };

let repo: ForgeRepo;
let d: TestDispatcher;
let dEnv: Record<string, string>;
let approverToken: string;
const stop = new AbortController();
let running: Promise<void>;
const dispatched: string[] = [];

/** Gitea stays up while this file runs (forge.test.ts stops it once) */
let releaseGitea: (() => void) | undefined;

beforeAll(async () => {
  releaseGitea = await holdGitea();
  approverToken = await createForgeUser(approver, ["write:repository"]);
  const port = await freePort();
  repo = await createForgeRepo(`gate-${u}`, `http://127.0.0.1:${port}/hooks/push`);
  // the formula itself comes through an approved pull request first
  const f = await openPullRequest(repo.repo, "formula", { "formulas/gated.sh": '#!/usr/bin/env bash\necho "gated ran"\n' }, "formulas: gated");
  await forgeApi("POST", `/repos/${repo.repo}/pulls/${f.number}/reviews`, { event: "APPROVED", body: "ok" }, approverToken);
  await mergePullRequest(repo.repo, f.number);
  dEnv = {
    ...repo.env,
    DISPATCHER_FORGE_OUTBOX: join(await mkdtemp(join(tmpdir(), "forge-gate-")), "outbox.json"),
    DISPATCHER_LISTEN: `127.0.0.1:${port}`,
    DISPATCHER_APPROVALS_PROVIDER: "forge",
    DISPATCHER_APPROVERS: `${approver},someone-else`,
  };
  d = await createTestDispatcher(repo.remote, dEnv);
  d.loop.events.on("action:dispatched", (e) => dispatched.push(e.id));
  await d.serve();
  running = d.loop.run(stop.signal, 600_000);
}, 120_000);

afterAll(async () => {
  releaseGitea?.();
  stop.abort();
  await running;
  d?.forge?.close();
});

async function resultAt(id: string): Promise<Record<string, unknown> | undefined> {
  const res = await fetch(`${forgeEnv().FORGE_URL}/api/v1/repos/${repo.repo}/raw/vault/actions/${id}.result.json?ref=main`, { headers: { Authorization: `token ${forgeEnv().operatorToken}` } });
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`reading ${id}.result.json: HTTP ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

async function result(id: string): Promise<Record<string, unknown>> {
  expect(await waitUntil(async () => (await resultAt(id)) !== undefined, 180_000, 1000)).toBe(true);
  return (await resultAt(id))!;
}

/** the last status of dispatcher/<id> on `commit`, once it is final */
async function finalStatus(commit: string, id: string): Promise<{ status: string; description: string }> {
  const last = async () => (await statusesOf(repo.repo, commit)).filter((s) => s.context === `dispatcher/${id}`).at(-1);
  expect(await waitUntil(async () => ((await last())?.status ?? "pending") !== "pending", 60_000, 500)).toBe(true);
  const s = (await last())!;
  return { status: s.status, description: s.description };
}

describe("[approvals] provider = forge", () => {
  it("a pull request approved by an approver on its head and merged runs, approved_by naming the approver", async () => {
    const pr = await openPullRequest(repo.repo, `add-${ids.approved}`, { [`vault/actions/${ids.approved}.toml`]: action(ids.approved) }, `actions: ${ids.approved}`);
    await forgeApi("POST", `/repos/${repo.repo}/pulls/${pr.number}/reviews`, { event: "APPROVED", body: "lgtm" }, approverToken);
    // Gitea refuses the author's own approval: it could not count anyway
    await expect(forgeApi("POST", `/repos/${repo.repo}/pulls/${pr.number}/reviews`, { event: "APPROVED", body: "mine" })).rejects.toThrow(/HTTP 422/);
    const merge = await mergePullRequest(repo.repo, pr.number);
    const r = await result(ids.approved);
    expect([r.status, r.approved_by]).toEqual(["succeeded", [approver]]);
    expect((await finalStatus(merge, ids.approved)).status).toBe("success");
  });

  it("merged without approval: refused before any dispatch (and so any token), the merge commit's status failure with the reason", async () => {
    const pr = await openPullRequest(repo.repo, `add-${ids.none}`, { [`vault/actions/${ids.none}.toml`]: action(ids.none) }, `actions: ${ids.none}`);
    const merge = await mergePullRequest(repo.repo, pr.number);
    const r = await result(ids.none);
    const why = `vault/actions/${ids.none}.toml: last changed by commit ${merge.slice(0, 12)}, the merge of pull request #${pr.number} by operator, with 0 of 1 approvals from ${approver}, someone-else`;
    expect([r.status, r.error]).toEqual(["rejected", { class: "unapproved", message: why }]);
    expect(await finalStatus(merge, ids.none)).toEqual({ status: "failure", description: `rejected (unapproved): ${why}`.slice(0, 139) + "…" });
    expect(dispatched).not.toContain(ids.none);
    expect(await childrenOf("runner", ids.none)).toEqual([]);
  });

  it("approved, then pushed to: the approval is on an older commit and does not count", async () => {
    const pr = await openPullRequest(repo.repo, `add-${ids.stale}`, { [`vault/actions/${ids.stale}.toml`]: action(ids.stale) }, `actions: ${ids.stale}`);
    await forgeApi("POST", `/repos/${repo.repo}/pulls/${pr.number}/reviews`, { event: "APPROVED", body: "lgtm" }, approverToken);
    const after = await operatorPush(repo.repo, `add-${ids.stale}`, { [`vault/actions/${ids.stale}.toml`]: action(ids.stale).replace("forge gate test", "changed after the approval") }, "after approval");
    const merge = await mergePullRequest(repo.repo, pr.number);
    const r = await result(ids.stale);
    expect([r.status, (r.error as { class: string }).class]).toEqual(["rejected", "unapproved"]);
    expect((r.error as { message: string }).message).toBe(
      `vault/actions/${ids.stale}.toml: last changed by commit ${merge.slice(0, 12)}, the merge of pull request #${pr.number} by operator, with 0 of 1 approvals from ${approver}, someone-else; approvals by ${approver} are on an older commit than the merged head ${after.slice(0, 12)} (pushed after approval)`,
    );
    expect((await finalStatus(merge, ids.stale)).status).toBe("failure");
    expect(dispatched).not.toContain(ids.stale);
  });

  it("a direct push to the branch is refused, naming the commit", async () => {
    const commit = await operatorPush(repo.repo, "main", { [`vault/actions/${ids.direct}.toml`]: action(ids.direct) }, `actions: ${ids.direct} (direct)`);
    const r = await result(ids.direct);
    expect([r.status, r.error]).toEqual(["rejected", { class: "unapproved", message: `vault/actions/${ids.direct}.toml: last changed by commit ${commit.slice(0, 12)}, a direct push, not a merged pull request` }]);
    expect((await finalStatus(commit, ids.direct)).status).toBe("failure");
    expect(dispatched).not.toContain(ids.direct);
    expect(await childrenOf("runner", ids.direct)).toEqual([]);
  });

  // last: its direct push leaves the code unreviewed for every action after it
  it("a helper the formula sources, changed by a direct push, voids the approval of an action merged after it", async () => {
    const push = await operatorPush(repo.repo, "main", { "formulas/lib/common.sh": 'echo "swapped helper ran"\n' }, "formulas: a helper, pushed directly");
    const pr = await openPullRequest(repo.repo, `add-${ids.helper}`, { [`vault/actions/${ids.helper}.toml`]: action(ids.helper) }, `actions: ${ids.helper}`);
    await forgeApi("POST", `/repos/${repo.repo}/pulls/${pr.number}/reviews`, { event: "APPROVED", body: "lgtm" }, approverToken);
    const merge = await mergePullRequest(repo.repo, pr.number);
    const r = await result(ids.helper);
    expect([r.status, r.error]).toEqual([
      "rejected",
      { class: "unapproved", message: `vault/actions/${ids.helper}.toml: everything outside vault/actions/ was last changed by commit ${push.slice(0, 12)}, a direct push, not a merged pull request` },
    ]);
    expect((await finalStatus(merge, ids.helper)).status).toBe("failure");
    expect(dispatched).not.toContain(ids.helper);
    expect(await childrenOf("runner", ids.helper)).toEqual([]);
  });
});

describe("doctor with provider = forge", () => {
  it("names an approver the forge does not know", async () => {
    const config = loadConfig({ env: { ...dispatcherEnv(repo.remote), ...dEnv, DISPATCHER_WORKDIR: join(tmpdir(), `gate-doctor-${u}`) } });
    const check = (await checkSetup(config)).find((c) => c.name === "forge approvers")!;
    expect([check.ok, check.detail]).toEqual([false, `no user someone-else on ${forgeEnv().FORGE_URL}; their approvals can never count`]);
    const fine = loadConfig({ env: { ...dispatcherEnv(repo.remote), ...dEnv, DISPATCHER_APPROVERS: approver, DISPATCHER_WORKDIR: join(tmpdir(), `gate-doctor-${u}`) } });
    expect((await checkSetup(fine)).find((c) => c.name === "forge approvers")).toMatchObject({ ok: true, detail: `${approver} exist` });
  });
});
