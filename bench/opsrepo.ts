// Bench ops repos, written with `git fast-import` straight into a bare repo: ten thousand
// actions with results are one quick commit, and a new batch of actions is one more.
import { spawn } from "node:child_process";
import { runGit } from "../opsrepo/exec.js";

export const NOOP_FORMULA = "#!/usr/bin/env bash\necho ok\n";

// in every action: a rerun on the same stack must not match the idempotency token (id, blob,
// attempt) of an earlier run's child, or the dispatcher would re-attach to it instead of running
export const RUN = Date.now().toString(36);

export function actionToml(id: string, formula: string, secrets: readonly string[] = []): string {
  return `id = "${id}"\nformula = "${formula}"\ncontext = "bench run ${RUN}"\nsecrets = ${tomlStrings(secrets)}\n`;
}

/** A TOML array of strings (JSON's string escapes are TOML's basic-string escapes). */
export function tomlStrings(xs: readonly string[]): string {
  return `[${xs.map((x) => JSON.stringify(x)).join(", ")}]`;
}

export async function createBareRepo(path: string, files: Record<string, string>): Promise<string> {
  await runGit("/", ["init", "--quiet", "--bare", "--initial-branch=main", path]);
  // a forge packs in its own housekeeping (packRepo, before each round), not inside every push:
  // receive-pack's `gc --auto` would add a process per result push to the machine the rounds share
  await runGit(path, ["config", "receive.autogc", "false"]);
  return commitFiles(path, files, "bench: seed");
}

/** One commit on main with `files` added; returns the new tip. */
export async function commitFiles(repo: string, files: Record<string, string>, message: string): Promise<string> {
  const parent = (await runGit(repo, ["for-each-ref", "--format=%(objectname)", "refs/heads/main"])).toString().trim();
  const chunks: Buffer[] = [];
  const data = (text: string) => {
    const b = Buffer.from(text);
    chunks.push(Buffer.from(`data ${b.length}\n`), b, Buffer.from("\n"));
  };
  chunks.push(Buffer.from(`commit refs/heads/main\ncommitter bench <bench@localhost> ${Math.floor(Date.now() / 1000)} +0000\n`));
  data(message);
  if (parent) chunks.push(Buffer.from(`from ${parent}\n`));
  for (const [path, content] of Object.entries(files)) {
    chunks.push(Buffer.from(`M 100644 inline ${path}\n`));
    data(content);
  }
  await fastImport(repo, Buffer.concat(chunks));
  return headOf(repo);
}

/**
 * Packs the repo as a forge's housekeeping would. Every runner child clones it: from hundreds of
 * loose objects (small pushes are stored unpacked) a clone took 3–4 s instead of 0.4 s, so the
 * rounds slowed down as the repo grew, whoever ran. Each contender's run starts from a packed repo.
 */
export async function packRepo(repo: string): Promise<void> {
  await runGit(repo, ["repack", "-adq"]);
}

/** The tip of main. */
export async function headOf(repo: string): Promise<string> {
  return (await runGit(repo, ["rev-parse", "refs/heads/main"])).toString().trim();
}

/** Blob id of `path` at `commit`. */
export async function blobSha(repo: string, commit: string, path: string): Promise<string> {
  return (await runGit(repo, ["rev-parse", `${commit}:${path}`])).toString().trim();
}

function fastImport(repo: string, stream: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const git = spawn("git", ["fast-import", "--quiet"], { cwd: repo, stdio: ["pipe", "ignore", "pipe"] });
    let err = "";
    git.stderr.on("data", (d: Buffer) => (err += d.toString()));
    git.on("error", reject);
    git.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`git fast-import exited ${code}: ${err.trim()}`))));
    git.stdin.end(stream);
  });
}
