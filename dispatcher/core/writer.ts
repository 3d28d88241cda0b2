import type { Logger } from "../log.js";
import type { OpsRepoPort, RepoFile } from "./ports.js";
import { logPath, resultPath, type ActionResult } from "./result.js";
import { redact, tail } from "./redact.js";

export interface PendingResult {
  result: ActionResult;
  /** full combined output; stored as <id>.log when longer than the tail in the result */
  fullLog: string;
  /** the folder of its files when not the actions folder (an issue run's: vault/issues) */
  dir?: string;
}

export interface Flushed {
  written: string[];
  skipped: string[];
  failed: string[];
  /** pushes a concurrent writer refused before ours landed */
  rejections: number;
}

/**
 * Pushed ids held for holds(): a pass at a tip from before the push must not take them up again.
 * Past this many the oldest are forgotten: a daemon runs for months, and their results are long
 * at the tip (one found pending again, on a rewound branch, waits on its ledger entry).
 */
const PUSHED_KEPT = 50_000;

/**
 * Results wait here until they are pushed. A failed push keeps them (nothing is lost) and the
 * next flush tries again; several results share one commit.
 */
export function createResultWriter(repo: OpsRepoPort, opts: { actionsDir: string; maxLogBytes: number; log: Logger; pushedKept?: number }) {
  const queue = new Map<string, PendingResult>();
  const pushedKept = opts.pushedKept ?? PUSHED_KEPT;
  /** pushed by this process, oldest first */
  const pushed = new Set<string>();
  /** refused by the repo's layout: never at the tip, so held for the process's life (they are few) */
  const refused = new Set<string>();
  // one flush at a time: a second one would take the first one's batch again
  let flushing: Promise<unknown> = Promise.resolve();

  const pathOf = (p: PendingResult) => resultPath(p.dir ?? opts.actionsDir, p.result.id);

  function toFiles(p: PendingResult): RepoFile[] {
    const files: RepoFile[] = [];
    const id = p.result.id;
    if (p.result.log_file) {
      files.push({ path: logPath(p.dir ?? opts.actionsDir, id), content: Buffer.from(tail(p.fullLog, opts.maxLogBytes)) });
    }
    files.push({ path: pathOf(p), content: Buffer.from(`${JSON.stringify(p.result, null, 2)}\n`) });
    return files;
  }

  return {
    add(p: PendingResult): void {
      queue.set(p.result.id, p);
    },
    /** ids with a result waiting to be pushed or pushed by this process */
    holds(id: string): boolean {
      return queue.has(id) || pushed.has(id) || refused.has(id);
    },
    size(): number {
      return queue.size;
    },
    /**
     * One commit for every queued result. `skipped`: a result already existed upstream (never
     * overwritten); `failed`: the repo's layout refuses the path (a symlink or a file where a
     * directory should be): reported, kept in the ledger, not dispatched again by this process.
     */
    flush(): Promise<Flushed> {
      const run = flushing.then(flushNow, flushNow);
      flushing = run.catch(() => undefined);
      return run;
    },
  };

  async function flushNow(): Promise<Flushed> {
    if (queue.size === 0) return { written: [], skipped: [], failed: [], rejections: 0 };
    const batch = [...queue.values()];
    const ids = batch.map((p) => p.result.id);
    const message = ids.length === 1 ? `vault: result for ${ids[0]}` : `vault: results for ${ids.join(", ")}`;
    const outcome = await repo.writeFiles(batch.flatMap(toFiles), message);
    const failedPaths = new Map((outcome.failed ?? []).map((f) => [f.path, f.reason]));
    const paths = new Map(batch.map((p) => [p.result.id, pathOf(p)]));
    const failed = ids.filter((id) => failedPaths.has(paths.get(id)!));
    for (const id of ids) {
      queue.delete(id);
      if (failed.includes(id)) refused.add(id);
      else pushed.add(id);
    }
    for (const oldest of pushed) {
      if (pushed.size <= pushedKept) break;
      pushed.delete(oldest);
    }
    for (const id of failed) opts.log.error({ action: id, reason: failedPaths.get(paths.get(id)!) }, "result could not be written; it stays in the ledger");
    const skippedIds = ids.filter((id) => outcome.skipped.includes(paths.get(id)!));
    for (const id of skippedIds) opts.log.warn({ action: id }, "a result already existed upstream; ours was not written (never overwrite)");
    return { written: ids.filter((id) => !skippedIds.includes(id) && !failed.includes(id)), skipped: skippedIds, failed, rejections: outcome.rejections ?? 0 };
  }
}

export type ResultWriter = ReturnType<typeof createResultWriter>;

/** Combined output as stored: stdout, then stderr under a marker, with known values masked. */
export function combineLogs(stdout: string, stderr: string, mask: string[]): string {
  const parts = [stdout.trimEnd(), stderr.trimEnd() ? `[stderr]\n${stderr.trimEnd()}` : ""].filter(Boolean);
  return redact(parts.join("\n"), mask);
}

/** The stderr part of a stored combined log (after the marker combineLogs writes), "" when none. */
export function stderrOfStoredLog(text: string): string {
  const marker = "[stderr]\n";
  if (text.startsWith(marker)) return text.slice(marker.length);
  const at = text.lastIndexOf(`\n${marker}`);
  return at < 0 ? "" : text.slice(at + 1 + marker.length);
}
