// The runner's verdict is the runner's: a hostile formula prints the runner's own failure line
// (every class, the old unsigned form and the signed form with a guessed nonce) as its last
// stderr line and exits with the runner's codes, 90 and 124. Each must be recorded as the
// formula's own failure: one attempt, one child, no retry, no runner class.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { retryTable, type FailureClass } from "../../dispatcher/errors.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { childrenOf, createTestDispatcher, uniq } from "../helpers/stack.js";

const u = uniq();
const CLASSES = Object.keys(retryTable) as FailureClass[];
/** each class once, with 90 and 124 in turn; `lost` with both (it used to buy a second run with a new token) */
const CASES: { id: string; cls: FailureClass; code: number; signed: boolean }[] = [
  ...CLASSES.map((cls, i) => ({ id: `forge-${cls.replace(/_/g, "-")}-${u}`, cls, code: i % 2 === 0 ? 90 : 124, signed: i % 3 === 0 })),
  { id: `forge-lost124-${u}`, cls: "lost" as const, code: 124, signed: true },
];
const stealId = `forge-steal-${u}`;
let remote: OpsRemote;

// the formula runs as the runner's user: it looks for the nonce in the runner's memory
// (/proc/1/mem, as a debugger would) and signs a forged timeout verdict with it
const steal = `const fs = require("fs");
let nonce = "00000000000000000000000000000000";
try {
  const mem = fs.openSync("/proc/1/mem", "r");
  for (const line of fs.readFileSync("/proc/1/maps", "utf8").split("\\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) rw-p/.exec(line);
    if (!m) continue;
    const from = parseInt(m[1], 16), size = Math.min(parseInt(m[2], 16) - from, 64 << 20);
    const buf = Buffer.alloc(size);
    try { fs.readSync(mem, buf, 0, size, from); } catch { continue; }
    const found = /"verdict":"([0-9a-f]{32})"/.exec(buf.toString("latin1"));
    if (found) { nonce = found[1]; console.log("found the nonce"); break; }
  }
} catch (e) { console.log("/proc/1/mem: " + e.code); }
console.error("[runner] error timeout: stolen [verdict " + nonce + "]");
process.exit(124);
`;

// context = "<class> <code> <signed>": the formula forges what it is told to
const forge = `#!/usr/bin/env bash
read -r cls code signed < <(sed -n 's/^context = "\\(.*\\)"$/\\1/p' "$VAULT_ACTION_TOML")
echo "doing some work"
if [ "$signed" = yes ]; then
  echo "[runner] error $cls: forged by the formula [verdict 0123456789abcdef0123456789abcdef]" >&2
else
  echo "[runner] error $cls: forged by the formula" >&2
fi
exit "$code"
`;

async function result(id: string): Promise<ActionResult> {
  const text = await remote.read(`vault/actions/${id}.result.json`);
  if (!text) throw new Error(`no result for ${id}`);
  return JSON.parse(text) as ActionResult;
}

beforeAll(async () => {
  remote = await createOpsRemote({
    "formulas/forge.sh": forge,
    "formulas/steal.js": steal,
    "formulas/steal.sh": '#!/usr/bin/env bash\nexec node "$OPS_REPO_DIR/formulas/steal.js"\n',
    [`vault/actions/${stealId}.toml`]: `id = "${stealId}"\nformula = "steal"\ncontext = "c"\nsecrets = []\n`,
    ...Object.fromEntries(CASES.map((c) => [`vault/actions/${c.id}.toml`, `id = "${c.id}"\nformula = "forge"\ncontext = "${c.cls} ${c.code} ${c.signed ? "yes" : "no"}"\nsecrets = []\n`])),
  });
  const d = await createTestDispatcher(remote.remote, { DISPATCHER_MAX_IN_FLIGHT: "6" });
  await d.loop.once();
}, 300_000);

afterAll(async () => {
  await remote?.cleanup();
});

describe("a formula forging the runner's verdict", () => {
  it("is recorded as the formula's own failure for every class and both runner exit codes: one attempt, one child", async () => {
    const seen: Record<string, unknown> = {};
    const want: Record<string, unknown> = {};
    for (const c of CASES) {
      const r = await result(c.id);
      seen[c.id] = { status: r.status, exit_code: r.exit_code, error: r.error, attempts: r.attempts, children: (await childrenOf("runner", c.id)).length };
      want[c.id] = { status: "failed", exit_code: c.code, error: { class: "agent", message: `formula exited with code ${c.code}` }, attempts: 1, children: 1 };
    }
    expect(seen).toEqual(want);
  });

  it("cannot read the nonce from the runner's memory: the runner is not dumpable (its binary is not readable by the task user)", async () => {
    const r = await result(stealId);
    expect({ status: r.status, error: r.error, attempts: r.attempts, children: (await childrenOf("runner", stealId)).length }).toEqual({
      status: "failed",
      error: { class: "agent", message: "formula exited with code 124" },
      attempts: 1,
      children: 1,
    });
    expect(r.logs.split("\n")[0]).toBe("/proc/1/mem: EACCES");
  });

  it("keeps the forged line in the log, as the formula printed it", async () => {
    const r = await result(CASES[0]!.id);
    expect(r.logs).toContain(`[runner] error ${CASES[0]!.cls}: forged by the formula`);
  });
});
