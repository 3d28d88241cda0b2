import type { CpuTimes } from "../proc.js";

/** What one contender did with one batch of actions. */
export interface BatchRun {
  actions: number;
  /** batch start → last result */
  wallMs: number;
  /** batch start (all actions submitted or committed at once) → each result */
  batchLatencies: number[];
  /** that child's dispatch → its result */
  serviceLatencies: number[];
  /**
   * that child's dispatch → its end as the contender saw it (raw, cli: its service latency;
   * dispatchers: the "action finished" line): what Nomad took, so a round whose children ran
   * faster shows as such
   */
  childLatencies: number[];
  failures: number;
  /** the contender's CPU (self: its process; children: git, nomad CLI, …) */
  cpu: CpuTimes;
  /** of cpu.childrenMs: the ops remote's side of the dispatcher's git calls (bench/remote.ts), the git server's work when deployed */
  remoteMs?: number;
  /** the dispatcher's node process only */
  peakRssMiB?: number;
  /** git processes the dispatcher started */
  gitProcesses?: number;
}
