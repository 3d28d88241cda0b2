// The ops remote's side of the dispatcher's git calls, measured apart (bench/remote-side.sh): over
// a local path it runs as the dispatcher's child, deployed it is the git server's work.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./settings.js";

const REMOTE_SIDE = join(ROOT, "bench/remote-side.sh");

/**
 * git's configuration from the environment: every fetch, ls-remote and push through the clone's
 * `origin` runs the remote's side through the wrapper, which adds its CPU to `file`.
 */
export function remoteSideEnv(file: string): NodeJS.ProcessEnv {
  return {
    GIT_CONFIG_COUNT: "2",
    GIT_CONFIG_KEY_0: "remote.origin.receivepack",
    GIT_CONFIG_VALUE_0: `${REMOTE_SIDE} receive-pack`,
    GIT_CONFIG_KEY_1: "remote.origin.uploadpack",
    GIT_CONFIG_VALUE_1: `${REMOTE_SIDE} upload-pack`,
    BENCH_REMOTE_CPU_FILE: file,
  };
}

/** CPU the remote's side has used so far, ms: the `times` of each call, summed */
export function readRemoteMs(file: string): number {
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  return [...text.matchAll(/(\d+)m([\d.]+)s/g)].reduce((sum, m) => sum + (Number(m[1]) * 60 + Number(m[2])) * 1000, 0);
}
