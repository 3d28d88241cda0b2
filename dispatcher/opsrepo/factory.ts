// The factory repository of disinto's layout: formulas/<f>.sh at the commit the dispatcher's
// config pins. Fetched once per process into its own bare repository (that commit alone), listed,
// and never written; the runner fetches the same commit and checks it is the one it runs.
import { mkdir } from "node:fs/promises";
import type { FactoryPort } from "../core/ports.js";
import { redactUrls, runGit, sshConfigArgs, type SshCredential } from "./exec.js";

const FORMULA = /^formulas\/([^/]+)\.sh$/;

export function createFactoryFormulas(opts: { remote: string; commit: string; dir: string; ssh?: SshCredential }): FactoryPort {
  let listed: Promise<ReadonlySet<string>> | undefined;
  const list = async (): Promise<ReadonlySet<string>> => {
    await mkdir(opts.dir, { recursive: true });
    await runGit(opts.dir, ["init", "--quiet", "--bare"]);
    // the pinned commit, never a branch: what a push to the factory adds is not fetched
    const have = await runGit(opts.dir, ["cat-file", "-e", `${opts.commit}^{commit}`]).then(
      () => true,
      () => false,
    );
    if (!have) await runGit(opts.dir, [...sshConfigArgs(opts.ssh), "fetch", "--quiet", "--depth", "1", opts.remote, opts.commit]);
    const names = (await runGit(opts.dir, ["ls-tree", "--name-only", "-z", opts.commit, "formulas/"])).toString("utf8").split("\0");
    return new Set(names.flatMap((n) => FORMULA.exec(n)?.slice(1, 2) ?? []));
  };
  return {
    where: `the factory repository ${redactUrls(opts.remote)} at ${opts.commit.slice(0, 12)}`,
    formulas() {
      // a failed fetch (the factory unreachable) is tried again by the next pass
      listed ??= list().catch((err: unknown) => {
        listed = undefined;
        throw err;
      });
      return listed;
    },
  };
}
