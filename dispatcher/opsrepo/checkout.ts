import { dirname } from "node:path";
import { runGit } from "./exec.js";

/** A detached working tree of `remote` at `commit` in `dir` (used by the runner inside the job). */
export async function checkoutAt(remote: string, commit: string, dir: string): Promise<void> {
  await runGit(dirname(dir), ["clone", "--quiet", "--no-checkout", remote, dir]);
  await runGit(dir, ["checkout", "--quiet", "--detach", commit]);
}
