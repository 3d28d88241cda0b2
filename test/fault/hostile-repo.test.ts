// Whatever is pushed to the ops repo, the dispatcher keeps working: each case of a corpus built by
// git plumbing (test/helpers/plumbing.ts: names, tree shapes, sizes no working tree holds) sits
// beside an ordinary action, which gets its result, and one committed after it gets its result
// too; `plan` and `status` name what was ignored or refused. Prints the first pass's CPU and the
// peak RSS per case.
import { readFileSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { cliEnv, runCli } from "../helpers/cli.js";
import { childrenOf, createTestDispatcher, uniq } from "../helpers/stack.js";
import { createPlumbedRemote, treeBomb, type Entry, type PlumbedRemote } from "../helpers/plumbing.js";
import { createSigners } from "../helpers/signers.js";
import { createSshKey } from "../helpers/sshsig.js";
import { SIGNATURE_CHECKS_PER_PASS, signatureChecks } from "../../dispatcher/opsrepo/provenance.js";

const u = uniq();
const ok = (id: string, extra = "") => `id = "${id}"\nformula = "noop"\ncontext = "hostile repo"\nsecrets = []\n${extra}`;

/** growth of this process's RSS over the case, the dispatcher running in it (MB) */
const RSS_BOUND_MB = 200;
/** CPU of the first pass over the hostile tree, this process's own (ms) */
const PASS_CPU_BOUND_MS = 5_000;

interface Case {
  name: string;
  /** entries added to vault/actions beside the ordinary action */
  actions?: (r: PlumbedRemote) => Entry[];
  /** entries added to formulas/ beside noop.sh */
  formulas?: (r: PlumbedRemote) => Entry[];
  /** what `plan` and `status` say of what is ignored, each line as printed (the invalid ones are status rows) */
  named: string[];
  /** entries ignored, by metric reason (dispatcher_repo_ignored_entries) */
  ignored?: Record<string, number>;
  /** ids with an invalid result naming their file and this problem */
  invalid?: Record<string, string>;
  /**
   * The runner cannot check out this tree, so every action at such a commit fails with this
   * message (the dispatcher records it and goes on). Not the dispatcher's to fix: git refuses a
   * tree holding `..` (infra), and the runner refuses a tree bomb before git's checkout would index
   * every path of it (invalid, the runner's own bound on the paths a tree lists).
   */
  runnerFails?: { class: "infra" | "invalid"; message: (commit: string) => string };
  /** ids held back, never dispatched, because their result's path is taken: the line plan and status print for each */
  unwritable?: Record<string, string>;
}

const file = (r: PlumbedRemote, name: string | Buffer, content: string | Buffer = ok("x")): Entry => ({ mode: "100644", name, sha: r.blob(content) });
const ignoredLine = (path: string, reason: string) => `ignored: ${JSON.stringify(path)}: ${reason}`;
const CONTROL = "its name has a control character (newline, tab, …)";
/** the runner's refusal of a tree bomb at `commit`, before git's checkout would index every path */
const bombRefusal = (commit: string) => `checkout of ${commit} refused: its tree lists more than 200000 paths (a tree bomb: a few KB of nested trees naming the same blobs); remove it from the ops repo`;

const CASES: Case[] = [
  { name: "newline", actions: (r) => [file(r, `nl-\n-${u}.toml`)], named: [ignoredLine(`vault/actions/nl-\n-${u}.toml`, CONTROL)], ignored: { control_character: 1 } },
  { name: "tab", actions: (r) => [file(r, `tab-\t-${u}.toml`)], named: [ignoredLine(`vault/actions/tab-\t-${u}.toml`, CONTROL)], ignored: { control_character: 1 } },
  {
    name: "backslash",
    actions: (r) => [file(r, `bs-\\-${u}.toml`)],
    named: [],
    invalid: { [`bs-\\-${u}`]: `file name ${JSON.stringify(`bs-\\-${u}.toml`)} does not give a valid action id` },
  },
  {
    name: "quotes",
    actions: (r) => [file(r, `q-"'-${u}.toml`)],
    named: [],
    invalid: { [`q-"'-${u}`]: `file name ${JSON.stringify(`q-"'-${u}.toml`)} does not give a valid action id` },
  },
  {
    name: "dot-dot",
    // "...toml" is the action "..": its result is "...result.json", beside it
    actions: (r) => [file(r, ".."), file(r, "...toml")],
    named: [ignoredLine("vault/actions/..", "not <id>.toml, <id>.result.json or <id>.log")],
    ignored: { not_in_contract: 1 },
    invalid: { "..": 'file name "...toml" does not give a valid action id' },
    runnerFails: { class: "infra", message: () => "git checkout failed in /local/ops: error: invalid path 'vault/actions/..'" },
  },
  {
    name: "leading-dash",
    actions: (r) => [file(r, `--output=x-${u}.toml`, ok(`--output=x-${u}`))],
    named: [],
    invalid: { [`--output=x-${u}`]: `file name ${JSON.stringify(`--output=x-${u}.toml`)} does not give a valid action id` },
  },
  {
    name: "non-utf8",
    actions: (r) => [file(r, Buffer.concat([Buffer.from("bytes-"), Buffer.from([0xff, 0xfe]), Buffer.from(`-${u}.toml`)]))],
    named: [ignoredLine(`vault/actions/bytes-\ufffd\ufffd-${u}.toml`, "its name is not valid UTF-8")],
    ignored: { not_utf8: 1 },
  },
  {
    name: "4kb-name",
    actions: (r) => [file(r, `${"a".repeat(4096)}.toml`)],
    named: [ignoredLine(`vault/actions/${"a".repeat(4096)}.toml`, "its name is 4101 bytes long; at most 200")],
    ignored: { name_too_long: 1 },
  },
  {
    name: "bomb-actions",
    actions: (r) => [{ mode: "040000", name: "bomb", sha: treeBomb(r) }],
    named: [ignoredLine("vault/actions/bomb", "a directory, not a file")],
    ignored: { not_a_file: 1 },
    runnerFails: { class: "invalid", message: bombRefusal },
  },
  // formulas/ may hold helpers in subdirectories: a bomb there is only never walked by the dispatcher
  {
    name: "bomb-formulas",
    formulas: (r) => [{ mode: "040000", name: "bomb", sha: treeBomb(r) }],
    named: [],
    runnerFails: { class: "invalid", message: bombRefusal },
  },
  {
    name: "gitlink",
    actions: () => [
      { mode: "160000", name: `sub-${u}`, sha: "1".repeat(40) },
      { mode: "160000", name: `gl-${u}.toml`, sha: "2".repeat(40) },
    ],
    named: [ignoredLine(`vault/actions/sub-${u}`, "a submodule (gitlink), not a file")],
    ignored: { not_a_file: 1 },
    invalid: { [`gl-${u}`]: "is a submodule (gitlink), not a file" },
  },
  {
    name: "action-is-directory",
    actions: (r) => [{ mode: "040000", name: `dir-${u}.toml`, sha: r.tree([file(r, "inner.toml", ok(`dir-${u}`))]) }],
    named: [],
    invalid: { [`dir-${u}`]: "is a directory, not a file" },
  },
  {
    name: "symlink",
    actions: (r) => [{ mode: "120000", name: `ln-${u}.toml`, sha: r.blob("../../formulas/noop.sh") }],
    named: [],
    invalid: { [`ln-${u}`]: "is a symlink, not a file" },
  },
  {
    // a result's path taken by a directory or a symlink: no result could land, so the action is never run
    name: "result-path-taken",
    actions: (r) => [
      file(r, `rd-${u}.toml`, ok(`rd-${u}`)),
      { mode: "040000", name: `rd-${u}.result.json`, sha: r.tree([file(r, "x", "x\n")]) },
      file(r, `rl-${u}.toml`, ok(`rl-${u}`)),
      { mode: "120000", name: `rl-${u}.result.json`, sha: r.blob("/etc/passwd") },
    ],
    named: [ignoredLine(`vault/actions/rd-${u}.result.json`, "a directory, not a file"), ignoredLine(`vault/actions/rl-${u}.result.json`, "a symlink, not a file")],
    ignored: { not_a_file: 2 },
    unwritable: {
      [`rd-${u}`]: `unwritable: rd-${u}: its result's path "vault/actions/rd-${u}.result.json" is a directory, not a file: no result can be written there (none is ever written over), so it is not dispatched; move that entry away`,
      [`rl-${u}`]: `unwritable: rl-${u}: its result's path "vault/actions/rl-${u}.result.json" is a symlink, not a file: no result can be written there (none is ever written over), so it is not dispatched; move that entry away`,
    },
  },
  {
    name: "100k-empty-files",
    actions: (r) => {
      const empty = r.blob("");
      return Array.from({ length: 100_000 }, (_, i) => ({ mode: "100644" as const, name: `e-${String(i).padStart(6, "0")}`, sha: empty }));
    },
    named: ["ignored: 100000 entries under vault/actions"],
    ignored: { not_in_contract: 100_000 },
  },
  {
    // more pending actions than a pass reads (READS_PER_PASS = 10,000), sorted before the ordinary
    // ones: the next pass reads on at once, and every one gets its invalid result
    name: "12k-empty-actions",
    actions: (r) => {
      const empty = r.blob("");
      return Array.from({ length: 12_000 }, (_, i) => ({ mode: "100644" as const, name: `a-${String(i).padStart(5, "0")}.toml`, sha: empty }));
    },
    named: [],
    invalid: { "a-00000": "vault/actions/a-00000.toml: id: missing", "a-11999": "vault/actions/a-11999.toml: id: missing" },
  },
];

/** CPU of this process's finished children (its git ls-tree, diff-tree, …), ms: /proc/self/stat cutime + cstime, at 100 ticks a second */
function childrenCpuMs(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

const remotes: PlumbedRemote[] = [];
afterAll(async () => {
  await Promise.all(remotes.map((r) => r.cleanup()));
});

async function resultOf(r: PlumbedRemote, id: string): Promise<ActionResult | undefined> {
  const text = await r.read(`vault/actions/${id}.result.json`);
  return text === undefined ? undefined : (JSON.parse(text) as ActionResult);
}

const open: { close(): void }[] = [];
afterEach(() => {
  for (const d of open.splice(0)) d.close();
});

describe("a hostile ops repo built by plumbing", () => {
  for (const c of CASES) {
    it(`${c.name}: an action beside it and one after it get their results; plan and status name it`, async () => {
      const r = await createPlumbedRemote();
      remotes.push(r);
      const beside = `beside-${c.name}-${u}`;
      const after = `after-${c.name}-${u}`;
      const noop = { mode: "100755" as const, name: "noop.sh", sha: r.blob("#!/usr/bin/env bash\necho noop ok\n") };
      r.commit([file(r, `${beside}.toml`, ok(beside)), ...(c.actions?.(r) ?? [])], [noop, ...(c.formulas?.(r) ?? [])]);

      const d = await createTestDispatcher(r.remote);
      // fifteen dispatchers in one process: each closes its idle connections (Nomad answers 429 past 100 from one client)
      open.push(d);
      const baseline = process.memoryUsage().rss;
      let peak = baseline;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      let passCpuMs = 0;
      let gitCpuMs = 0;
      try {
        const cpu = process.cpuUsage();
        const git = childrenCpuMs();
        await d.loop.pass();
        const used = process.cpuUsage(cpu);
        passCpuMs = (used.user + used.system) / 1000;
        gitCpuMs = childrenCpuMs() - git;
        await d.loop.once();
        r.commit([file(r, `${after}.toml`, ok(after))], []);
        await d.loop.once();
      } finally {
        clearInterval(sampler);
      }
      const growthMb = (peak - baseline) / 2 ** 20;
      const [b, a] = [await resultOf(r, beside), await resultOf(r, after)];
      console.log(`fault hostile-repo ${c.name}: first pass cpu=${passCpuMs.toFixed(0)} ms (+${gitCpuMs} ms in git), peak rss=${(peak / 2 ** 20).toFixed(0)} MB (+${growthMb.toFixed(0)} MB), beside=${b?.status}, after=${a?.status}`);
      for (const res of [b, a]) {
        if (c.runnerFails) {
          expect(res).toMatchObject({ status: "failed", error: { class: c.runnerFails.class } });
          expect(res!.error!.message.startsWith(c.runnerFails.message(res!.commit)), res!.error!.message).toBe(true);
        } else expect(res).toMatchObject({ status: "succeeded", exit_code: 0 });
      }
      for (const [id, problem] of Object.entries(c.invalid ?? {})) {
        const res = await resultOf(r, id);
        expect(res, id).toMatchObject({ status: "invalid", error: { class: "invalid" } });
        expect(res!.error!.message).toContain(problem);
      }
      expect(growthMb).toBeLessThan(RSS_BOUND_MB);

      // logged when what is ignored changes, and counted
      const said = d.captured.lines.filter((l) => l.msg === "entries that are not part of the ops repo's contract are ignored (plan and status name them)");
      const metric = await d.metrics.getSingleMetric("dispatcher_repo_ignored_entries")!.get();
      const counted = Object.fromEntries(metric.values.map((v) => [v.labels.reason, v.value]));
      if (c.ignored) {
        expect(said.length).toBeGreaterThanOrEqual(1);
        expect(said[0]).toMatchObject({ level: 40, by_code: c.ignored });
        expect(counted).toEqual(c.ignored);
      } else {
        expect(said).toEqual([]);
        expect(counted).toEqual({});
      }
      expect(passCpuMs).toBeLessThan(PASS_CPU_BOUND_MS);

      // the CLI's view of it: refused ones have their result by now, ignored ones are named
      const env = await cliEnv(r.remote);
      const [plan, status] = [await runCli(["plan"], env), await runCli(["status"], env)];
      expect(plan.code, plan.stderr).toBe(0);
      expect(status.code, status.stderr).toBe(0);
      for (const line of c.named) {
        expect(plan.stdout).toContain(line);
        expect(status.stdout).toContain(line);
      }
      for (const id of Object.keys(c.invalid ?? {})) expect(status.stdout).toMatch(new RegExp(`^${id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} +- +invalid`, "m"));
      for (const [id, line] of Object.entries(c.unwritable ?? {})) {
        expect(plan.stdout).toContain(line);
        expect(status.stdout).toContain(line);
        expect(status.stdout).toMatch(new RegExp(`^${id} +- +unwritable`, "m"));
        expect(await childrenOf("runner", id), id).toEqual([]);
        // the entry at its result's path is as pushed: no result written over, through or beside it
        expect(await r.read(`vault/actions/${id}.result.json`), id).toBe(id.startsWith("rl-") ? "/etc/passwd" : undefined);
      }
    });
  }
});

/** commits of the hostile history: each claims to approve the ordinary action, so each must be checked */
const HISTORY = 10_000;

describe("a history of 10,000 commits signed by a key nobody allowed (require_signed)", () => {
  it("checks each signature once, at most a pass's budget a pass; the actions beside and after it get their results; plan names the wait", async () => {
    const r = await createPlumbedRemote();
    remotes.push(r);
    const keys = createSigners(["alice"], ["alice"]);
    try {
      const beside = `beside-history-${u}`;
      const after = `after-history-${u}`;
      const noop = { mode: "100755" as const, name: "noop.sh", sha: r.blob("#!/usr/bin/env bash\necho noop ok\n") };
      const action = file(r, `${beside}.toml`, ok(beside));
      r.commit([action], [noop], "add an action", keys.key("alice"));
      const t0 = Date.now();
      r.signedHistory(HISTORY, createSshKey(), `Approves: vault/actions/${beside}.toml@${action.sha}`);
      console.log(`fault hostile-repo history: ${HISTORY} signed commits written in ${Date.now() - t0} ms`);
      const env = { DISPATCHER_REQUIRE_SIGNED: "true", DISPATCHER_ALLOWED_SIGNERS: keys.allowedSigners };

      // a plan is a pass: it checks its budget, then says the action waits for the next ones
      const cli = await cliEnv(r.remote, env);
      const plan = await runCli(["plan"], cli);
      expect(plan.code, plan.stderr).toBe(0);
      expect(plan.stdout).toContain(
        `commit signatures: this pass checked the ${SIGNATURE_CHECKS_PER_PASS} it may (approvals.signature_checks_per_pass); ${HISTORY + 1 - SIGNATURE_CHECKS_PER_PASS} more signed commits of this history are checked by the next passes, each once`,
      );

      const d = await createTestDispatcher(r.remote, env);
      open.push(d);
      const passes: { checks: number; cpuMs: number; gitCpuMs: number; deferred: number }[] = [];
      for (;;) {
        const [checks, cpu, git] = [signatureChecks(), process.cpuUsage(), childrenCpuMs()];
        const summary = await d.loop.pass();
        const used = process.cpuUsage(cpu);
        passes.push({ checks: signatureChecks() - checks, cpuMs: (used.user + used.system) / 1000, gitCpuMs: childrenCpuMs() - git, deferred: summary.deferred ?? 0 });
        if (!summary.deferred) {
          expect(summary.started).toEqual([beside]);
          break;
        }
        expect(summary.waiting).toEqual([{ id: beside, kind: "budget", reason: expect.stringMatching(`^commit signatures: this pass checked the ${SIGNATURE_CHECKS_PER_PASS} it may`) }]);
        expect(passes.length).toBeLessThanOrEqual(Math.ceil((HISTORY + 1) / SIGNATURE_CHECKS_PER_PASS));
      }
      for (const [i, p] of passes.entries()) console.log(`fault hostile-repo history: pass ${i + 1}: ${p.checks} signatures checked, cpu=${p.cpuMs.toFixed(0)} ms (+${p.gitCpuMs} ms in git and ssh-keygen)`);
      // every pass within its budget; the history's commits checked once in all (and the action's own)
      for (const p of passes) {
        expect(p.checks).toBeLessThanOrEqual(SIGNATURE_CHECKS_PER_PASS);
        expect(p.cpuMs).toBeLessThan(PASS_CPU_BOUND_MS);
      }
      expect(passes.reduce((n, p) => n + p.checks, 0)).toBe(HISTORY + 1);
      expect(passes.length).toBe(Math.ceil((HISTORY + 1) / SIGNATURE_CHECKS_PER_PASS));
      await d.loop.once();
      expect(await resultOf(r, beside)).toMatchObject({ status: "succeeded", exit_code: 0, approved_by: ["alice@example.test"] });

      // an action approved after the history: only the new commits are checked (the result commit, the action's)
      const before = signatureChecks();
      r.commit([file(r, `${after}.toml`, ok(after))], [], "add another", keys.key("alice"));
      await d.loop.once();
      expect(await resultOf(r, after)).toMatchObject({ status: "succeeded", exit_code: 0, approved_by: ["alice@example.test"] });
      console.log(`fault hostile-repo history: the action after it: ${signatureChecks() - before} signatures checked`);
      expect(signatureChecks() - before).toBeLessThanOrEqual(3);
    } finally {
      keys.cleanup();
    }
  });
});
