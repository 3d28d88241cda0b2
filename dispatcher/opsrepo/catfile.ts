// One long-lived `git cat-file --batch-command` per clone: a blob read or a path lookup is a line
// on its stdin, not a process.

import { spawn, type ChildProcess } from "node:child_process";
import { GitError } from "../errors.js";
import { buildEnv, holdOpen } from "./exec.js";

export interface CatFile {
  /** the object named `name` (`<sha>` or `<commit>:<path>`): its type and bytes, undefined when missing */
  read(name: string): Promise<{ type: string; content: Buffer } | undefined>;
  /** the object's id and type without its bytes (a tree of 10,000 entries costs nothing), undefined when missing */
  info(name: string): Promise<{ sha: string; type: string; size: number } | undefined>;
}

interface Pending {
  /** `contents` answers carry the bytes; `info` answers are the header alone */
  withContent: boolean;
  resolve(v: { sha: string; type: string; size: number; content: Buffer } | undefined): void;
  reject(e: Error): void;
}

export function createCatFile(cwd: string): CatFile {
  let child: ChildProcess | undefined;
  let buffered: Buffer = Buffer.alloc(0);
  const waiting: Pending[] = [];

  function fail(err: Error): void {
    child = undefined;
    buffered = Buffer.alloc(0);
    for (const p of waiting.splice(0)) p.reject(err);
  }

  /** Answers in request order: "<sha> <type> <size>\n<bytes>\n" or "<name> missing\n". */
  function drain(): void {
    while (waiting.length > 0) {
      const eol = buffered.indexOf(10);
      if (eol < 0) return;
      const header = buffered.subarray(0, eol).toString("utf8");
      if (header.endsWith(" missing") || header.endsWith(" ambiguous")) {
        buffered = buffered.subarray(eol + 1);
        waiting.shift()!.resolve(undefined);
        continue;
      }
      const [sha = "", type = "", size = ""] = header.split(" ");
      const length = Number(size);
      if (!Number.isSafeInteger(length)) return fail(new GitError(`git cat-file --batch-command in ${cwd}: unexpected answer ${JSON.stringify(header.slice(0, 200))}`));
      if (!waiting[0]!.withContent) {
        buffered = buffered.subarray(eol + 1);
        waiting.shift()!.resolve({ sha, type, size: length, content: Buffer.alloc(0) });
        continue;
      }
      if (buffered.length < eol + 1 + length + 1) return;
      const content = Buffer.from(buffered.subarray(eol + 1, eol + 1 + length));
      buffered = buffered.subarray(eol + 1 + length + 1);
      waiting.shift()!.resolve({ sha, type, size: length, content });
    }
    idle();
  }

  function idle(): void {
    if (waiting.length === 0) holdOpen(child, false);
  }

  function start(): ChildProcess {
    const c = spawn("git", ["cat-file", "--batch-command"], { cwd, env: buildEnv(), stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    c.stdout!.on("data", (d: Buffer) => {
      buffered = buffered.length === 0 ? d : Buffer.concat([buffered, d]);
      drain();
    });
    c.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    (c.stderr as unknown as { unref?: () => void }).unref?.(); // never a reason to stay alive
    c.stdin!.on("error", () => undefined); // the exit below reports it
    c.on("error", (e) => fail(new GitError(`cannot run git cat-file --batch-command in ${cwd}: ${e.message}`, { cause: e })));
    c.on("close", (code) => {
      if (child === c) fail(new GitError(`git cat-file --batch-command in ${cwd} exited (${code}): ${stderr.trim()}`));
    });
    c.unref();
    return c;
  }

  function ask(command: "contents" | "info", name: string): Promise<{ sha: string; type: string; size: number; content: Buffer } | undefined> {
    // the protocol is line-based: a name with a newline cannot be asked this way
    if (name.includes("\n")) return Promise.reject(new GitError(`cannot look up ${JSON.stringify(name)}: a newline in an object name`));
    child ??= start();
    holdOpen(child, true);
    const c = child;
    return new Promise((resolve, reject) => {
      waiting.push({ withContent: command === "contents", resolve, reject });
      c.stdin!.write(`${command} ${name}\n`);
    });
  }

  return {
    read: async (name) => {
      const o = await ask("contents", name);
      return o && { type: o.type, content: o.content };
    },
    info: async (name) => {
      const o = await ask("info", name);
      return o && { sha: o.sha, type: o.type, size: o.size };
    },
  };
}
