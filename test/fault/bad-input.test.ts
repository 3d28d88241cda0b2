// A corpus of hostile action files: each gets an invalid result naming its file and problem,
// and the loop goes on to run the valid action beside them.
import { afterAll, expect, it } from "vitest";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createTestDispatcher, uniq } from "../helpers/stack.js";
import type { ActionResult } from "../../dispatcher/core/result.js";

const u = uniq();
const ok = (id: string, extra = "") => `id = "${id}"\nformula = "noop"\ncontext = "bad input"\nsecrets = []\n${extra}`;
const BOM = "\uFEFF";

/** name (without .toml) → content; the id inside is the name unless the case is about ids */
function corpus(): Record<string, string | Buffer> {
  const c: Record<string, string | Buffer> = {};
  const add = (name: string, content: string | Buffer) => (c[`${name}-${u}`] = content);
  const withId = (name: string, body: string) => add(name, `id = "${name}-${u}"\n${body}`);
  // malformed TOML
  withId("unclosed-string", 'formula = "noop\ncontext = "x"\nsecrets = []\n');
  withId("missing-equals", 'formula "noop"\ncontext = "x"\nsecrets = []\n');
  withId("bad-table", 'formula = "noop"\n[unclosed\ncontext = "x"\n');
  withId("empty-value", "formula = \ncontext = \"x\"\nsecrets = []\n");
  withId("open-array", 'formula = "noop"\ncontext = "x"\nsecrets = ["A"\n');
  withId("bad-escape", 'formula = "noop"\ncontext = "bad \\q escape"\nsecrets = []\n');
  withId("bad-date", 'formula = "noop"\ncontext = "x"\nsecrets = []\nmodel = 2024-13-45\n');
  withId("trailing-garbage", 'formula = "noop" junk\ncontext = "x"\nsecrets = []\n');
  withId("key-with-space", 'formula = "noop"\ncon text = "x"\nsecrets = []\n');
  withId("only-garbage", "\u0000\u0001\u0002 not toml at all {{{");
  // wrong types
  c[`id-number-${u}`] = 'id = 1\nformula = "noop"\ncontext = "x"\nsecrets = []\n';
  withId("formula-array", 'formula = ["noop"]\ncontext = "x"\nsecrets = []\n');
  withId("context-number", 'formula = "noop"\ncontext = 3\nsecrets = []\n');
  withId("secrets-string", 'formula = "noop"\ncontext = "x"\nsecrets = "A"\n');
  withId("secrets-numbers", 'formula = "noop"\ncontext = "x"\nsecrets = [1, 2]\n');
  withId("secret-lowercase", 'formula = "noop"\ncontext = "x"\nsecrets = ["github_token"]\n');
  withId("timeout-string", 'formula = "noop"\ncontext = "x"\nsecrets = []\ntimeout_minutes = "ten"\n');
  withId("timeout-zero", 'formula = "noop"\ncontext = "x"\nsecrets = []\ntimeout_minutes = 0\n');
  withId("timeout-negative", 'formula = "noop"\ncontext = "x"\nsecrets = []\ntimeout_minutes = -5\n');
  withId("timeout-fraction", 'formula = "noop"\ncontext = "x"\nsecrets = []\ntimeout_minutes = 1.5\n');
  withId("timeout-huge", 'formula = "noop"\ncontext = "x"\nsecrets = []\ntimeout_minutes = 99999999999999999999\n');
  withId("mounts-string", 'formula = "noop"\ncontext = "x"\nsecrets = []\nmounts = "ssh"\n');
  withId("mount-unknown", 'formula = "noop"\ncontext = "x"\nsecrets = []\nmounts = ["nfs"]\n');
  withId("dispatch-mode", 'formula = "noop"\ncontext = "x"\nsecrets = []\ndispatch_mode = "yolo"\n');
  withId("blast-radius", 'formula = "noop"\ncontext = "x"\nsecrets = []\nblast_radius = "huge"\n');
  withId("kind-unknown", 'formula = "noop"\ncontext = "x"\nsecrets = []\nkind = "daemon"\n');
  withId("tools-string", 'formula = "noop"\ncontext = "x"\nsecrets = []\ntools = "git"\n');
  withId("model-number", 'formula = "noop"\ncontext = "x"\nsecrets = []\nmodel = 5\n');
  // missing or empty fields
  withId("no-context", 'formula = "noop"\nsecrets = []\n');
  withId("no-secrets", 'formula = "noop"\ncontext = "x"\n');
  withId("empty-context", 'formula = "noop"\ncontext = "   "\nsecrets = []\n');
  withId("no-formula", 'context = "x"\nsecrets = []\n');
  withId("formula-missing", 'formula = "does-not-exist"\ncontext = "x"\nsecrets = []\n');
  add("empty-file", "");
  // ids and names
  add("id-mismatch", ok("someone-else"));
  c[`Upper-Case-${u}`] = ok(`Upper-Case-${u}`);
  c[`-leading-dash-${u}`] = ok(`-leading-dash-${u}`);
  c[`${"x".repeat(70)}-${u}`] = ok(`${"x".repeat(70)}-${u}`);
  c[`has space-${u}`] = ok(`has space-${u}`);
  c[`ünïcode-${u}`] = ok(`ünïcode-${u}`);
  c[`..-${u}`] = ok(`..-${u}`).replace(`id = "..-${u}"`, 'id = "../../etc/passwd"');
  // duplicate keys
  withId("dup-key", 'formula = "noop"\nformula = "noop"\ncontext = "x"\nsecrets = []\n');
  withId("dup-secrets", 'formula = "noop"\ncontext = "x"\nsecrets = []\nsecrets = ["A"]\n');
  add("dup-id", `id = "dup-id-${u}"\nid = "dup-id-${u}"\nformula = "noop"\ncontext = "x"\nsecrets = []\n`);
  // BOM and CRLF (legal TOML) carrying other faults
  add("bom-crlf-unknown", `${BOM}${ok(`bom-crlf-unknown-${u}`, 'colour = "blue"\n')}`.replace(/\n/g, "\r\n"));
  add("bom-crlf-mismatch", `${BOM}${ok("not-this")}`.replace(/\n/g, "\r\n"));
  add("lone-cr", ok(`lone-cr-${u}`).replace(/\n/g, "\r"));
  // unknown keys
  withId("unknown-colour", 'formula = "noop"\ncontext = "x"\nsecrets = []\ncolour = "blue"\n');
  withId("unknown-case", 'formula = "noop"\ncontext = "x"\nSecrets = []\n');
  withId("unknown-table", 'formula = "noop"\ncontext = "x"\nsecrets = []\n[extra]\na = 1\n');
  withId("sidecar-no-issue", 'formula = "triage"\ncontext = "x"\nsecrets = []\nkind = "sidecar"\n');
  withId("runner-with-issue", 'formula = "noop"\ncontext = "x"\nsecrets = []\nissue = 4\n');
  // sizes and bytes
  withId("huge", `formula = "noop"\ncontext = "${"A".repeat(70_000)}"\nsecrets = []\n`);
  add("invalid-utf8", Buffer.concat([Buffer.from(`id = "invalid-utf8-${u}"\nformula = "noop"\ncontext = "`), Buffer.from([0xff, 0xfe, 0xc0, 0xaf, 0x80]), Buffer.from('"\nsecrets = []\n')]));
  return c;
}

let remote: OpsRemote | undefined;

afterAll(async () => {
  await remote?.cleanup();
});

it("gives every file of a 50+ hostile corpus an invalid result naming it, and still runs the valid action", async () => {
  const files = corpus();
  const names = Object.keys(files);
  expect(names.length).toBeGreaterThanOrEqual(50);
  const valid = `valid-${u}`;
  remote = await createOpsRemote({
    "formulas/noop.sh": "#!/usr/bin/env bash\necho noop ok\n",
    "formulas/triage.sh": "#!/usr/bin/env bash\necho triage\n",
    ...Object.fromEntries(Object.entries(files).map(([name, content]) => [`vault/actions/${name}.toml`, content])),
    [`vault/actions/${valid}.toml`]: ok(valid),
  });
  const d = await createTestDispatcher(remote.remote);
  await d.loop.once();
  const problems: string[] = [];
  for (const name of names) {
    const text = await remote.read(`vault/actions/${name}.result.json`);
    if (!text) {
      problems.push(`${name}: no result`);
      continue;
    }
    const r = JSON.parse(text) as ActionResult;
    if (r.status !== "invalid" || r.error?.class !== "invalid") problems.push(`${name}: status ${r.status}`);
    if (!r.error?.message.startsWith(`vault/actions/${name}.toml: `)) problems.push(`${name}: message does not name the file: ${r.error?.message}`);
  }
  expect(problems).toEqual([]);
  expect(JSON.parse((await remote.read(`vault/actions/${valid}.result.json`))!)).toMatchObject({ status: "succeeded", exit_code: 0 });
  // a second pass finds nothing left and does not fail
  await expect(d.loop.pass()).resolves.toMatchObject({ started: [], refused: [] });
}, 300_000);

it("gives a 280 MB action file (a few MB on the wire) an invalid result without reading it, and runs the next action", async () => {
  const huge = `huge-${u}`;
  const next = `after-huge-${u}`;
  const big = await createOpsRemote({
    "formulas/noop.sh": "#!/usr/bin/env bash\necho noop ok\n",
    [`vault/actions/${huge}.toml`]: Buffer.alloc(280 * 1024 * 1024, "A"),
    [`vault/actions/${next}.toml`]: ok(next),
  });
  try {
    const d = await createTestDispatcher(big.remote);
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      await d.loop.once();
    } finally {
      clearInterval(sampler);
    }
    const r = JSON.parse((await big.read(`vault/actions/${huge}.result.json`))!) as ActionResult;
    expect(r).toMatchObject({ status: "invalid", error: { class: "invalid", message: `vault/actions/${huge}.toml: file is 293601280 bytes; at most 65536 (64 KiB) allowed` } });
    expect(JSON.parse((await big.read(`vault/actions/${next}.result.json`))!)).toMatchObject({ status: "succeeded", exit_code: 0 });
    // reading the file would hold its 280 MiB at least once
    expect((peak - baseline) / 2 ** 20).toBeLessThan(100);
  } finally {
    await big.cleanup();
  }
}, 300_000);
