// The dev stack's Gitea as the forge tests use it: an ops repo of their own (scripts/forge.sh repo:
// seeded, deploy key, bot collaborator, push webhook), the operator's pull requests made and merged
// through Gitea's API and git over HTTP, and Gitea's own delivery history (its sqlite database).
import { execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { stackEnv } from "./stack.js";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;
const dev = join(root, ".dev");

export interface ForgeEnv {
  FORGE_URL: string;
  FORGE_KNOWN_HOSTS: string;
  FORGE_BOT_TOKEN_FILE: string;
  FORGE_WEBHOOK_SECRET_FILE: string;
  adminToken: string;
  operatorToken: string;
  /** .dev/forge: the users' token files */
  dir: string;
}

export function forgeEnv(): ForgeEnv {
  const env = stackEnv() as unknown as Record<string, string>;
  if (!env.FORGE_URL) throw new Error("the dev stack runs without its forge: start it with DEV_FORGE=1 make up, or scripts/stack.sh forge up (make test does)");
  const token = (name: string) => readFileSync(join(dev, "forge", `${name}-token`), "utf8").trim();
  return {
    FORGE_URL: env.FORGE_URL,
    FORGE_KNOWN_HOSTS: env.FORGE_KNOWN_HOSTS!,
    FORGE_BOT_TOKEN_FILE: env.FORGE_BOT_TOKEN_FILE!,
    FORGE_WEBHOOK_SECRET_FILE: env.FORGE_WEBHOOK_SECRET_FILE!,
    adminToken: token("admin"),
    operatorToken: token("operator"),
    dir: join(dev, "forge"),
  };
}

export interface ForgeRepo {
  /** owner/name */
  repo: string;
  /** ssh://git@127.0.0.1:<port>/owner/name.git: the dispatcher's remote (deploy key) */
  remote: string;
  /** git://… of the stack's read-only git daemon: the runners' remote */
  runnerRemote: string;
  /** the dispatcher's environment for this repo on the forge */
  env: Record<string, string>;
}

/** A free loopback port (for a listener whose URL the webhook needs before it starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export async function createForgeRepo(name: string, hookUrl: string): Promise<ForgeRepo> {
  const { stdout } = await run(join(root, "scripts/forge.sh"), ["repo", dev, name, hookUrl], { env: { ...process.env } });
  const made = JSON.parse(stdout) as { repo: string; remote: string; path: string };
  const f = forgeEnv();
  const runnerRemote = `${stackEnv().GIT_DAEMON_URL}/${made.path.slice(stackEnv().GIT_SERVED_DIR.length + 1)}`;
  return {
    repo: made.repo,
    remote: made.remote,
    runnerRemote,
    env: {
      DISPATCHER_RUNNER_REMOTE: runnerRemote,
      DISPATCHER_GIT_KNOWN_HOSTS: f.FORGE_KNOWN_HOSTS,
      DISPATCHER_FORGE_URL: f.FORGE_URL,
      DISPATCHER_FORGE_REPO: made.repo,
      DISPATCHER_FORGE_TOKEN_FILE: f.FORGE_BOT_TOKEN_FILE,
      DISPATCHER_WEBHOOK_SECRET_FILE: f.FORGE_WEBHOOK_SECRET_FILE,
    },
  };
}

/** Gitea's API with a user's token (the operator's by default). */
export async function forgeApi<T = unknown>(method: string, path: string, body?: unknown, token = forgeEnv().operatorToken): Promise<T> {
  const res = await fetch(`${forgeEnv().FORGE_URL}/api/v1${path}`, {
    method,
    headers: { Authorization: `token ${token}`, "Content-Type": "application/json", Accept: "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`gitea ${method} ${path}: HTTP ${res.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

/** The operator's git: over HTTP, the token in a header from the environment (never a URL or argv). */
async function operatorGit(cwd: string, args: string[]): Promise<string> {
  const basic = Buffer.from(`operator:${forgeEnv().operatorToken}`).toString("base64");
  const { stdout } = await run("git", ["-c", "user.name=operator", "-c", "user.email=operator@forge.test", "-c", "commit.gpgsign=false", ...args], {
    cwd,
    env: { ...process.env, GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: "http.extraHeader", GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`, GIT_TERMINAL_PROMPT: "0" },
  });
  return stdout.trim();
}

/** Commits `files` as the operator on `branch` (made from main when new) and pushes it; returns the new head. */
export async function operatorPush(repo: string, branch: string, files: Record<string, string>, message: string): Promise<string> {
  const work = join(await mkdtemp(join(tmpdir(), "forge-push-")), "w");
  await operatorGit(tmpdir(), ["clone", "--quiet", `${forgeEnv().FORGE_URL}/${repo}.git`, work]);
  const exists = await operatorGit(work, ["ls-remote", "--heads", "origin", branch]);
  await operatorGit(work, exists ? ["checkout", "--quiet", branch] : ["checkout", "--quiet", "-b", branch]);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(work, path)), { recursive: true });
    await writeFile(join(work, path), content, { mode: path.endsWith(".sh") ? 0o755 : 0o644 });
  }
  await operatorGit(work, ["add", "-A"]);
  await operatorGit(work, ["commit", "--quiet", "-m", message]);
  await operatorGit(work, ["push", "--quiet", "origin", branch]);
  return operatorGit(work, ["rev-parse", "HEAD"]);
}

/** Opens a pull request from a new branch carrying `files`; returns its number and head commit. */
export async function openPullRequest(repo: string, branch: string, files: Record<string, string>, title: string): Promise<{ number: number; head: string }> {
  const head = await operatorPush(repo, branch, files, title);
  // Gitea records a pushed branch from a queue: right after the push it may not know the head yet (404)
  for (let i = 0; ; i++) {
    try {
      const pr = await forgeApi<{ number: number }>("POST", `/repos/${repo}/pulls`, { head: branch, base: "main", title });
      return { number: pr.number, head };
    } catch (err) {
      if (i >= 40 || !/HTTP 404/.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** A forge user made by the admin (a fixture), with a token of the given scopes. */
export async function createForgeUser(name: string, scopes: string[]): Promise<string> {
  const password = `pw-${Math.random().toString(36).slice(2)}-${Date.now()}`;
  await forgeApi("POST", "/admin/users", { username: name, email: `${name}@forge.test`, password, must_change_password: false }, forgeEnv().adminToken);
  const res = await fetch(`${forgeEnv().FORGE_URL}/api/v1/users/${name}/tokens`, {
    method: "POST",
    headers: { Authorization: `Basic ${Buffer.from(`${name}:${password}`).toString("base64")}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "test", scopes }),
  });
  if (!res.ok) throw new Error(`gitea token for ${name}: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { sha1: string }).sha1;
}

/** Merges the pull request (a merge commit) and returns the commit its merge made. */
export async function mergePullRequest(repo: string, pr: number): Promise<string> {
  // Gitea checks mergeability in the background: a merge right after opening can be refused
  for (let i = 0; ; i++) {
    try {
      await forgeApi("POST", `/repos/${repo}/pulls/${pr}/merge`, { Do: "merge" });
      break;
    } catch (err) {
      if (i >= 20) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const merged = await forgeApi<{ merged: boolean; merge_commit_sha: string }>("GET", `/repos/${repo}/pulls/${pr}`);
  if (!merged.merged) throw new Error(`pull request #${pr} of ${repo} is not merged`);
  return merged.merge_commit_sha;
}

export interface StatusSeen {
  id: number;
  context: string;
  status: string;
  description: string;
}

/** Every status set on `commit`, oldest first (Gitea's list is newest first). */
export async function statusesOf(repo: string, commit: string): Promise<StatusSeen[]> {
  const list = await forgeApi<StatusSeen[]>("GET", `/repos/${repo}/statuses/${commit}?limit=50`);
  return list.sort((a, b) => a.id - b.id).map(({ id, context, status, description }) => ({ id, context, status, description }));
}

export async function commentsOf(repo: string, pr: number): Promise<{ id: number; body: string; user: { login: string } }[]> {
  return forgeApi("GET", `/repos/${repo}/issues/${pr}/comments`);
}

export interface Delivery {
  uuid: string;
  event: string;
  delivered: boolean;
  succeeded: boolean;
  /** the HTTP status our listener answered */
  status: number;
}

/** Gitea's delivery history of the repo's webhooks, as its settings page shows it (read from its database). */
export async function deliveriesOf(repo: string): Promise<Delivery[]> {
  const [owner, name] = repo.split("/");
  const sql = `select t.uuid, t.event_type, t.is_delivered, t.is_succeed, t.response_content from hook_task t join webhook w on w.id = t.hook_id join repository r on r.id = w.repo_id join user u on u.id = r.owner_id where u.lower_name = '${owner!.toLowerCase()}' and r.lower_name = '${name!.toLowerCase()}' order by t.id`;
  const { stdout } = await run("sqlite3", ["-readonly", "-json", "-cmd", ".timeout 10000", join(dev, "forge/data/gitea.db"), sql]);
  const rows = (stdout.trim() ? JSON.parse(stdout) : []) as { uuid: string; event_type: string; is_delivered: number; is_succeed: number; response_content: string }[];
  return rows.map((r) => ({
    uuid: r.uuid,
    event: r.event_type,
    delivered: r.is_delivered === 1,
    succeeded: r.is_succeed === 1,
    status: r.response_content ? ((JSON.parse(r.response_content) as { status?: number }).status ?? 0) : 0,
  }));
}

/** Stops the stack's Gitea (its API and its SSH git server alike), and starts it again on its state. */
/**
 * Gitea is one per stack and the integration files run two at a time: a file that uses it holds
 * the stack's Gitea lock shared for its whole run, and the test that stops Gitea holds it alone,
 * so no other file sees Gitea away. `flock` holds it in a child reading our stdin: a test process
 * that dies lets it go.
 */
function holdGiteaLock(mode: "--shared" | "--exclusive"): Promise<() => void> {
  const file = join(dev, "gitea.lock");
  const child = spawn("flock", [mode, file, "-c", "echo held; read -r _"], { stdio: ["pipe", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.stdout.once("data", () => resolve(() => void child.stdin.end()));
    child.once("exit", (code) => reject(new Error(`flock ${mode} ${file} exited with ${code} before taking the lock`)));
  });
}

/** For a file that uses Gitea: while held, nobody stops it. Returns the release. */
export const holdGitea = () => holdGiteaLock("--shared");

/** For the test that stops Gitea: waits until no other file uses it. Returns the release. */
export const holdGiteaAlone = () => holdGiteaLock("--exclusive");

export async function stopGitea(): Promise<void> {
  await run(join(root, "scripts/forge.sh"), ["down", dev]);
}

export async function startGitea(): Promise<void> {
  const port = new URL(forgeEnv().FORGE_URL).port;
  await run(join(root, "scripts/forge.sh"), ["up", dev, port]);
}
