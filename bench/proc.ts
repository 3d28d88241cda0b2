// CPU and memory of processes, read from /proc (Linux): the bench needs no /usr/bin/time.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

let tickMs: number | undefined;

/** ms per clock tick; asked once, after the first read, so getconf never counts as a child */
function tick(): number {
  tickMs ??= 1000 / Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());
  return tickMs;
}

export interface CpuTimes {
  /** the process itself, ms */
  selfMs: number;
  /**
   * its descendants (git, nomad CLI, task executors, …), ms: those it has waited for, and those still
   * running (a long-lived `git fast-import` or `cat-file`, whose CPU the kernel adds to the parent's
   * only when it exits)
   */
  childrenMs: number;
}

interface Stat {
  ppid: number;
  /** utime+stime, cutime+cstime in ticks */
  own: number;
  waited: number;
}

/** fields after "(comm)": state is field 3, so field k is at index k-3 */
function parseStat(text: string): Stat {
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ").map(Number);
  return { ppid: f[1]!, own: f[11]! + f[12]!, waited: f[13]! + f[14]! };
}

function readStats(): Map<number, Stat> {
  const stats = new Map<number, Stat>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      stats.set(Number(name), parseStat(readFileSync(`/proc/${name}/stat`, "utf8")));
    } catch {
      // ended since the listing
    }
  }
  return stats;
}

/** CPU of `pid` ("self" for this process) and of all its descendants, waited for or running. */
export function readCpu(pid: number | "self"): CpuTimes {
  const root = pid === "self" ? process.pid : pid;
  const stats = readStats();
  const children = new Map<number, number[]>();
  for (const [p, s] of stats) {
    const siblings = children.get(s.ppid);
    if (siblings) siblings.push(p);
    else children.set(s.ppid, [p]);
  }
  const own = stats.get(root);
  if (!own) throw new Error(`process ${root} is gone`);
  let ticks = own.waited;
  const stack = [...(children.get(root) ?? [])];
  while (stack.length > 0) {
    const p = stack.pop()!;
    const s = stats.get(p)!;
    ticks += s.own + s.waited;
    stack.push(...(children.get(p) ?? []));
  }
  const ms = tick();
  return { selfMs: own.own * ms, childrenMs: ticks * ms };
}

/**
 * The whole machine's busy CPU so far, ms summed over its CPUs (/proc/stat: user, nice, system,
 * irq, softirq, steal): every process's work, the contender's and the stack's (Nomad, its tasks,
 * OpenBao, the git daemon, the ops remote's side) and the kernel's.
 */
export function readMachineBusyMs(): number {
  const f = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return (user! + nice! + system! + irq! + softirq! + steal!) * tick();
}

/** Current and peak resident set size of `pid`, in MiB. */
export function readRss(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
  return { rssMiB: kb("VmRSS") / 1024, peakMiB: kb("VmHWM") / 1024 };
}

export function diffCpu(before: CpuTimes, after: CpuTimes): CpuTimes {
  return { selfMs: after.selfMs - before.selfMs, childrenMs: after.childrenMs - before.childrenMs };
}
