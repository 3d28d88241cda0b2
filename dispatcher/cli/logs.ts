import { redactUrls } from "../opsrepo/exec.js";
import { readResult, type ReadResult } from "../core/repo-read.js";
import type { AllocationState } from "../core/ports.js";
import { logPath } from "../core/result.js";
import { isTerminal, type LiveChild } from "../core/status.js";
import { startedAllocation, waitForAllocation } from "../core/watch.js";
import { systemClock } from "../clock.js";
import { stderrOfStoredLog } from "../core/writer.js";
import { ExitError } from "../errors.js";
import type { LogType } from "../nomad/client.js";
import { CONFIG_HELP, configFrom, configOptions, EXIT, type Command } from "./common.js";
import { openView, readLiveChildren, type View } from "./view.js";

const POLL_MS = 2_000;
/** logmon copies the task's output to the log file a moment after the task exits */
const FLUSH_MS = 500;

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

export const logsCommand: Command = {
  summary: "print an action's output; -f follows a running one to its end",
  help: `Usage: dispatcher logs <id> [-f] [--stderr] [options]

A running action: its allocation's stdout (or stderr) from Nomad. With -f, waits for the
dispatch and for the task to start, streams new output until the allocation ends, and exits
with the task's exit code.
A finished action: the log stored in the ops repo (vault/actions/<id>.log if present, else the
result's logs), so it works after Nomad has garbage-collected the job. The stored log is the
combined output; --stderr limits it to the stderr part. With -f, exits with the recorded code.
  -f, --follow            follow the output until the action ends
  --stderr                stderr instead of stdout

${CONFIG_HELP}`,
  options: { ...configOptions, follow: { type: "boolean", short: "f" }, stderr: { type: "boolean" } },
  async run(values, positionals) {
    const [id, ...extra] = positionals;
    if (!id || extra.length > 0) throw new ExitError("dispatcher logs: name exactly one action id (see dispatcher logs --help)", EXIT.usage);
    const v = openView(configFrom(values));
    const follow = values.follow === true;
    const type: LogType = values.stderr ? "stderr" : "stdout";
    const dir = v.config.repo.actionsDir;
    for (;;) {
      const commit = await v.repo.sync();
      const result = await readResult(v.repo, commit, dir, id);
      if (result) return printStored(v, commit, result, type, follow);
      if (!(await v.repo.readFile(commit, `${dir}/${id}.toml`))) {
        throw new ExitError(`no action "${id}": neither ${dir}/${id}.toml nor its result is in ${redactUrls(v.config.repo.remote)} at ${commit.slice(0, 12)}`, EXIT.failed);
      }
      const child = (await readLiveChildren(v, new Set([id]))).get(id);
      if (child) return showLive(v, child, type, follow);
      if (!follow) throw new ExitError(`action "${id}" is pending: not dispatched yet (use -f to wait for it)`, EXIT.failed);
      await sleep(POLL_MS);
    }
  },
};

async function printStored(v: View, commit: string, result: ReadResult, type: LogType, follow: boolean): Promise<number> {
  const stored = await v.repo.readFile(commit, logPath(v.config.repo.actionsDir, result.id));
  const text = stored ? stored.toString("utf8") : result.logs;
  const shown = type === "stderr" ? stderrOfStoredLog(text) : text;
  process.stdout.write(shown.endsWith("\n") || shown === "" ? shown : `${shown}\n`);
  if (!follow) return EXIT.ok;
  // -1: no process ran; the action failed all the same
  return result.exit_code >= 0 ? result.exit_code : EXIT.failed;
}

async function showLive(v: View, child: LiveChild, type: LogType, follow: boolean): Promise<number> {
  const task = v.kinds[child.parent]!;
  const alloc = await waitForAllocation(v.nomad, child.jobId, startedAllocation, { clock: systemClock, timeoutMs: follow ? Infinity : 0 });
  if (!alloc) throw new ExitError(`action's job ${child.jobId} has no started allocation yet (use -f to wait for it)`, EXIT.failed);
  if (!follow) {
    process.stdout.write(await v.nomad.readLogBytes(alloc.id, task, type, 0));
    return EXIT.ok;
  }
  const end = await followToEnd(v, child.jobId, alloc.id, task, type);
  if (end.exitCode !== undefined) return end.exitCode;
  process.stderr.write(`dispatcher logs: allocation ${end.id} ended ${end.clientStatus} without an exit code: ${end.failureMessage ?? "the task never ran"}\n`);
  return EXIT.failed;
}

/**
 * Streams the task's log live while a blocking query watches the allocation. When it ends, the
 * stream is cut and the rest is read from the byte offset reached, so no output is lost or doubled.
 */
async function followToEnd(v: View, jobId: string, allocId: string, task: string, type: LogType): Promise<AllocationState> {
  const stop = new AbortController();
  let offset = 0;
  const ended = (allocs: AllocationState[]) => allocs.find((a) => a.id === allocId && isTerminal(a));
  const watcher = waitForAllocation(v.nomad, jobId, ended, { clock: systemClock, timeoutMs: Infinity }).then((a) => a!).finally(() => stop.abort());
  watcher.catch(() => undefined); // awaited below; the stream loop must not see it as unhandled
  while (!stop.signal.aborted) {
    try {
      for await (const chunk of v.nomad.followLog(allocId, task, type, offset, stop.signal)) {
        process.stdout.write(chunk);
        offset += chunk.length;
      }
    } catch (err) {
      v.log.warn({ err }, "log stream broke off; reconnecting");
    }
    // Nomad closed the stream (or it broke) while the task still runs: reconnect from the offset
    if (!stop.signal.aborted) await sleep(500);
  }
  const end = await watcher;
  await sleep(FLUSH_MS);
  process.stdout.write(await v.nomad.readLogBytes(allocId, task, type, offset));
  return end;
}
