// /readyz: ready when a pass succeeded lately, the dispatcher's own Vault token is valid and
// Nomad answers. Each engine check is bounded so a hung engine reads as unready, not as a hang.
import type { Clock } from "../core/ports.js";
import type { LoopEmitter } from "../core/events.js";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ReadinessSources {
  events: LoopEmitter;
  clock: Clock;
  /** a last good pass older than this is stale (a few poll intervals) */
  maxPassAgeMs: number;
  /** seconds the dispatcher's Vault token has left (0: no expiry); throws when invalid or unreachable */
  vaultTokenSeconds(): Promise<number>;
  /** throws when Nomad does not answer */
  nomadLeader(): Promise<string>;
}

const CHECK_MS = 2_000;

async function bounded<T>(what: string, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not answer within ${CHECK_MS} ms`)), CHECK_MS)));
  try {
    return await Promise.race([work(), late]);
  } finally {
    clearTimeout(timer);
  }
}

export function createReadiness(src: ReadinessSources) {
  let lastOk: number | undefined;
  let lastFailure: { at: number; message: string } | undefined;
  src.events.on("pass:done", () => {
    lastOk = src.clock.now().getTime();
    lastFailure = undefined;
  });
  src.events.on("pass:failed", (e) => (lastFailure = { at: src.clock.now().getTime(), message: e.err instanceof Error ? e.err.message : String(e.err) }));

  function passCheck(): Check {
    const now = src.clock.now().getTime();
    if (lastFailure) return { name: "pass", ok: false, detail: `the last pass failed: ${lastFailure.message}` };
    if (lastOk === undefined) return { name: "pass", ok: false, detail: "no pass has finished yet" };
    const age = now - lastOk;
    return age <= src.maxPassAgeMs ? { name: "pass", ok: true, detail: `last pass ${Math.round(age / 1000)}s ago` } : { name: "pass", ok: false, detail: `last good pass ${Math.round(age / 1000)}s ago (more than ${src.maxPassAgeMs / 1000}s)` };
  }

  async function engineCheck(name: string, work: () => Promise<string>): Promise<Check> {
    try {
      return { name, ok: true, detail: await bounded(name, work) };
    } catch (err) {
      return { name, ok: false, detail: err instanceof Error ? err.message : String(err) };
    }
  }

  return {
    async check(): Promise<{ ready: boolean; checks: Check[] }> {
      const checks = [
        passCheck(),
        ...(await Promise.all([
          engineCheck("vault", async () => {
            const s = await src.vaultTokenSeconds();
            return s === 0 ? "token valid, no expiry" : `token valid for ${s}s`;
          }),
          engineCheck("nomad", async () => `leader ${await src.nomadLeader()}`),
        ])),
      ];
      return { ready: checks.every((c) => c.ok), checks };
    },
  };
}

export type Readiness = ReturnType<typeof createReadiness>;
