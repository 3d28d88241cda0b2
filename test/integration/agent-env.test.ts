// The exec driver hands the Nomad agent's environment to every task, and a formula runs as the
// same user as its runner, so it could read the runner's environment in /proc/1/environ. The
// agents start with PATH, HOME and LANG only, and the runner is not dumpable (its node is not
// readable by the task user), so /proc/1/environ is closed; the formula's own environment is the
// runner's allowlist: nothing of the shell that started the stack (a canary exported there,
// DEV_*, a token) shows.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createTestDispatcher, uniq } from "../helpers/stack.js";

const root = new URL("../..", import.meta.url).pathname;
const u = uniq();
const id = `envprobe-${u}`;
let remote: OpsRemote;

const probe = `#!/usr/bin/env bash
if [ -r /proc/1/environ ] && cat /proc/1/environ >/dev/null 2>&1; then echo "runner: $(tr '\\0' '\\n' < /proc/1/environ | cut -d= -f1 | sort | tr '\\n' ' ')"; else echo "runner: unreadable"; fi
echo "own: $(env | cut -d= -f1 | sort | tr '\\n' ' ')"
`;

const names = (line: string | undefined) => (line ?? "").replace(/^\w+: /, "").trim().split(" ").filter(Boolean);

beforeAll(async () => {
  remote = await createOpsRemote({
    "formulas/envprobe.sh": probe,
    [`vault/actions/${id}.toml`]: `id = "${id}"\nformula = "envprobe"\ncontext = "hostile"\nsecrets = []\n`,
  });
  await (await createTestDispatcher(remote.remote)).loop.once();
}, 120_000);

afterAll(async () => {
  await remote?.cleanup();
});

describe("the agents' environment", () => {
  it("the stack starts the Nomad agent with PATH, HOME and LANG only", async () => {
    const pid = (await readFile(join(root, ".dev/nomad.pid"), "utf8")).trim();
    const env = (await readFile(`/proc/${pid}/environ`, "utf8")).split("\0").filter(Boolean).map((kv) => kv.slice(0, kv.indexOf("=")));
    expect(env.sort()).toEqual(["HOME", "LANG", "PATH"]);
  });

  it("a formula sees nothing of the shell that started the stack, in the runner's environment or its own", async () => {
    const r = JSON.parse((await remote.read(`vault/actions/${id}.result.json`))!) as ActionResult;
    expect(r.status).toBe("succeeded");
    const [runnerLine, ownLine] = r.logs.split("\n");
    // the runner is not dumpable (its node is not readable by the task user: scripts/stack.sh), so /proc/1/environ is closed
    expect(runnerLine).toBe("runner: unreadable");
    // the formula's own environment is the runner's allowlist (runner/formula.ts formulaEnv)
    // (DISPATCHER_OUTCOME_FILE: where a formula may write its verdict word, runner/main.ts)
    expect(names(ownLine)).toEqual(["ACTION_ID", "DISPATCHER_OUTCOME_FILE", "HOME", "LANG", "OPS_REPO_DIR", "PATH", "PWD", "SHLVL", "VAULT_ACTION_TOML", "VAULT_ADDR", "_"]);
  });
});
