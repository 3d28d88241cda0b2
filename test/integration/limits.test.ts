// The limits replicas share (core/limits.ts) as an operator sees them: `plan` and `status` name
// the replica whose lock or slots make an action wait, read from the real ledger's places.
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { cliEnv, runCli } from "../helpers/cli.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { dispatcherNomad, uniq } from "../helpers/stack.js";
import { createNomadLedger } from "../../dispatcher/nomad/ledger.js";
import { createNomadPlaces } from "../../dispatcher/nomad/places.js";

let remote: OpsRemote | undefined;
afterAll(async () => {
  await remote?.cleanup();
});

it("plan and status say which action waits for another replica's lock or slots, and who holds them", async () => {
  const tag = `lim-${uniq()}`;
  const [a1, a2, b1] = [`${tag}-a1`, `${tag}-a2`, `${tag}-b1`];
  // running under another replica (pending in the repo until their results land)
  const [z1, z2] = [`${tag}-z1`, `${tag}-z2`];
  const action = (id: string, formula: string) => `id = "${id}"\nformula = "${formula}"\ncontext = "limits"\nsecrets = []\n`;
  remote = await createOpsRemote({
    "formulas/release.sh": "#!/usr/bin/env bash\necho release\n",
    "formulas/build.sh": "#!/usr/bin/env bash\necho build\n",
    [`vault/actions/${a1}.toml`]: action(a1, "release"),
    [`vault/actions/${a2}.toml`]: action(a2, "release"),
    [`vault/actions/${b1}.toml`]: action(b1, "build"),
    [`vault/actions/${z1}.toml`]: action(z1, "release"),
    [`vault/actions/${z2}.toml`]: action(z2, "build"),
  });
  const prefix = `dispatcher/${tag}`;
  const config = join(await mkdtemp(join(tmpdir(), "limits-")), "dispatcher.toml");
  await writeFile(config, '[limits]\nserialize_by = "formula"\nmax_in_flight = 2\n');
  const env = await cliEnv(remote.remote, { DISPATCHER_LEDGER_PREFIX: prefix, DISPATCHER_CONFIG: config });
  // another replica, alive, holds release's lock and one slot, with the dispatcher's own token
  const places = createNomadPlaces(dispatcherNomad(), prefix);
  await createNomadLedger(dispatcherNomad(), prefix).heartbeat("replica-x", new Date());
  const since = new Date().toISOString();
  const until = new Date(Date.now() + 3_600_000).toISOString();
  expect(await places.create("lock/formula:release", { owner: "replica-x", session: "s", action: z1, since, until })).toBeDefined();
  expect(await places.create("slot/0", { owner: "replica-x", session: "s", action: z1, since, until })).toBeDefined();

  const plan = await runCli(["plan"], env);
  expect(plan.stderr).toBe("");
  const lines = plan.stdout.split("\n");
  expect(lines).toContain(`${a1}: waits: waiting for the lock formula=release held by replica replica-x (action ${z1})`);
  expect(lines).toContain(`${a2}: waits: serialized behind another action with formula:release`);
  expect(lines.some((l) => l.startsWith(`${b1}: dispatch job runner`))).toBe(true);

  // the second slot too: nothing may start
  expect(await places.create("slot/1", { owner: "replica-x", session: "s", action: z2, since, until })).toBeDefined();
  const full = (await runCli(["plan"], env)).stdout.split("\n");
  expect(full).toContain(`${b1}: waits: waiting for a slot: max in flight (2) reached across replicas, held by replica-x (2)`);

  const status = await runCli(["status"], env);
  expect(status.code).toBe(0);
  const tail = status.stdout.slice(status.stdout.indexOf("shared limits")).split("\n");
  expect(tail).toEqual([
    "shared limits (max in flight 2, serialize_by formula):",
    `  lock/formula:release held by replica-x for ${z1} since ${since}`,
    `  slot/0 held by replica-x for ${z1} since ${since}`,
    `  slot/1 held by replica-x for ${z2} since ${since}`,
    `  ${a1}: waiting for the lock formula=release held by replica replica-x (action ${z1})`,
    `  ${b1}: waiting for a slot: max in flight (2) reached across replicas, held by replica-x (2)`,
    "",
  ]);
});
