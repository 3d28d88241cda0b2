// The whole runner parent is pinned, and every dispatched child is checked against the pin: a
// parent re-registered (with the management token) with task-level or group-level meta naming
// another ops repo and commit gets nothing minted; a parent re-registered between the pin check
// and the dispatch yields a child that differs from the pin, whose token is revoked at once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import type { VaultPort } from "../../dispatcher/core/ports.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { childrenOf, createTestDispatcher, deleteSecret, grantSecret, nomadHttp, runnerRemoteFor, stackEnv, uniq } from "../helpers/stack.js";

const u = uniq();
const SECRET = `PIN_${u.toUpperCase()}`;
const s = stackEnv();
type Job = { Meta?: Record<string, string> | null; TaskGroups: { Meta?: Record<string, string> | null; Tasks: { Meta?: Record<string, string> | null }[] }[] };

/** the attacker's repository, served to runners like any other, with a formula that leaks the secret */
let evil: OpsRemote;
let evilCommit: string;
const originals = new Map<string, Job>();

async function readParent(parent: string): Promise<Job> {
  return (await (await nomadHttp("GET", `/v1/job/${parent}?namespace=dispatch`)).json()) as Job;
}

async function register(job: Job): Promise<void> {
  expect((await nomadHttp("PUT", "/v1/jobs", { body: { Job: job } })).status).toBe(200);
}

/** the parent re-registered as an attacker would: meta at `level` naming the evil repo and commit */
async function overrideMeta(parent: string, level: "task" | "group"): Promise<Record<string, string>> {
  const job = structuredClone(originals.get(parent) ?? (await readParent(parent)));
  if (!originals.has(parent)) originals.set(parent, structuredClone(job));
  const meta = { commit: evilCommit, ops_repo: runnerRemoteFor(evil.remote) };
  if (level === "task") job.TaskGroups[0]!.Tasks[0]!.Meta = meta;
  else job.TaskGroups[0]!.Meta = meta;
  await register(job);
  return meta;
}

const action = (id: string, mounts: string) => `id = "${id}"\nformula = "noop"\ncontext = "c"\nsecrets = ["${SECRET}"]\nmounts = ${mounts}\n`;

/** how the diff shows the meta: Nomad answers a map's keys in either order, cut at 80 characters as pins.ts does */
function shownMeta(meta: Record<string, string>): string[] {
  return [JSON.stringify({ commit: meta.commit, ops_repo: meta.ops_repo }), JSON.stringify({ ops_repo: meta.ops_repo, commit: meta.commit })].map((t) => (t.length > 80 ? `${t.slice(0, 77)}...` : t));
}

async function lookupAccessor(accessor: string): Promise<number> {
  const res = await fetch(`${s.VAULT_ADDR}/v1/auth/token/lookup-accessor`, { method: "POST", headers: { "X-Vault-Token": s.rootToken }, body: JSON.stringify({ accessor }) });
  return res.status;
}

beforeAll(async () => {
  await grantSecret(SECRET, `pin-value-${u}`);
  evil = await createOpsRemote({ "formulas/noop.sh": `#!/usr/bin/env bash\necho "evil code ran: $(printf %s "$${SECRET}" | base64)"\n` });
  evilCommit = (await evil.commit({}, "evil")).trim();
}, 60_000);

afterAll(async () => {
  // the pinned specs again, as registered
  for (const job of originals.values()) await register(job);
  await deleteSecret(SECRET);
  await evil?.cleanup();
});

for (const [level, parent, mounts] of [
  ["task", "runner-gpg-sops-ssh", '["gpg", "sops", "ssh"]'],
  ["group", "runner-gpg-ssh", '["gpg", "ssh"]'],
] as const) {
  describe(`a runner parent re-registered with ${level}-level meta overriding ops_repo and commit`, () => {
    const id = `meta-${level}-${u}`;
    let remote: OpsRemote;
    let meta: Record<string, string>;

    beforeAll(async () => {
      meta = await overrideMeta(parent, level);
      remote = await createOpsRemote({ "formulas/noop.sh": "#!/usr/bin/env bash\necho noop\n", [`vault/actions/${id}.toml`]: action(id, mounts) });
    }, 60_000);

    afterAll(async () => {
      await register(originals.get(parent)!);
      await remote?.cleanup();
    });

    it("gets nothing minted or dispatched; the dispatcher logs the field at error", async () => {
      let mints = 0;
      const d = await createTestDispatcher(remote.remote, { DISPATCHER_SECRETS: SECRET }, (v: VaultPort) => ({ ...v, mintWrapped: (req) => (mints++, v.mintWrapped(req)) }));
      await d.loop.pass();
      while (d.loop.inFlightIds().length > 0) await new Promise((r) => setTimeout(r, 100));
      const where = level === "task" ? "TaskGroups[runner].Tasks[runner].Meta" : "TaskGroups[runner].Meta";
      const line = d.captured.lines.find((l) => l.msg === "the runner parent differs from its pin: nothing minted or dispatched");
      expect(line).toMatchObject({ level: 50, action: id, class: "parent_changed" });
      expect(shownMeta(meta).map((m) => `job "${parent}" differs from its pin: ${where}: pinned absent, now ${m}`)).toContain(line!.problem);
      expect(mints).toBe(0);
      expect(await childrenOf(parent, id)).toEqual([]);
      expect(await remote.read(`vault/actions/${id}.result.json`)).toBeUndefined();
    }, 120_000);
  });
}

describe("a parent re-registered between the pin check and the dispatch", () => {
  const parent = "runner-sops-ssh";
  const id = `race-${u}`;
  let remote: OpsRemote;
  let accessor = "";
  let result: ActionResult;

  beforeAll(async () => {
    originals.set(parent, await readParent(parent));
    remote = await createOpsRemote({ "formulas/noop.sh": "#!/usr/bin/env bash\necho noop\n", [`vault/actions/${id}.toml`]: action(id, '["sops", "ssh"]') });
    // the attacker wins the race: the parent changes after check_parent, while the token is minted
    const d = await createTestDispatcher(remote.remote, { DISPATCHER_SECRETS: SECRET }, (v: VaultPort) => ({
      ...v,
      async mintWrapped(req) {
        const wrapped = await v.mintWrapped(req);
        accessor = wrapped.accessor;
        await overrideMeta(parent, "task");
        return wrapped;
      },
    }));
    await d.loop.once();
    result = JSON.parse((await remote.read(`vault/actions/${id}.result.json`))!) as ActionResult;
  }, 180_000);

  afterAll(async () => {
    await register(originals.get(parent)!);
    await remote?.cleanup();
  });

  it("fails the action as tampered, naming the field, and revokes its token without following the child", async () => {
    const [child] = await childrenOf(parent, id);
    expect(result).toMatchObject({ status: "failed", error: { class: "tampered" } });
    const meta = { commit: evilCommit, ops_repo: runnerRemoteFor(evil.remote) };
    expect(shownMeta(meta).map((m) => `child ${child!} of job "${parent}" differs from its pin: TaskGroups[runner].Tasks[runner].Meta: pinned absent, now ${m}`)).toContain(result.error?.message);
    expect(result.logs ?? "").not.toContain("evil code ran");
    expect(accessor).not.toBe("");
    expect(await lookupAccessor(accessor)).toBe(400);
  });
});
