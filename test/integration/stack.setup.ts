// Integration tests run on the real dev stack. make test starts it; run alone, this setup starts
// it too (building what is missing) and stops it afterwards. It never skips.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

const root = new URL("../..", import.meta.url).pathname;

export default function setup(): () => void {
  // jobs run dist/runner/main.js and CLI tests run dist/dispatcher.mjs: never test a stale build
  execFileSync("npm", ["run", "-s", "build"], { cwd: root, stdio: "inherit" });
  const running = existsSync(`${root}.dev/env`) && execFileSync("bash", [`${root}scripts/stack.sh`, "status"]).toString().includes("nomad: running");
  // a stack left running from an older checkout gets this checkout's jobspecs
  execFileSync("bash", [`${root}scripts/stack.sh`, running ? "register" : "up"], { stdio: "inherit" });
  // DEV_FORGE=1 (make test): Gitea too; `up` started it, a running stack gets it added
  if (process.env.DEV_FORGE === "1" && !execFileSync("bash", [`${root}scripts/stack.sh`, "status"]).toString().includes("gitea: running")) {
    execFileSync("bash", [`${root}scripts/stack.sh`, "forge", "up"], { stdio: "inherit" });
  }
  return () => {
    if (!running) execFileSync("bash", [`${root}scripts/stack.sh`, "down"], { stdio: "inherit" });
  };
}
