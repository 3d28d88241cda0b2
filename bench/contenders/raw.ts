// Contender 1, the raw limit: dispatch through the HTTP API and wait for each child with
// blocking queries, `concurrency` at a time. No token, no logs, no git: only what Nomad needs.
import type { BenchNomad } from "../nomad.js";
import { diffCpu, readCpu } from "../proc.js";
import { runPool } from "../stats.js";
import type { BatchRun } from "./run.js";

export async function runRaw(nomad: BenchNomad, job: string, metas: Record<string, string>[], concurrency: number): Promise<BatchRun> {
  const before = readCpu("self");
  const start = performance.now();
  const batchLatencies: number[] = [];
  const serviceLatencies: number[] = [];
  let failures = 0;
  await runPool(metas, concurrency, async (meta) => {
    const t = performance.now();
    const status = await nomad.waitTerminal(await nomad.dispatch(job, meta));
    const end = performance.now();
    if (status !== "complete") failures++;
    batchLatencies.push(end - start);
    serviceLatencies.push(end - t);
  });
  const wallMs = performance.now() - start;
  // in-process: the bench's own CPU over the batch is this client's cost
  return { actions: metas.length, wallMs, batchLatencies, serviceLatencies, childLatencies: serviceLatencies, failures, cpu: diffCpu(before, readCpu("self")) };
}
