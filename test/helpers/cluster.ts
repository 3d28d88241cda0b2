// The three-server Nomad cluster of scripts/cluster.sh, beside the dev stack: started when it is
// not running (or setup fails loudly), its settings from .dev/cluster/env, its faults as the
// script makes them.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { createNomadPort, type NomadClient } from "../../dispatcher/nomad/client.js";
import { stackEnv } from "./stack.js";

const root = new URL("../..", import.meta.url).pathname;
const run = promisify(execFile);

export interface ClusterEnv {
  /** server 0's HTTP API */
  NOMAD_ADDR: string;
  /** the three servers' HTTP APIs */
  NOMAD_ADDRS: string;
  /** the exec client's HTTP API: it forwards to whichever server answers (what a dispatcher on a node talks to) */
  NOMAD_CLIENT_ADDR: string;
  /** the dispatcher's token on the cluster */
  NOMAD_TOKEN: string;
  DISPATCHER_JOB_PINS: string;
  managementToken: string;
}

/** `scripts/cluster.sh <args>`; its stderr is kept for a failure's message. */
export async function cluster(...args: string[]): Promise<string> {
  try {
    return (await run(join(root, "scripts/cluster.sh"), args, { env: process.env, timeout: 180_000 })).stdout.trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`scripts/cluster.sh ${args.join(" ")} failed: ${e.stderr || e.message}`);
  }
}

export async function clusterUp(): Promise<ClusterEnv> {
  await cluster("up");
  const text = readFileSync(join(root, ".dev/cluster/env"), "utf8");
  const env = Object.fromEntries(text.trim().split("\n").map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]));
  return { ...(env as unknown as ClusterEnv), managementToken: readFileSync(join(root, ".dev/cluster/nomad-management-token"), "utf8").trim() };
}

/** the cluster as its administrator sees it (management token, runner namespace), through the client agent: it forwards to whichever server answers */
export function clusterNomad(c: ClusterEnv, addr = c.NOMAD_CLIENT_ADDR): NomadClient {
  return createNomadPort({ addr, token: c.managementToken, namespace: stackEnv().NOMAD_NAMESPACE });
}

/** the environment a dispatcher needs on the cluster through `addr` (the dev stack's OpenBao and git) */
export function clusterDispatcherEnv(c: ClusterEnv, addr: string): Record<string, string> {
  return { NOMAD_ADDR: addr, NOMAD_TOKEN: c.NOMAD_TOKEN, DISPATCHER_JOB_PINS: c.DISPATCHER_JOB_PINS, DISPATCHER_CLASSES: "" };
}

export async function leader(): Promise<number> {
  return Number(await cluster("leader"));
}

/** a job's allocations on the cluster (management token) */
export async function clusterAllocations(c: ClusterEnv, jobId: string): Promise<{ ID: string; ClientStatus: string }[]> {
  const res = await fetch(`${c.NOMAD_ADDR}/v1/job/${encodeURIComponent(jobId)}/allocations?namespace=${stackEnv().NOMAD_NAMESPACE}`, { headers: { "X-Nomad-Token": c.managementToken } });
  if (!res.ok) throw new Error(`allocations of ${jobId}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as { ID: string; ClientStatus: string }[];
}
