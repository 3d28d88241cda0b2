// Rounds → one row per contender, and the ratios the issue asks for.
import type { BatchRun } from "./contenders/run.js";
import { perService, type ServiceName } from "./settings.js";
import { percentile, sum } from "./stats.js";

export interface Sample extends BatchRun {
  contender: string;
  round: number;
  /** the Nomad agent's own CPU over the batch, and its reaped children's (executors and tasks) */
  agentMs: number;
  tasksMs: number;
  /** the whole machine's busy CPU (ms, all CPUs) over the batch, the batch's wall time as the bench saw it, and the stack's other services' CPU in it */
  machine: { busyMs: number; wallMs: number; services: Services };
}

/** ms of CPU of each of the stack's services other than the Nomad agent the tasks run under */
export type Services = Record<ServiceName, number>;

export interface Row {
  contender: string;
  actions: number;
  perSecond: number;
  batchP50: number;
  batchP99: number;
  serviceP50: number;
  serviceP99: number;
  /** the contender's own CPU per action, ms (self + children, the ops remote's side apart) */
  cpuPerAction: number;
  selfPerAction: number;
  /** its children's, the remote's side apart */
  childrenPerAction: number;
  /** the ops remote's side of its git calls (dispatchers), ms per action */
  remotePerAction: number;
  agentPerAction: number;
  tasksPerAction: number;
  /** the whole machine's busy CPU per action, ms: every process, the stack's and the kernel's */
  machinePerAction: number;
  /** the share of the machine's CPUs busy over its batches, 0–1 */
  machineBusy: number;
  /** per action, ms */
  servicesPerAction: Services;
  peakRssMiB?: number;
  /** git processes started per action (the dispatcher only) */
  gitPerAction?: number;
  failures: number;
}

/** a batch's CPU for its contender: the ops remote's side is the git server's */
export function ownCpu(s: BatchRun): number {
  return s.cpu.selfMs + s.cpu.childrenMs - (s.remoteMs ?? 0);
}

export function summarize(samples: Sample[], cpus: number): Row[] {
  const names = [...new Set(samples.map((s) => s.contender))];
  return names.map((contender) => {
    const mine = samples.filter((s) => s.contender === contender);
    const actions = sum(mine.map((s) => s.actions));
    const batch = mine.flatMap((s) => s.batchLatencies);
    const service = mine.flatMap((s) => s.serviceLatencies);
    const rss = mine.map((s) => s.peakRssMiB).filter((x): x is number => x !== undefined);
    const git = mine.map((s) => s.gitProcesses).filter((x): x is number => x !== undefined);
    const busy = sum(mine.map((s) => s.machine.busyMs));
    return {
      contender,
      actions,
      perSecond: actions / (sum(mine.map((s) => s.wallMs)) / 1000),
      batchP50: percentile(batch, 50),
      batchP99: percentile(batch, 99),
      serviceP50: percentile(service, 50),
      serviceP99: percentile(service, 99),
      cpuPerAction: sum(mine.map(ownCpu)) / actions,
      selfPerAction: sum(mine.map((s) => s.cpu.selfMs)) / actions,
      childrenPerAction: sum(mine.map((s) => s.cpu.childrenMs - (s.remoteMs ?? 0))) / actions,
      remotePerAction: sum(mine.map((s) => s.remoteMs ?? 0)) / actions,
      agentPerAction: sum(mine.map((s) => s.agentMs)) / actions,
      tasksPerAction: sum(mine.map((s) => s.tasksMs)) / actions,
      machinePerAction: busy / actions,
      machineBusy: busy / (sum(mine.map((s) => s.machine.wallMs)) * cpus),
      servicesPerAction: perService((k) => sum(mine.map((s) => s.machine.services[k])) / actions),
      peakRssMiB: rss.length > 0 ? Math.max(...rss) : undefined,
      gitPerAction: git.length > 0 ? sum(git) / actions : undefined,
      failures: sum(mine.map((s) => s.failures)),
    };
  });
}

export interface Ratio {
  subject: string;
  versus: string;
  perSecond: number;
  batchP50: number;
  batchP99: number;
  serviceP50: number;
  serviceP99: number;
  cpuPerAction: number;
  machinePerAction: number;
}

/** subject (a dispatcher row) ÷ other, per metric (throughput below 1 and latency above 1 mean slower). */
export function ratios(rows: Row[], subject: string, others: string[]): Ratio[] {
  const d = rows.find((r) => r.contender === subject);
  if (!d) return [];
  return others.flatMap((name) => {
    const o = rows.find((r) => r.contender === name);
    if (!o) return [];
    return [{
      subject,
      versus: name,
      perSecond: d.perSecond / o.perSecond,
      batchP50: d.batchP50 / o.batchP50,
      batchP99: d.batchP99 / o.batchP99,
      serviceP50: d.serviceP50 / o.serviceP50,
      serviceP99: d.serviceP99 / o.serviceP99,
      cpuPerAction: d.cpuPerAction / o.cpuPerAction,
      machinePerAction: d.machinePerAction / o.machinePerAction,
    }];
  });
}
