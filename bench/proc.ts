// CPU and memory of processes, read from /proc (Linux): the bench needs no /usr/bin/time.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

let tickMs: number | undefined;

/** ms per clock tick; asked once, after the first read, so getconf never counts as a child */
function tick(): number {
  tickMs ??= 1000 / Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());
  return tickMs;
}

export interface CpuTimes {
  /** the process itself, ms */
  selfMs: number;
  /** children it has waited for (git, nomad CLI, …), ms */
  childrenMs: number;
}

/** utime+stime and cutime+cstime of `pid` ("self" for this process). */
export function readCpu(pid: number | "self"): CpuTimes {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // fields after "(comm)": state is field 3, so field k is at index k-3
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  const ms = tick();
  return { selfMs: (f[11]! + f[12]!) * ms, childrenMs: (f[13]! + f[14]!) * ms };
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
