// What the forge reports read of the dispatcher's clone: which commit brought a file to the
// branch, and a pushed result as it stands at the remote-tracking tip.
// Along first parents: on a branch that takes pull requests the commit that brought a file is the
// merge (or squash) commit, the one the forge knows as the pull request's.
import type { RepoHistoryPort } from "../core/ports.js";
import { outsideSpec, runGit, tryGit } from "./exec.js";

export function createRepoHistory(workdir: string, branch: string): RepoHistoryPort {
  return {
    async lastChange(commit, path, outside) {
      const spec = outside === undefined ? [path] : outsideSpec(outside);
      const out = (await runGit(workdir, ["log", "-1", "--first-parent", "--format=%H", commit, "--", ...spec])).toString("utf8").trim();
      return out || undefined;
    },
    async readAtTip(path) {
      const run = await tryGit(workdir, ["cat-file", "blob", `refs/remotes/origin/${branch}:${path}`]);
      return run.code === 0 ? run.stdout : undefined;
    },
  };
}
