// An ops repo in memory for unit tests of the loop and the pass: one commit per write, blob ids
// from the content, no history.
import type { OpsRepoPort, RepoFile } from "../../dispatcher/core/ports.js";

/** An ops repo in memory: one commit per write, blob ids from the content. */
export function memoryRepo(files: Record<string, string>) {
  const tree = new Map<string, Buffer>(Object.entries(files).map(([p, c]) => [p, Buffer.from(c)]));
  let commit = 1;
  const commits: { message: string; paths: string[] }[] = [];
  const sha = (b: Buffer) => `b${b.toString("hex").slice(0, 12)}${b.length}`;
  const port: OpsRepoPort = {
    provenance: async () => ({ path: "", later: [] }),
    sync: async () => `c${commit}`,
    listFiles: async (_c, dir) => [...tree].filter(([p]) => p.startsWith(`${dir}/`)).map(([path, b]) => ({ path, sha: sha(b), size: b.length })),
    diffFiles: async () => undefined,
    readFile: async (_c, path) => tree.get(path),
    // no history in memory: only a commit is its own
    sameCodeAs: async (from, to) => from === to,
    async writeFiles(written: RepoFile[], message) {
      const skipped = written.filter((f) => tree.has(f.path)).map((f) => f.path);
      for (const f of written.filter((x) => !skipped.includes(x.path))) tree.set(f.path, f.content);
      commits.push({ message, paths: written.map((f) => f.path) });
      commit++;
      return { commit: `c${commit}`, base: `c${commit - 1}`, skipped, rejections: 0 };
    },
  };
  return { port, tree, commits };
}

