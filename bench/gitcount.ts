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
  /** calls noted in `file` so far by git command (fetch, push, ls-remote, …) */
  commands(file: string): Map<string, number>;
}

/** a call's record: a separator (no argument holds it) and the arguments as the shell joins them */
const MARK = "\x1e";

/** The git command of a call's arguments: the first word that is no option (nor `-c`/`-C`'s value). */
export function commandOf(args: string): string {
  const words = args.split(" ");
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === "-c" || w === "-C") i++;
    else if (!w.startsWith("-")) return w;
  }
  return "(none)";
}

/** the calls noted in `file`, each its arguments (a newline inside one stays inside it) */
function calls(file: string): string[] {
  return existsSync(file) ? readFileSync(file, "utf8").split(MARK).slice(1) : [];
}

export function createGitCounter(dir: string): GitCounter {
  const real = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "git"), `#!/bin/sh\n[ -n "$BENCH_GIT_COUNT" ] && printf '\\036%s\\n' "$*" >> "$BENCH_GIT_COUNT"\nexec ${real} "$@"\n`);
  chmodSync(join(dir, "git"), 0o755);
  return {
    env: (file) => ({ PATH: `${dir}:${process.env.PATH ?? ""}`, BENCH_GIT_COUNT: file }),
    count: (file) => calls(file).length,
    commands(file) {
      const byCommand = new Map<string, number>();
      for (const c of calls(file)) byCommand.set(commandOf(c), (byCommand.get(commandOf(c)) ?? 0) + 1);
      return byCommand;
    },
  };
}
