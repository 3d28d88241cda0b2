// Counts the git processes a dispatcher starts: a `git` first on its PATH that notes each call
// in a file, then runs the real git. Processes git starts itself (upload-pack, ssh) are not its.
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface GitCounter {
  /** environment for a dispatcher child whose git calls are noted in `file` */
  env(file: string): NodeJS.ProcessEnv;
  /** calls noted in `file` so far */
  count(file: string): number;
}

export function createGitCounter(dir: string): GitCounter {
  const real = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "git"), `#!/bin/sh\n[ -n "$BENCH_GIT_COUNT" ] && echo >> "$BENCH_GIT_COUNT"\nexec ${real} "$@"\n`);
  chmodSync(join(dir, "git"), 0o755);
  return {
    env: (file) => ({ PATH: `${dir}:${process.env.PATH ?? ""}`, BENCH_GIT_COUNT: file }),
    count: (file) => (existsSync(file) ? readFileSync(file, "utf8").length : 0),
  };
}
