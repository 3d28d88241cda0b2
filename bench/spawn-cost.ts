// Node's own CPU per git process, through the clone's idle sync (one `ls-remote` each), in a
// process of a daemon's size: node starts a process with fork(), which copies its page tables, so
// the cost grows with its memory; opsrepo/launcher.ts starts the hot calls from a small shell.
//   node dist/bench/spawn-cost.js [MB of ballast, default 40] [build dir, default this one's dist]
// e.g. an older build (a `git archive` of an older commit, built with `npm run build`) beside this
// one, alternating: bench/README.md, "The dispatcher's own CPU".
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { pino } from "pino";
import type { createGitOpsRepo as Create } from "../opsrepo/git.js";

const SYNCS = 60;
const ballastMb = Number(process.argv[2] ?? 40);
const build = process.argv[3] ? join(process.argv[3], "opsrepo/git.js") : new URL("../opsrepo/git.js", import.meta.url).pathname;
const { createGitOpsRepo } = (await import(pathToFileURL(build).href)) as { createGitOpsRepo: typeof Create };
// a daemon's heap: strings kept alive
const ballast: string[] = [];
for (let i = 0; i < ballastMb; i++) ballast.push(Buffer.alloc(1 << 20, 1).toString("latin1"));
const dir = mkdtempSync(join(tmpdir(), "spawn-cost-"));
const remote = join(dir, "ops.git");
execFileSync("git", ["init", "-q", "--bare", "-b", "main", remote]);
execFileSync("git", ["clone", "-q", remote, join(dir, "seed")], { stdio: "ignore" });
execFileSync("git", ["-C", join(dir, "seed"), "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-q", "--allow-empty", "-m", "seed"]);
execFileSync("git", ["-C", join(dir, "seed"), "push", "-q", "origin", "HEAD:main"], { stdio: "ignore" });
const repo = createGitOpsRepo({ remote, branch: "main", workdir: join(dir, "clone"), author: { name: "bench", email: "bench@example.com" }, log: pino({ level: "silent" }) });
await repo.sync();
for (let i = 0; i < 10; i++) await repo.sync();
const before = process.cpuUsage();
for (let i = 0; i < SYNCS; i++) await repo.sync();
const used = process.cpuUsage(before);
process.stdout.write(`${build}: RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB, node CPU per idle sync (one ls-remote) ${((used.user + used.system) / 1000 / SYNCS).toFixed(2)} ms (${ballast.length} MB ballast)\n`);
rmSync(dir, { recursive: true, force: true });
process.exit(0);
