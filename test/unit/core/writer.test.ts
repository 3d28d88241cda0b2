import { Writable } from "node:stream";
import { beforeEach, describe, expect, it } from "vitest";
import type { Provenance, OpsRepoPort, RepoFile } from "../../../dispatcher/core/ports.js";
import type { ActionResult } from "../../../dispatcher/core/result.js";
import { combineLogs, createResultWriter, type PendingResult } from "../../../dispatcher/core/writer.js";
import { createLogger } from "../../../dispatcher/log.js";

const DIR = "vault/actions";

/** An ops repo in memory: records every writeFiles call, can fail, never overwrites. */
class MemoryRepo implements OpsRepoPort {
  readonly files = new Map<string, string>();
  readonly calls: { message: string; files: { path: string; content: string }[] }[] = [];
  /** number of upcoming writeFiles calls that reject */
  failNext = 0;
  /** paths the repo's layout refuses (a symlink in the way) */
  readonly refuse = new Set<string>();
  private commits = 0;

  async sync(): Promise<string> {
    return `c${this.commits}`;
  }
  async listFiles(): Promise<{ path: string; sha: string }[]> {
    return [];
  }
  async provenance(_commit: string, path: string): Promise<Provenance> {
    return { path, later: [] };
  }
  async diffFiles(): Promise<undefined> {
    return undefined;
  }
  async sameCodeAs(from: string, to: string): Promise<boolean> {
    return from === to;
  }
  async readFile(_commit: string, path: string): Promise<Buffer | undefined> {
    const v = this.files.get(path);
    return v === undefined ? undefined : Buffer.from(v);
  }
  async writeFiles(files: RepoFile[], message: string): Promise<{ commit: string; skipped: string[] }> {
    this.calls.push({ message, files: files.map((f) => ({ path: f.path, content: f.content.toString("utf8") })) });
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error("push rejected: remote unreachable");
    }
    const skipped: string[] = [];
    const failed = files.filter((f) => this.refuse.has(f.path)).map((f) => ({ path: f.path, reason: "vault/actions is a symlink in the repo, not a directory" }));
    for (const f of files.filter((x) => !this.refuse.has(x.path))) {
      if (this.files.has(f.path)) skipped.push(f.path);
      else this.files.set(f.path, f.content.toString("utf8"));
    }
    this.commits++;
    return { commit: `c${this.commits}`, skipped, ...(failed.length > 0 ? { failed } : {}) };
  }
}

function result(id: string, over: Partial<ActionResult> = {}): ActionResult {
  return {
    id,
    exit_code: 0,
    timestamp: "2024-05-01T12:00:00.000Z",
    logs: `${id} done`,
    status: "succeeded",
    attempts: 1,
    action_sha: `sha-${id}`,
    commit: "abc123",
    policies: [],
    dispatcher: { version: "0.1.0", instance: "test" },
    ...over,
  };
}

const pending = (id: string, over: Partial<ActionResult> = {}, fullLog = ""): PendingResult => ({ result: result(id, over), fullLog });

let repo: MemoryRepo;
let lines: Record<string, unknown>[];

function writer(maxLogBytes = 1024, pushedKept?: number) {
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString("utf8").split("\n").filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return createResultWriter(repo, { actionsDir: DIR, maxLogBytes, log: createLogger({ destination, level: "debug", pretty: false }), ...(pushedKept === undefined ? {} : { pushedKept }) });
}

beforeEach(() => {
  repo = new MemoryRepo();
  lines = [];
});

describe("combineLogs", () => {
  it("joins stdout and stderr under a marker, trimming trailing whitespace", () => {
    expect(combineLogs("out 1\nout 2\n\n", "err 1\n", [])).toBe("out 1\nout 2\n[stderr]\nerr 1");
  });

  it("omits the marker when stderr is empty or blank", () => {
    expect(combineLogs("only out\n", "", [])).toBe("only out");
    expect(combineLogs("only out\n", " \n\t\n", [])).toBe("only out");
  });

  it("has only the stderr part when stdout is empty", () => {
    expect(combineLogs("", "err\n", [])).toBe("[stderr]\nerr");
    expect(combineLogs("\n\n", "err", [])).toBe("[stderr]\nerr");
  });

  it("is empty when both are empty", () => {
    expect(combineLogs("", "", [])).toBe("");
  });

  it("keeps leading whitespace", () => {
    expect(combineLogs("  indented\n", "  e\n", [])).toBe("  indented\n[stderr]\n  e");
  });

  it("masks known values and token shapes in both streams", () => {
    expect(combineLogs("token is hunter22\n", "auth hvs.abcdefghijklmnopqrstuvwx failed\n", ["hunter22"])).toBe(
      "token is [redacted]\n[stderr]\nauth [redacted-token] failed",
    );
  });
});

describe("createResultWriter", () => {
  it("does nothing on an empty flush", async () => {
    const w = writer();
    expect(await w.flush()).toEqual({ written: [], skipped: [], failed: [], rejections: 0 });
    expect(repo.calls).toEqual([]);
  });

  it("writes one result in one commit as pretty JSON with a trailing newline", async () => {
    const w = writer();
    w.add(pending("a"));
    expect(w.size()).toBe(1);
    expect(await w.flush()).toEqual({ written: ["a"], skipped: [], failed: [], rejections: 0 });
    expect(repo.calls).toHaveLength(1);
    expect(repo.calls[0]!.message).toBe("vault: result for a");
    expect(repo.calls[0]!.files).toEqual([{ path: "vault/actions/a.result.json", content: `${JSON.stringify(result("a"), null, 2)}\n` }]);
    expect(JSON.parse(repo.files.get("vault/actions/a.result.json")!)).toEqual(result("a"));
    expect(w.size()).toBe(0);
  });

  it("batches several results into one commit, in the order they were added", async () => {
    const w = writer();
    w.add(pending("a"));
    w.add(pending("b"));
    expect(await w.flush()).toEqual({ written: ["a", "b"], skipped: [], failed: [], rejections: 0 });
    expect(repo.calls).toHaveLength(1);
    expect(repo.calls[0]!.message).toBe("vault: results for a, b");
    expect(repo.calls[0]!.files.map((f) => f.path)).toEqual(["vault/actions/a.result.json", "vault/actions/b.result.json"]);
  });

  it("keeps only the latest result when the same id is added twice", async () => {
    const w = writer();
    w.add(pending("a", { attempts: 1 }));
    w.add(pending("a", { attempts: 2 }));
    expect(w.size()).toBe(1);
    await w.flush();
    expect(repo.calls[0]!.message).toBe("vault: result for a");
    expect(JSON.parse(repo.files.get("vault/actions/a.result.json")!).attempts).toBe(2);
  });

  it("writes the log file only when the result names one, before the result", async () => {
    const w = writer();
    w.add(pending("a", {}, "full output of a"));
    w.add(pending("b", { log_file: "vault/actions/b.log" }, "full output of b"));
    await w.flush();
    expect(repo.calls[0]!.files).toEqual([
      { path: "vault/actions/a.result.json", content: expect.any(String) },
      { path: "vault/actions/b.log", content: "full output of b" },
      { path: "vault/actions/b.result.json", content: expect.any(String) },
    ]);
    expect(repo.files.has("vault/actions/a.log")).toBe(false);
  });

  it("caps the log file to maxLogBytes, keeping the tail", async () => {
    const w = writer(10);
    const full = `${"x".repeat(50)}0123456789`;
    w.add(pending("a", { log_file: "vault/actions/a.log" }, full));
    await w.flush();
    expect(repo.files.get("vault/actions/a.log")).toBe("0123456789");
  });

  it("caps the log file at a character boundary", async () => {
    const w = writer(5);
    w.add(pending("a", { log_file: "vault/actions/a.log" }, "head €€")); // each € is 3 bytes
    await w.flush();
    expect(repo.files.get("vault/actions/a.log")).toBe("€");
  });

  it("keeps results queued when the push fails, and a later flush writes them", async () => {
    const w = writer();
    w.add(pending("a"));
    w.add(pending("b"));
    repo.failNext = 1;
    await expect(w.flush()).rejects.toThrow("push rejected: remote unreachable");
    expect(w.size()).toBe(2);
    expect(repo.files.size).toBe(0);
    // still ours to write, not yet recorded
    expect(w.holds("a")).toBe(true);

    w.add(pending("c"));
    expect(await w.flush()).toEqual({ written: ["a", "b", "c"], skipped: [], failed: [], rejections: 0 });
    expect(w.size()).toBe(0);
    expect(repo.calls.map((c) => c.message)).toEqual(["vault: results for a, b", "vault: results for a, b, c"]);
    expect([...repo.files.keys()].sort()).toEqual([
      "vault/actions/a.result.json",
      "vault/actions/b.result.json",
      "vault/actions/c.result.json",
    ]);
  });

  it("holds ids queued or already written by this process, not others", async () => {
    const w = writer();
    expect(w.holds("a")).toBe(false);
    w.add(pending("a"));
    expect(w.holds("a")).toBe(true);
    await w.flush();
    expect(w.size()).toBe(0);
    expect(w.holds("a")).toBe(true);
    expect(w.holds("b")).toBe(false);
  });

  it("forgets the oldest pushed ids past its bound, never one the repo refused", async () => {
    const w = writer(1024, 2);
    repo.refuse.add(`${DIR}/x.result.json`);
    for (const id of ["x", "a", "b", "c"]) {
      w.add(pending(id));
      await w.flush();
    }
    expect(["x", "a", "b", "c"].map((id) => w.holds(id))).toEqual([true, false, true, true]);
  });

  it("reports and logs a result that already existed upstream, and still writes the others", async () => {
    repo.files.set("vault/actions/b.result.json", '{"id":"b","exit_code":0}\n');
    const w = writer();
    w.add(pending("a"));
    w.add(pending("b"));
    expect(await w.flush()).toEqual({ written: ["a"], skipped: ["b"], failed: [], rejections: 0 });
    // upstream content untouched
    expect(repo.files.get("vault/actions/b.result.json")).toBe('{"id":"b","exit_code":0}\n');
    expect(w.size()).toBe(0);
    expect(w.holds("b")).toBe(true);
    const warns = lines.filter((l) => l.level === 40);
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatchObject({ action: "b", msg: "a result already existed upstream; ours was not written (never overwrite)" });
  });

  it("does not count a skipped log file as a skipped result", async () => {
    repo.files.set("vault/actions/a.log", "old log");
    const w = writer();
    w.add(pending("a", { log_file: "vault/actions/a.log" }, "new log"));
    expect(await w.flush()).toEqual({ written: ["a"], skipped: [], failed: [], rejections: 0 });
    expect(repo.files.get("vault/actions/a.log")).toBe("old log");
    expect(lines.filter((l) => l.level === 40)).toEqual([]);
  });

  it("logs nothing at warn for a clean flush", async () => {
    const w = writer();
    w.add(pending("a"));
    await w.flush();
    expect(lines.filter((l) => (l.level as number) >= 40)).toEqual([]);
  });
});
