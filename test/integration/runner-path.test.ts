// The runner path end to end on the real stack: action TOML → scoped, wrapped token → dispatch →
// tracked allocation → result JSON pushed to the bare ops remote.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { childrenOf, createTestDispatcher, deleteSecret, dispatcherNomad, grantSecret, runnerRemoteFor, stackEnv, type TestDispatcher, uniq } from "../helpers/stack.js";
import type { ActionResult } from "../../dispatcher/core/result.js";

const u = uniq();
const A = `IT_A_${u.toUpperCase()}`;
const B = `IT_B_${u.toUpperCase()}`;
const GONE = `IT_GONE_${u.toUpperCase()}`;
const valueA = `alpha-${uniq()}-value`;
const valueB = `beta-${uniq()}-value`;
const valueGone = `gone-${uniq()}-value`;

const action = (id: string, formula: string, secrets: string[], extra = "") =>
  `id = "${id}"\nformula = "${formula}"\ncontext = "integration test"\nsecrets = [${secrets.map((s) => `"${s}"`).join(", ")}]\n${extra}`;

// formulas run inside the allocation, from the ops repo at the action's commit
const formulas: Record<string, string> = {
  "formulas/see-a.sh": `#!/usr/bin/env bash
set -eu
[ "$${A}" = "${valueA}" ] && echo "A is present and correct"
echo "echoing A by mistake: $${A}"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Vault-Token: $VAULT_TOKEN" "$VAULT_ADDR/v1/kv/data/runner/${B}")
echo "read of B: HTTP $code"
`,
  "formulas/exit3.sh": "#!/usr/bin/env bash\necho 'working on it'\necho 'fatal: the thing broke' >&2\nexit 3\n",
  "formulas/sleep.sh": "#!/usr/bin/env bash\necho started\nsleep 600\n",
  "formulas/noop.sh": "#!/usr/bin/env bash\necho noop ok\n",
};

let remote: OpsRemote;
/** wrapping tokens the dispatcher minted, by action: kept by the test only, to replay them */
const minted = new Map<string, string>();
let d: TestDispatcher;
const ids = {
  ok: `see-a-${u}`,
  unknown: `unknown-${u}`,
  missing: `missing-${u}`,
  exit3: `exit3-${u}`,
  timeout: `timeout-${u}`,
  malformed: `malformed-${u}`,
  unknownKey: `unknown-key-${u}`,
  after: `after-${u}`,
};

async function result(id: string): Promise<ActionResult> {
  const text = await remote.read(`vault/actions/${id}.result.json`);
  if (!text) throw new Error(`no result for ${id} in the remote`);
  return JSON.parse(text) as ActionResult;
}

beforeAll(async () => {
  stackEnv();
  await grantSecret(A, valueA);
  await grantSecret(B, valueB);
  await grantSecret(GONE, valueGone);
  remote = await createOpsRemote({
    ...formulas,
    [`vault/actions/${ids.ok}.toml`]: action(ids.ok, "see-a", [A]),
    [`vault/actions/${ids.unknown}.toml`]: action(ids.unknown, "noop", ["NOT_A_SECRET"]),
    [`vault/actions/${ids.missing}.toml`]: action(ids.missing, "noop", [GONE]),
    [`vault/actions/${ids.exit3}.toml`]: action(ids.exit3, "exit3", []),
    [`vault/actions/${ids.timeout}.toml`]: action(ids.timeout, "sleep", [], "timeout_minutes = 1\n"),
    [`vault/actions/${ids.malformed}.toml`]: `id = "${ids.malformed}"\nformula = "noop\n`,
    [`vault/actions/${ids.unknownKey}.toml`]: action(ids.unknownKey, "noop", [], 'colour = "blue"\n'),
    [`vault/actions/${ids.after}.toml`]: action(ids.after, "noop", []),
  });
  // granted, then removed before the run: the runner must fail loudly
  await deleteSecret(GONE);
  d = await createTestDispatcher(remote.remote, { DISPATCHER_SECRETS: [A, B, GONE].join(","), DISPATCHER_MAX_IN_FLIGHT: "8" }, (vault) => ({
    ...vault,
    async mintWrapped(req) {
      const wrapped = await vault.mintWrapped(req);
      minted.set(req.meta.action!, wrapped.wrappingToken);
      return wrapped;
    },
  }));
  // another writer pushes while the dispatcher works: results must land after a rebase
  const other = remote.commit({ "notes/other-writer.md": "pushed concurrently\n" }, "other writer");
  await Promise.all([d.loop.once(), other]);
}, 240_000);

afterAll(async () => {
  await remote?.cleanup();
});

describe("runner path", () => {
  it("runs an action with secret A: the formula sees A, the result is succeeded and pushed", async () => {
    const r = await result(ids.ok);
    expect(r).toMatchObject({ id: ids.ok, status: "succeeded", exit_code: 0, attempts: 1, policies: [`runner-${A.toLowerCase()}`] });
    expect(r.logs).toContain("A is present and correct");
    expect(r.job_id).toMatch(/^runner\/dispatch-/);
    expect(r.action_sha).toMatch(/^[0-9a-f]{40}$/);
    expect(Date.parse(r.timestamp)).not.toBeNaN();
    expect((await remote.log()).some((m) => m.startsWith("vault: result") && m.includes(ids.ok))).toBe(true);
  });

  it("scopes the token: the same runner is refused (403) on secret B", async () => {
    expect((await result(ids.ok)).logs).toContain("read of B: HTTP 403");
  });

  it("fails an unknown secret before any dispatch, with no token and no Nomad child", async () => {
    const r = await result(ids.unknown);
    expect(r.status).toBe("failed");
    expect(r.error).toEqual({
      class: "secret_unknown",
      message: `vault/actions/${ids.unknown}.toml: secrets[0] "NOT_A_SECRET" is not a known secret (known: ${[A, B, GONE].sort().join(", ")})`,
    });
    expect(r.token_accessor).toBeUndefined();
    expect(await childrenOf("runner", ids.unknown)).toEqual([]);
  });

  it("fails loudly when a granted secret was removed from KV: secret_missing, naming the secret", async () => {
    const r = await result(ids.missing);
    expect(r.status).toBe("failed");
    expect(r.error?.class).toBe("secret_missing");
    expect(r.error?.message).toContain(`secret ${GONE} is missing`);
    expect(r.logs).toContain(GONE);
  });

  it("records a formula's exit code 3 with the stderr tail", async () => {
    const r = await result(ids.exit3);
    expect(r).toMatchObject({ status: "failed", exit_code: 3, error: { class: "agent", message: "formula exited with code 3" } });
    expect(r.logs).toContain("fatal: the thing broke");
  });

  it("ends a job that runs past its timeout (the runner kills the formula itself): status timeout", async () => {
    const r = await result(ids.timeout);
    expect(r).toMatchObject({ status: "timeout", exit_code: 124, error: { class: "timeout", message: "formula ran past its timeout of 1 min and was killed by the runner" } });
    expect(r.logs).toBe("started\n[stderr]\n[runner] error timeout: formula ran past its timeout of 1 min and was killed by the runner");
    // the dispatcher's token cannot stop jobs (no submit-job): the runner ended it
    const { allocations: allocs } = await dispatcherNomad().allocationsOf(r.job_id!);
    expect(allocs.map((a) => a.clientStatus)).toEqual(["failed"]);
  });

  it("writes invalid results naming file and field for malformed TOML and an unknown key; the next action still runs", async () => {
    const bad = await result(ids.malformed);
    expect(bad.status).toBe("invalid");
    expect(bad.error?.message).toMatch(new RegExp(`^vault/actions/${ids.malformed}\\.toml: `));
    const unknownKey = await result(ids.unknownKey);
    expect(unknownKey.status).toBe("invalid");
    expect(unknownKey.error?.message).toContain(`vault/actions/${ids.unknownKey}.toml: unknown key "colour"`);
    expect((await result(ids.after)).status).toBe("succeeded");
  });

  it("keeps the other writer's concurrent commit and every result", async () => {
    expect(await remote.read("notes/other-writer.md")).toBe("pushed concurrently\n");
    for (const id of Object.values(ids)) expect((await result(id)).id).toBe(id);
  });

  it("never shows a secret value in results, log files or its own log lines", async () => {
    const texts = [d.captured.text()];
    for (const id of Object.values(ids)) {
      texts.push(JSON.stringify(await result(id)));
      texts.push((await remote.read(`vault/actions/${id}.log`)) ?? "");
    }
    const all = texts.join("\n");
    for (const v of [valueA, valueB, valueGone]) expect(all).not.toContain(v);
    expect((await result(ids.ok)).logs).toContain("echoing A by mistake: [redacted]");
  });
});

describe("wrapping token replay", () => {
  it("refuses a second unwrap of the token the runner already used", async () => {
    const env = stackEnv();
    const token = minted.get(ids.ok);
    expect(token).toMatch(/^s\./);
    const res = await fetch(`${env.VAULT_ADDR}/v1/sys/wrapping/unwrap`, { method: "POST", headers: { "X-Vault-Token": token! } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: string[] }).errors).toEqual(["wrapping token is not valid or does not exist"]);
  });

  it("makes a runner handed a replayed token refuse to run, naming the tampering", async () => {
    const nomad = dispatcherNomad();
    const head = (await remote.log()).length;
    expect(head).toBeGreaterThan(0);
    const r = await result(ids.ok);
    // the runner checks its checkout before it unwraps: the replay names a commit it can fetch
    const { jobId } = await nomad.dispatch({
      job: "runner",
      meta: { action_id: `replay-${u}`, action_sha: r.action_sha, action_path: `vault/actions/${ids.ok}.toml`, commit: r.commit, formula: "see-a", ops_repo: runnerRemoteFor(remote.remote), secrets_csv: A },
      payload: minted.get(ids.ok)!,
      idempotencyToken: `replay-${u}`,
    });
    let placement = await nomad.watchJob(jobId, 0, 1000);
    while (!placement.allocations.some((a) => a.clientStatus === "complete" || a.clientStatus === "failed")) {
      placement = await nomad.watchJob(jobId, placement.index, 5000);
    }
    const alloc = placement.allocations[0]!;
    expect(alloc.exitCode).toBe(90);
    expect(await nomad.readLog(alloc.id, "runner", "stderr")).toContain(
      `[runner] error tampered: wrapping token is invalid, expired or already used: refusing to run (possible tampering; rotate: ${A})`,
    );
    expect(await nomad.readLog(alloc.id, "runner", "stdout")).not.toContain("A is present");
  });
});
