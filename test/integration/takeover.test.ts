// The ledger records, it does not decide: entries forged with the dispatcher's own Nomad token (the
// one the README gives operators for status and logs -f) in the states claimed, finished and
// recorded neither make the dispatcher mint for another commit, nor push a forged result, nor
// block an action for good.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { runGit } from "../../dispatcher/opsrepo/exec.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createTestDispatcher, deleteSecret, grantSecret, nomadHttp, stackEnv, uniq, type TestDispatcher } from "../helpers/stack.js";

const u = uniq();
const s = stackEnv();
const SECRET = `LEDGER_${u.toUpperCase()}`;
const ids = { claimed: `claimed-${u}`, finished: `finished-${u}`, recorded: `recorded-${u}` };
const action = (id: string) => `id = "${id}"\nformula = "show"\ncontext = "c"\nsecrets = ["${SECRET}"]\n`;
let remote: OpsRemote;
let d: TestDispatcher;
let tip: string;
let evil: string;
const mintedFor: Record<string, string> = {};

async function result(id: string): Promise<ActionResult> {
  return JSON.parse((await remote.read(`vault/actions/${id}.result.json`))!) as ActionResult;
}

/** a commit of main's (first-parent) history, not the attacker's branch */
async function onMain(commit: string): Promise<boolean> {
  return (await runGit(remote.remote, ["rev-list", "--first-parent", "main"])).toString().split("\n").includes(commit) && commit !== evil;
}

async function forge(id: string, items: Record<string, string>): Promise<void> {
  const path = `dispatcher/actions/${id}`;
  const res = await nomadHttp("PUT", `/v1/var/${path}?namespace=dispatch`, { token: s.NOMAD_TOKEN, body: { Path: path, Items: { owner: "ghost", attempt: "1", updated_at: "2020-01-01T00:00:00.000Z", ...items } } });
  expect(res.status).toBe(200);
}

beforeAll(async () => {
  await grantSecret(SECRET, `ledger-value-${u}`);
  remote = await createOpsRemote({ "formulas/show.sh": "#!/usr/bin/env bash\necho approved-code\n", ...Object.fromEntries(Object.values(ids).map((id) => [`vault/actions/${id}.toml`, action(id)])) });
  tip = (await runGit(remote.remote, ["rev-parse", "main"])).toString().trim();
  // the attacker's commit, on another branch: the same action files, a formula that leaks the secret
  evil = await remote.commit({ "formulas/show.sh": `#!/usr/bin/env bash\necho "evil: $(printf %s "$${SECRET}" | base64)"\n` }, "evil");
  await runGit(remote.remote, ["update-ref", "refs/heads/evil", evil]);
  await runGit(remote.remote, ["update-ref", "refs/heads/main", tip]);
  const blob = async (id: string) => (await runGit(remote.remote, ["rev-parse", `main:vault/actions/${id}.toml`])).toString().trim();

  await forge(ids.claimed, { state: "claimed", action_sha: await blob(ids.claimed), commit: evil });
  const forgedResult = { id: ids.finished, exit_code: 0, timestamp: "2020-01-01T00:00:00.000Z", logs: "forged result", status: "succeeded", attempts: 1, action_sha: await blob(ids.finished), commit: tip };
  await forge(ids.finished, { state: "finished", action_sha: await blob(ids.finished), commit: tip, job_id: `runner/dispatch-0000000000-${u}`, result: JSON.stringify(forgedResult) });
  await forge(ids.recorded, { state: "recorded", action_sha: await blob(ids.recorded), commit: tip });

  d = await createTestDispatcher(remote.remote, { DISPATCHER_SECRETS: SECRET }, (v) => ({
    ...v,
    mintWrapped: (req) => ((mintedFor[req.meta.action ?? "?"] = req.meta.commit ?? "?"), v.mintWrapped(req)),
  }));
  // the first pass's claim finds each entry (check-and-set); the next ones act on them
  for (let pass = 0; pass < 3; pass++) {
    await d.loop.pass();
    while (d.loop.inFlightIds().length > 0) await new Promise((r) => setTimeout(r, 100));
  }
  // bounded: a wait that never ends is one of the attacks
  await Promise.race([d.loop.once(), new Promise((r) => setTimeout(r, 90_000))]);
}, 240_000);

afterAll(async () => {
  for (const id of Object.values(ids)) await nomadHttp("DELETE", `/v1/var/dispatcher/actions/${id}?namespace=dispatch`);
  await deleteSecret(SECRET);
  await remote?.cleanup();
});

describe("forged ledger entries", () => {
  it("a claimed entry naming another commit: the action runs at the approved commit, its token minted for that one", async () => {
    expect(mintedFor[ids.claimed]).toBe(tip);
    expect(await result(ids.claimed)).toMatchObject({ status: "succeeded", logs: "approved-code", commit: tip });
  });

  it("a finished entry whose stored result no job of ours produced: not pushed; the action runs afresh", async () => {
    const r = await result(ids.finished);
    // the forged result never reaches the repo; the run is at the tip its pass read (a result commit later than `tip`)
    expect(r).toMatchObject({ status: "succeeded", logs: "approved-code", attempts: 2 });
    expect(await onMain(r.commit)).toBe(true);
    expect(d.captured.lines.find((l) => l.action === ids.finished && l.msg === "ledger entry does not hold up: running the action afresh at the approved commit")).toMatchObject({
      level: 50,
      problem: `job runner/dispatch-0000000000-${u} is not known to Nomad`,
    });
  });

  it("a recorded entry whose result is not at the tip after the lease: the action runs afresh instead of waiting for good", async () => {
    const r = await result(ids.recorded);
    expect(r).toMatchObject({ status: "succeeded", logs: "approved-code", attempts: 2 });
    expect(await onMain(r.commit)).toBe(true);
  });
});
