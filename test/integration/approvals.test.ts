// Who may trigger what, on the real stack: with require_signed, only actions (and formulas) last
// changed by SSH-signed commits of allowed keys run; with approvals = 2, two distinct allowed
// signers must approve the very content. Anything else is rejected before a token is minted.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEnv, runCli } from "../helpers/cli.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createSigners, type Signers } from "../helpers/signers.js";
import { childrenOf, createTestDispatcher, runnerRemoteFor } from "../helpers/stack.js";
import { uniq } from "../helpers/stack.js";

const u = uniq();
const ids = { unsigned: `unsigned-${u}`, mallory: `mallory-${u}`, formula: `formula-${u}`, ok: `ok-${u}`, one: `one-${u}`, two: `two-${u}` };
const action = (id: string, formula: string, secrets = "[]") => `id = "${id}"\nformula = "${formula}"\ncontext = "c"\nsecrets = ${secrets}\n`;
let keys: Signers;
let single: OpsRemote;
let double: OpsRemote;
const minted: string[] = [];
const commits: Record<string, string> = {};

beforeAll(async () => {
  keys = createSigners(["alice", "bob", "mallory"], ["alice", "bob"]);
  const alice = { signingKey: keys.key("alice") };

  single = await createOpsRemote({ "README.md": "ops\n" });
  await single.commit({ "formulas/hello.sh": "#!/usr/bin/env bash\necho hello\n", "formulas/changed.sh": "#!/usr/bin/env bash\necho v1\n" }, "formulas", alice);
  // what a hostile formula (or anyone who can push) would commit: unsigned, asking for a secret
  commits.unsigned = await single.commit({ [`vault/actions/${ids.unsigned}.toml`]: action(ids.unsigned, "hello", '["DEMO_TOKEN"]') }, "sneak in");
  commits.mallory = await single.commit({ [`vault/actions/${ids.mallory}.toml`]: action(ids.mallory, "hello") }, "mallory", { signingKey: keys.key("mallory") });
  await single.commit({ [`vault/actions/${ids.formula}.toml`]: action(ids.formula, "changed") }, "signed action", alice);
  commits.formula = await single.commit({ "formulas/changed.sh": "#!/usr/bin/env bash\necho v2 unsigned\n" }, "tamper with a formula");
  await single.commit({ [`vault/actions/${ids.ok}.toml`]: action(ids.ok, "hello") }, "signed action", alice);

  double = await createOpsRemote({ "README.md": "ops\n" });
  await double.commit({ "formulas/hello.sh": "#!/usr/bin/env bash\necho hello\n" }, "formulas", alice);
  await double.commit({ [`vault/actions/${ids.one}.toml`]: action(ids.one, "hello"), [`vault/actions/${ids.two}.toml`]: action(ids.two, "hello") }, "two actions", alice);
  await double.commit({}, "approve", { signingKey: keys.key("bob"), trailers: [`Approves: vault/actions/${ids.two}.toml@${await double.blob(`vault/actions/${ids.two}.toml`)}`] });

  const count = (v: Parameters<NonNullable<Parameters<typeof createTestDispatcher>[2]>>[0]) => ({
    ...v,
    mintWrapped: (req: Parameters<typeof v.mintWrapped>[0]) => (minted.push(req.meta.action ?? "?"), v.mintWrapped(req)),
  });
  const signed = { DISPATCHER_REQUIRE_SIGNED: "true", DISPATCHER_ALLOWED_SIGNERS: keys.allowedSigners, DISPATCHER_SECRETS: "DEMO_TOKEN" };
  await (await createTestDispatcher(single.remote, signed, count)).loop.once();
  await (await createTestDispatcher(double.remote, { ...signed, DISPATCHER_APPROVALS: "2" }, count)).loop.once();
}, 180_000);

afterAll(async () => {
  await single?.cleanup();
  await double?.cleanup();
  keys?.cleanup();
});

describe("require_signed", () => {
  it("rejects an unsigned action (a formula's own push) with no token minted and no job", async () => {
    expect(await single.result(ids.unsigned)).toMatchObject({
      status: "rejected",
      error: {
        class: "unapproved",
        message: `vault/actions/${ids.unsigned}.toml: last changed by commit ${commits.unsigned!.slice(0, 12)}, which is not signed (require_signed: sign it with a key in ${keys.allowedSigners})`,
      },
    });
    expect(minted).not.toContain(ids.unsigned);
    expect(await childrenOf("runner", ids.unsigned)).toEqual([]);
  });

  it("rejects an action signed by a key that is not allowed", async () => {
    const r = await single.result(ids.mallory);
    expect(r.status).toBe("rejected");
    expect(r.error?.message).toMatch(
      new RegExp(`^vault/actions/${ids.mallory}\\.toml: last changed by commit ${commits.mallory!.slice(0, 12)}, signed by key SHA256:\\S+, which is not in ${keys.allowedSigners}$`),
    );
  });

  it("rejects a signed action whose formula an unsigned commit changed since", async () => {
    expect((await single.result(ids.formula)).error).toEqual({
      class: "unapproved",
      message: `vault/actions/${ids.formula}.toml: its formula formulas/changed.sh was last changed by commit ${commits.formula!.slice(0, 12)}, which is not signed (require_signed: sign it with a key in ${keys.allowedSigners})`,
    });
  });

  it("runs a signed action and records who signed it", async () => {
    expect(await single.result(ids.ok)).toMatchObject({ status: "succeeded", logs: "hello", approved_by: ["alice@example.test"] });
  });
});

describe("approvals = 2", () => {
  it("runs an action approved by a second allowed signer, recording both", async () => {
    expect(await double.result(ids.two)).toMatchObject({ status: "succeeded", approved_by: ["alice@example.test", "bob@example.test"] });
  });

  it("rejects one with a single signer, saying what is missing", async () => {
    const blob = await double.blob(`vault/actions/${ids.one}.toml`);
    expect((await double.result(ids.one)).error).toEqual({
      class: "unapproved",
      message: `vault/actions/${ids.one}.toml: 1 of 2 approvals (alice@example.test); another allowed signer approves it with a signed commit carrying the trailer "Approves: vault/actions/${ids.one}.toml@${blob}"`,
    });
  });
});

describe("plan with require_signed", () => {
  it("shows the loop's verdicts: an unsigned action refused with its message, a signed one with its signer", async () => {
    const alice = { signingKey: keys.key("alice") };
    const planned = await createOpsRemote({ "README.md": "ops\n" });
    try {
      const signed = `signed-${u}`;
      const unsigned = `unsigned-plan-${u}`;
      await planned.commit({ "formulas/hello.sh": "#!/usr/bin/env bash\necho hello\n" }, "formulas", alice);
      await planned.commit({ [`vault/actions/${signed}.toml`]: action(signed, "hello") }, "signed action", alice);
      const tip = await planned.commit({ [`vault/actions/${unsigned}.toml`]: action(unsigned, "hello") }, "sneak in");
      const run = await runCli(["plan"], await cliEnv(planned.remote, { DISPATCHER_REQUIRE_SIGNED: "true", DISPATCHER_ALLOWED_SIGNERS: keys.allowedSigners }));
      expect(run.stderr).toBe("");
      expect(run.stdout).toBe(
        [
          `plan for ${tip.slice(0, 12)} (nothing is dispatched):`,
          `${signed}: dispatch job runner (task runner), timeout 60 min`,
          "  meta:",
          `    action_id=${signed}`,
          `    action_path=vault/actions/${signed}.toml`,
          `    action_sha=${await planned.blob(`vault/actions/${signed}.toml`)}`,
          "    attempt=1",
          `    commit=${tip}`,
          "    formula=hello",
          "    kv_mount=kv",
          `    ops_repo=${runnerRemoteFor(planned.remote)}`,
          "    timeout_minutes=60",
          "  token: none (no secrets)",
          "  mounts: none",
          "  approved by: alice@example.test",
          `${unsigned}: refused (unapproved)`,
          `  vault/actions/${unsigned}.toml: last changed by commit ${tip.slice(0, 12)}, which is not signed (require_signed: sign it with a key in ${keys.allowedSigners})`,
          "1 to dispatch, 0 waiting, 1 refused",
          "",
        ].join("\n"),
      );
      expect(run.code).toBe(0);
    } finally {
      await planned.cleanup();
    }
  });
});
