// make bench: three contenders (raw HTTP client, CLI script, the dispatcher) on the same child,
// alternating over rounds, then two scale checks; writes bench/results.md, prints a summary.
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { buildMeta } from "../contract.js";
import { runCli } from "./contenders/cli.js";
import { runDispatcher, runnerRemoteOf, runOnce, writeDispatcherConfig, type DispatcherSetup } from "./contenders/dispatcher.js";
import { startDaemon, type Daemon } from "./contenders/daemon.js";
import { runRaw } from "./contenders/raw.js";
import type { BatchRun } from "./contenders/run.js";
import { createGitCounter } from "./gitcount.js";
import { evaluateEarlierGoals, evaluateGoals } from "./goals.js";
import { MOCK_JOB, NOOP_JOB, RAW_EXEC_RUNNER, registerBenchJobs } from "./jobs.js";
import { describeMachine } from "./machine.js";
import { createBenchNomad } from "./nomad.js";
import { actionToml, blobSha, createBareRepo, headOf, NOOP_FORMULA, packRepo } from "./opsrepo.js";
import { diffCpu, readCpu, readMachineBusyMs } from "./proc.js";
import { plotSvg } from "./plot.js";
import { formatMarkdown, goalsTable, summaryTable } from "./report.js";
import { checkInflight } from "./scale/inflight.js";
import { checkPollCost } from "./scale/poll.js";
import { perService, readSettings, readStack } from "./settings.js";
import { sum } from "./stats.js";
import { ratios, summarize, type Sample, type Services } from "./summary.js";

const say = (text: string) => process.stderr.write(`==> ${text}\n`);

/** `dispatcher once` runs with nothing pending, averaged: the fixed cost in each round's CPU */
const IDLE_ONCE_RUNS = 3;

/** the batch a daemon runs after each start, before its figures are taken */
const WARM_UP_ACTIONS = 4;

/** the dev stack's secret (vault/dev-secrets.env) that dispatcher-secret's actions ask for */
const BENCH_SECRET = "DEMO_TOKEN";

/** the action the raw and CLI children run: under vault/actions, as a dispatcher's are: their checkouts leave out the same files */
const RAW_ACTION = "vault/actions/noop.toml";

/** how long a forced garbage collection may take to clear the children before a batch */
const SETTLE_MS = 60_000;
/** looks 500 ms apart with no allocation directory removed, after which a client is taken as done */
const SETTLE_STILL_LOOKS = 4;

interface Contender {
  name: string;
  run: (ids: string[]) => Promise<BatchRun>;
  /** readies the contender before its batch (outside the batch's figures) */
  before?: () => Promise<void>;
  /** ends what `before` started, once the batch's figures are taken */
  after?: () => Promise<void>;
}

async function main(): Promise<void> {
  const began = performance.now();
  const settings = readSettings();
  const stack = readStack();
  // contenders call Nomad with the dispatcher's token; the bench's bookkeeping with management
  const nomad = createBenchNomad(stack.NOMAD_ADDR, stack.NOMAD_TOKEN, stack.NOMAD_NAMESPACE);
  const admin = createBenchNomad(stack.NOMAD_ADDR, stack.managementToken, stack.NOMAD_NAMESPACE);
  for (const dir of [stack.dir, stack.repos]) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
  }
  await registerBenchJobs(stack, admin);

  // the ops repo of the rounds: the noop formula, and the action file that the raw and CLI
  // children name in their meta (the dispatcher's warm-up runs it once, then it is done)
  const remote = join(stack.repos, "ops.git");
  const seed = await createBareRepo(remote, { "formulas/noop.sh": NOOP_FORMULA, [RAW_ACTION]: actionToml("noop", "noop") });
  const sha = await blobSha(remote, seed, RAW_ACTION);
  /**
   * The meta of a raw or CLI child at the ops repo's tip as its batch starts: its runner fetches
   * and checks out the same tree a dispatcher's child of that round does (every earlier round's
   * actions and results), not the two-file seed (runs A to U did, so the dispatcher's children
   * fetched more).
   */
  let tip = seed;
  const readTip = async () => void (tip = await headOf(remote));
  const runnerMeta = (id: string) =>
    buildMeta(
      { actionId: id, actionSha: sha, actionPath: RAW_ACTION, commit: tip, formula: "noop", opsRepo: runnerRemoteOf(stack, remote), secrets: [], mounts: [], kvMount: "kv" },
      { attempt: "1", timeout_minutes: "60" },
    );
  const cliMeta = () => {
    const { action_id: _, ...meta } = runnerMeta("x");
    return meta;
  };
  const git = createGitCounter(join(stack.dir, "gitshim"));
  const setup: DispatcherSetup = { stack, remote, workdir: join(stack.dir, "dispatcher-work"), configFile: join(stack.dir, "dispatcher.toml"), pins: stack.pins, git };
  await writeDispatcherConfig(setup.configFile, { maxInFlight: settings.concurrency, runnerJob: "runner" });
  const secretConfig = join(stack.dir, "dispatcher-secret.toml");
  await writeDispatcherConfig(secretConfig, { maxInFlight: settings.concurrency, runnerJob: "runner", secrets: [BENCH_SECRET] });

  say("warm-up: the dispatcher's clone, one runner child, one trivial child");
  await runOnce(setup);
  await runRaw(nomad, "runner", [runnerMeta("warm-up")], 1);
  await runRaw(nomad, NOOP_JOB, [{}], 1);
  await runRaw(nomad, RAW_EXEC_RUNNER, [runnerMeta("warm-up-raw-exec")], 1);

  /**
   * Every batch starts on the same Nomad: the children of earlier batches are collected first.
   * Left in place, each costs the agent in every later batch (its periodic job summary metrics walk
   * every job: 16 % of the agent's CPU during mock-dispatcher, after mock-raw's 2,000, against 8 %
   * during mock-raw), so the second of a pair paid for the first. The clients then remove the
   * collected allocations' directories (a chroot each for exec): waited for too, or that work
   * would fall into the next batch.
   */
  async function settleNomad(): Promise<void> {
    await admin.collectGarbage();
    const until = performance.now() + SETTLE_MS;
    const pause = () => new Promise((r) => setTimeout(r, 500));
    let left = await admin.listAllChildren();
    while (left.length > 0 && performance.now() < until) {
      await pause();
      left = await admin.listAllChildren();
    }
    // until none is left, or the count stays put for a few looks (a client keeps some on its own)
    let dirs = await countAllocDirs();
    for (let still = 0; dirs > 0 && still < SETTLE_STILL_LOOKS && performance.now() < until; ) {
      await pause();
      const now = await countAllocDirs();
      still = now < dirs ? 0 : still + 1;
      dirs = now;
    }
    if (left.length > 0) say(`${left.length} children still in Nomad after a forced garbage collection (${SETTLE_MS / 1000} s)`);
    // Nomad counts open connections per address, idle ones too (HTTP 429 past 100): mock-raw's 64
    // stayed open in the bench's pool and throttled the in-flight checks' dispatcher after it
    nomad.closeIdle();
    admin.closeIdle();
  }

  /** allocation directories on the stack's clients: each batch's children leave theirs until collected */
  async function countAllocDirs(): Promise<number> {
    const counts = await Promise.all(stack.clientDataDirs.map((d) => readdir(join(d, "alloc")).then((e) => e.length, () => 0)));
    return sum(counts);
  }

  /**
   * The dispatcher as deployed, a `dispatcher run`, with its own clone and instance name (a `once`
   * runs on the same ops repo and ledger). It is started before each of its batches, once the
   * stack is settled, and stopped after: its first pass (start, Vault login, clone, the ledger's
   * listing) falls outside the batch, and it takes no CPU, and no share of the agent's event
   * stream, while the other contenders run. A deployed daemon has run actions before, and raw runs
   * in this process, warm after its first batch: each start is followed by a small batch of its
   * own, outside the figures (Nomad is settled after it).
   */
  function daemonContender(name: string, configFile: string, secrets: readonly string[] = []): Omit<Contender, "name"> {
    const daemonSetup: DispatcherSetup = { ...setup, workdir: join(stack.dir, `${name}-work`), configFile, instance: `bench-${name}` };
    let daemon: Daemon | undefined;
    let starts = 0;
    return {
      before: async () => {
        daemon = await startDaemon(daemonSetup, name);
        starts++;
        await daemon.runBatch(Array.from({ length: WARM_UP_ACTIONS }, (_, i) => `w${starts}-${name}-${i}`), "noop", secrets);
      },
      run: (ids) => daemon!.runBatch(ids, "noop", secrets),
      after: async () => daemon?.stop(),
    };
  }

  /** CPU of each of the stack's other services so far (itself and the children it waited for: the git daemon's upload-packs) */
  const total = (pid: number) => {
    const c = readCpu(pid);
    return c.selfMs + c.childrenMs;
  };
  const readServicesMs = (): Services => perService((k) => total(stack.servicePids[k]));
  const diffServices = (a: Services, b: Services): Services => perService((k) => b[k] - a[k]);

  const c = settings.concurrency;
  /** One contender's batch, with the Nomad agent's CPU over it. */
  async function sample(contender: Contender, ids: string[], round: number, label: string): Promise<Sample> {
    await contender.before?.();
    await settleNomad();
    const before = readCpu(stack.nomadPid);
    const machineBefore = readMachineBusyMs();
    const servicesBefore = readServicesMs();
    const from = Date.now();
    const run = await contender.run(ids);
    const machine = { busyMs: readMachineBusyMs() - machineBefore, wallMs: Date.now() - from, services: diffServices(servicesBefore, readServicesMs()) };
    const agent = diffCpu(before, readCpu(stack.nomadPid));
    await contender.after?.();
    say(`${label}: ${(run.actions / (run.wallMs / 1000)).toFixed(2)} actions/s, ${run.failures} failed`);
    return { ...run, contender: contender.name, round, agentMs: agent.selfMs, tasksMs: agent.childrenMs, machine };
  }

  const allContenders: Contender[] = [
    { name: "raw", before: readTip, run: (ids) => runRaw(nomad, "runner", ids.map(runnerMeta), c) },
    { name: "cli", before: readTip, run: (ids) => runCli(stack, "runner", cliMeta(), ids, settings.cliPollSeconds, c) },
    { name: "dispatcher", ...daemonContender("run", setup.configFile) },
    { name: "dispatcher-once", run: (ids) => runDispatcher(setup, ids, "noop") },
    { name: "dispatcher-secret", ...daemonContender("secret", secretConfig, [BENCH_SECRET]) },
    { name: "raw-trivial", run: (ids) => runRaw(nomad, NOOP_JOB, ids.map(() => ({})), c) },
    // the same runner and formula without isolation: what exec (chroot, nobody, volumes) costs
    { name: "raw-raw-exec", before: readTip, run: (ids) => runRaw(nomad, RAW_EXEC_RUNNER, ids.map(runnerMeta), c) },
  ];
  const contenders = pickContenders(allContenders, settings.contenders);
  const samples: Sample[] = [];
  for (let round = 1; round <= settings.rounds; round++) {
    // rotate the order so no contender always follows the same one
    const order = contenders.map((_, i) => contenders[(i + round - 1) % contenders.length]!);
    for (const contender of order) {
      const ids = Array.from({ length: settings.actions }, (_, i) => `r${round}-${contender.name}-${String(i).padStart(4, "0")}`);
      await packRepo(remote);
      samples.push(await sample(contender, ids, round, `round ${round} ${contender.name}`));
    }
  }

  // what every `once` pays before its first action (start, Vault login, clone check, one pass):
  // nothing is pending now, so the run is that fixed cost alone
  const idleOnce: number[] = [];
  for (let i = 0; i < IDLE_ONCE_RUNS; i++) {
    const { usage } = await runOnce(setup);
    idleOnce.push(usage.selfMs + usage.childrenMs - usage.remoteMs);
  }

  // high rate: children that cost Nomad next to nothing, so the orchestration is all that differs
  const mockConfig = join(stack.dir, "dispatcher-mock.toml");
  await writeDispatcherConfig(mockConfig, { maxInFlight: settings.mockConcurrency, runnerJob: MOCK_JOB });
  const m = settings.mockConcurrency;
  const mockContenders: Contender[] = [
    { name: "mock-raw", run: (ids) => runRaw(nomad, MOCK_JOB, ids.map(runnerMeta), m) },
    { name: "mock-dispatcher", ...daemonContender("mock", mockConfig) },
  ];
  // two batches each, half the actions, in the order raw, dispatcher, dispatcher, raw: what drifts
  // over the pair (Nomad's state and raft log grow with every batch) falls on both alike
  const [mockRaw, mockDispatcher] = mockContenders as [Contender, Contender];
  const mockOrder = settings.mockActions > 0 ? ([[mockRaw, 1], [mockDispatcher, 1], [mockDispatcher, 2], [mockRaw, 2]] as const) : [];
  for (const [contender, batch] of mockOrder) {
    const size = batch === 1 ? Math.ceil(settings.mockActions / 2) : Math.floor(settings.mockActions / 2);
    say(`high rate: ${contender.name} batch ${batch}, ${size} actions at concurrency ${m}`);
    const ids = Array.from({ length: size }, (_, i) => `m${batch}-${contender.name}-${String(i).padStart(5, "0")}`);
    samples.push(await sample(contender, ids, batch, `${contender.name} batch ${batch}`));
  }
  const rows = summarize(samples, availableParallelism());

  let poll;
  let smallPoll;
  if (settings.history > 0) {
    say(`scale: one poll with ${settings.history} historical actions, and with ${settings.smallHistory}`);
    await settleNomad();
    poll = await checkPollCost(stack, settings.history);
    smallPoll = await checkPollCost(stack, settings.smallHistory);
  }
  const inflight = [];
  for (const n of settings.inflight) {
    say(`scale: tracking ${n} running allocations (bound ${settings.inflightSeconds} s)`);
    await settleNomad();
    inflight.push(await checkInflight(stack, admin, n, settings.inflightSeconds, settings.holdSeconds));
  }

  const report = {
    machine: await describeMachine(stack, admin),
    settings,
    samples,
    rows,
    ratios: [
      ...ratios(rows, "dispatcher", ["raw", "cli", "raw-trivial", "raw-raw-exec"]),
      ...ratios(rows, "dispatcher-once", ["raw"]),
      ...ratios(rows, "dispatcher-secret", ["raw", "dispatcher"]),
      ...ratios(rows, "mock-dispatcher", ["mock-raw"]),
    ],
    idleOnce: { runs: idleOnce.length, meanMs: sum(idleOnce) / idleOnce.length },
    poll,
    smallPoll,
    inflight,
    goals: evaluateGoals({ rows, poll, smallPoll, inflight }),
    earlierGoals: evaluateEarlierGoals({ rows, poll, smallPoll, inflight }),
    totalSeconds: (performance.now() - began) / 1000,
  };
  const markdown = formatMarkdown(report);
  await writeFile(settings.out, markdown);
  const plot = settings.out.replace(/\.md$/, "") + ".svg";
  await writeFile(plot, plotSvg(rows, samples, `make bench, ${report.machine.date}: ${report.machine.nproc} CPUs, Nomad ${report.machine.nomad}`));
  process.stdout.write(`\n${summaryTable(rows)}\n\n${goalsTable(report.goals)}\n\nwritten to ${settings.out} and ${plot}\n`);
}

const MOCK_NAMES = ["mock-raw", "mock-dispatcher"];

/** The contenders BENCH_CONTENDERS names, in the bench's order; a name it does not know is an error. */
function pickContenders(all: Contender[], names: string[]): Contender[] {
  if (names.length === 0) return all;
  // the mock pair's names are accepted too: it runs whenever BENCH_MOCK_ACTIONS > 0, so naming
  // only them (with BENCH_ACTIONS=0) runs no round contender
  const known = [...all.map((c) => c.name), ...MOCK_NAMES];
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) throw new Error(`BENCH_CONTENDERS names ${unknown.join(", ")}, expected some of ${known.join(", ")} (example: BENCH_CONTENDERS=raw,raw-trivial)`);
  return all.filter((c) => names.includes(c.name));
}

await main();
