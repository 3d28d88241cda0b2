import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createShutdownHandler } from "../../../dispatcher/cli/signals.js";
import { createLogger } from "../../../dispatcher/log.js";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _e, cb) {
      lines.push(...chunk.toString().trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>));
      cb();
    },
  });
  return { lines, log: createLogger({ destination, pretty: false }) };
}

describe("createShutdownHandler", () => {
  it("drains on the first signal and exits 130 on the second", () => {
    const { lines, log } = capture();
    const stop = new AbortController();
    const exits: number[] = [];
    const handle = createShutdownHandler(log, stop, (code) => exits.push(code));
    handle("SIGTERM");
    expect(stop.signal.aborted).toBe(true);
    expect(exits).toEqual([]);
    handle("SIGINT");
    expect(exits).toEqual([130]);
    expect(lines.map((l) => [l.signal, l.msg])).toEqual([
      ["SIGTERM", "stopping: no new dispatches; finishing the results in hand"],
      ["SIGINT", "second signal: exiting now; running allocations are re-attached on restart"],
    ]);
  });
});
