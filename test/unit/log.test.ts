// The one pino root as operators read it: JSON lines when piped, one readable line per event on a
// terminal (or when asked), and the same readable lines appended to a log file; secrets redacted in all.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../../dispatcher/log.js";

function sink(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      cb();
    },
  });
  return { lines, stream };
}

/** the time prefix of a readable line, for exact comparisons */
const TIME = /^\[\d{2}:\d{2}:\d{2}\.\d{3}\] /;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "log-test-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("createLogger", () => {
  it("writes one JSON object per line when not pretty, with the token redacted", () => {
    const { lines, stream } = sink();
    createLogger({ destination: stream, pretty: false }).child({ component: "loop" }).info({ action: "a1", token: "s.secret" }, "dispatched");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, component: "loop", action: "a1", token: "[redacted]", msg: "dispatched" });
  });

  it("writes one readable line per event when pretty, fields on the same line, no colours off a terminal", () => {
    const { lines, stream } = sink();
    const log = createLogger({ destination: stream, pretty: true }).child({ component: "loop" });
    log.info({ action: "a1", job: "runner/dispatch-1", token: "s.secret" }, "dispatched");
    log.warn({ action: "a2", input: { path: "vault/actions/a2.toml" } }, "refused");
    expect(lines.map((l) => l.replace(TIME, ""))).toEqual([
      'INFO: dispatched {"component":"loop","action":"a1","job":"runner/dispatch-1","token":"[redacted]"}',
      'WARN: refused {"component":"loop","action":"a2","input":{"path":"vault/actions/a2.toml"}}',
    ]);
    expect(lines.every((l) => TIME.test(l))).toBe(true);
  });

  it("also appends the readable lines to a log file, creating its directory", async () => {
    const { lines, stream } = sink();
    const file = join(dir, "logs", "dispatcher.log");
    const log = createLogger({ destination: stream, pretty: false, file });
    log.info({ action: "a1", token: "s.secret" }, "dispatched");
    log.debug("not at info");
    log.error({ action: "a1" }, "push failed");
    const text = await readFile(file, "utf8");
    expect(text.trimEnd().split("\n").map((l) => l.replace(TIME, ""))).toEqual([
      'INFO: dispatched {"action":"a1","token":"[redacted]"}',
      'ERROR: push failed {"action":"a1"}',
    ]);
    // the main destination is unchanged: JSON
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(["dispatched", "push failed"]);
  });
});
