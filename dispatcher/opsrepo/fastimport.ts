// One long-lived `git fast-import` per clone: a result commit is a few commands on its stdin, not a
// process (a fork of the dispatcher costs more CPU than the commit). `checkpoint` puts the objects
// on disk, as a pack, before the answer, so the push that follows sees them.

import { spawn, type ChildProcess } from "node:child_process";
import { GitError } from "../errors.js";
import { buildEnv, holdOpen } from "./exec.js";

export interface FastImportCommit {
  /** the branch the commit is built on */
  from: string;
  files: { path: string; content: Buffer }[];
  message: string;
  /** "Name <email> <epoch> +0000" */
  ident: string;
}

export interface FastImport {
  /** the new commit's id and each file's blob id, in order */
  commit(c: FastImportCommit): Promise<{ commit: string; blobs: string[] }>;
  /**
   * Ends the process once its commits are written; the next commit starts another. While it runs,
   * git keeps its packs (a .keep file each) out of gc, and its object table only grows.
   */
  close(): Promise<void>;
}

export function createFastImport(cwd: string): FastImport {
  let child: ChildProcess | undefined;
  let lines: string[] = [];
  let partial = "";
  let waiting: { count: number; resolve(lines: string[]): void; reject(e: Error): void } | undefined;

  function fail(err: Error): void {
    child = undefined;
    lines = [];
    partial = "";
    const w = waiting;
    waiting = undefined;
    w?.reject(err);
  }

  function drain(): void {
    if (!waiting || lines.length < waiting.count) return;
    const w = waiting;
    waiting = undefined;
    w.resolve(lines.splice(0, w.count));
    holdOpen(child, false);
  }

  function start(): ChildProcess {
    // Each checkpoint's pack is kept as written, uncompressed: with 20,000 entries in vault/actions
    // (a 1 MB tree) unpacking it into compressed loose objects cost 70 ms a commit, compressing
    // the pack 10 ms. The clone's `gc --auto` packs these packs into one (opsrepo/git.ts).
    const c = spawn("git", ["-c", "pack.compression=0", "-c", "fastimport.unpackLimit=0", "fast-import", "--quiet", "--force"], { cwd, env: buildEnv(), stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    c.stdout!.on("data", (d: Buffer) => {
      const parts = (partial + d.toString("utf8")).split("\n");
      partial = parts.pop() ?? "";
      lines.push(...parts);
      drain();
    });
    c.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    (c.stderr as unknown as { unref?: () => void }).unref?.();
    c.stdin!.on("error", () => undefined); // the exit below reports it
    c.on("error", (e) => fail(new GitError(`cannot run git fast-import in ${cwd}: ${e.message}`, { cause: e })));
    c.on("close", (code) => {
      if (child === c) fail(new GitError(`git fast-import in ${cwd} exited (${code}): ${stderr.trim().slice(0, 500)}`));
    });
    c.unref();
    return c;
  }

  return {
    commit(req) {
      if (waiting) return Promise.reject(new GitError("git fast-import: one commit at a time (the caller serializes writes)"));
      child ??= start();
      const c = child;
      holdOpen(c, true);
      const chunks: Buffer[] = [];
      const text = (t: string) => void chunks.push(Buffer.from(t));
      const data = (b: Buffer) => {
        text(`data ${b.length}\n`);
        chunks.push(b);
        text("\n");
      };
      // blobs first, each marked, so fast-import tells their ids (the next listing needs them)
      req.files.forEach((f, i) => {
        text(`blob\nmark :${i + 2}\n`);
        data(f.content);
      });
      text(`commit refs/dispatcher/write-${process.pid}\nmark :1\nauthor ${req.ident}\ncommitter ${req.ident}\n`);
      data(Buffer.from(req.message));
      text(`from ${req.from}\n`);
      req.files.forEach((f, i) => text(`M 100644 :${i + 2} ${f.path}\n`));
      // checkpoint: the pack on disk before the marks are told
      text(`\ncheckpoint\nget-mark :1\n${req.files.map((_, i) => `get-mark :${i + 2}\n`).join("")}`);
      return new Promise((resolve, reject) => {
        waiting = {
          count: req.files.length + 1,
          resolve: ([commit = "", ...blobs]) => resolve({ commit, blobs }),
          reject,
        };
        c.stdin!.write(Buffer.concat(chunks));
      });
    },

    close() {
      const c = child;
      if (!c || waiting) return Promise.resolve();
      child = undefined; // its exit is no failure now
      holdOpen(c, true);
      return new Promise((resolve) => {
        c.on("close", () => resolve());
        c.stdin!.end(); // fast-import ends cleanly at EOF
      });
    },
  };
}
