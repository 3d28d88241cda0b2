// The runner jobspec's docker variant, run for real: the dev stack's third client (node pool
// "docker", runner class docker) has a Docker engine of its own (scripts/docker-engine.sh) and the
// class's parents are the docker variant, from an image built locally out of the task chroot and
// the runner bundle. A hostile formula there tries what the variant claims to stop — gaining
// privileges, writing the image, forking without bound, keeping capabilities — and each attempt
// fails; an action with a secret gets it, masked, as under exec.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createTestDispatcher, deleteSecret, grantSecret, uniq } from "../helpers/stack.js";

const u = uniq();
const SECRET = `DOCKER_${u.toUpperCase()}`;
const VALUE = `docker-secret-${u}`;
const ids = { walls: `walls-${u}`, forks: `forks-${u}`, secret: `secret-${u}` };
const action = (id: string, formula: string, extra = "") => `id = "${id}"\nformula = "${formula}"\ncontext = "docker variant"\nclass = "docker"\n${extra}`;
let remote: OpsRemote;
const results = new Map<string, ActionResult>();

const walls = `#!/usr/bin/env bash
echo "uid $(id -u)"
grep -E '^(NoNewPrivs|CapEff|CapPrm|CapBnd):' /proc/self/status | tr -s '\\t' ' '
if { echo x > /usr/bin/owned; } 2>/dev/null; then echo "image writable"; else echo "image read-only"; fi
if { echo x > "$HOME/scratch"; } 2>/dev/null; then echo "task dir writable"; else echo "task dir read-only"; fi
if t=$(mktemp 2>/dev/null) && echo x > "$t"; then echo "tmp writable"; else echo "tmp read-only"; fi
if [ -e /opt/dispatcher/runner.mjs ]; then echo "bundle in the image"; fi
if { echo x >> /opt/dispatcher/runner.mjs; } 2>/dev/null; then echo "bundle writable"; else echo "bundle read-only"; fi
`;

// forks until the kernel says no: every child is a sleeper, so all of them are alive at once
const forks = `#!/usr/bin/env bash
node -e '
const { spawn } = require("node:child_process");
let spawned = 0, refused = 0, done = 0;
const kids = [];
for (let i = 0; i < 400; i++) {
  const c = spawn("/usr/bin/sleep", ["30"], { stdio: "ignore" });
  c.on("spawn", () => { spawned++; kids.push(c); settle(); });
  c.on("error", (e) => { if (e.code === "EAGAIN") refused++; else console.log("other error " + e.code); settle(); });
}
function settle() {
  if (++done < 400) return;
  console.log(spawned < 256 && refused >= 144 ? "bounded" : "unbounded");
  console.error("spawned " + spawned + ", refused " + refused);
  for (const k of kids) k.kill("SIGKILL");
}
'
`;

beforeAll(async () => {
  await grantSecret(SECRET, VALUE);
  remote = await createOpsRemote({
    "formulas/walls.sh": walls,
    "formulas/forks.sh": forks,
    "formulas/secret.sh": `#!/usr/bin/env bash\necho "value: $${SECRET}"\n`,
    [`vault/actions/${ids.walls}.toml`]: action(ids.walls, "walls", "secrets = []\n"),
    [`vault/actions/${ids.forks}.toml`]: action(ids.forks, "forks", "secrets = []\n"),
    [`vault/actions/${ids.secret}.toml`]: action(ids.secret, "secret", `secrets = ["${SECRET}"]\n`),
  });
  const d = await createTestDispatcher(remote.remote, { DISPATCHER_SECRETS: SECRET });
  await d.loop.once();
  for (const id of Object.values(ids)) results.set(id, JSON.parse((await remote.read(`vault/actions/${id}.result.json`))!) as ActionResult);
}, 300_000);

afterAll(async () => {
  await deleteSecret(SECRET);
  await remote?.cleanup();
});

describe("the docker variant on a real Docker engine", () => {
  it("runs the class's children under docker on the docker node, through the class's parent", () => {
    const r = results.get(ids.walls)!;
    expect(r).toMatchObject({ status: "succeeded", exit_code: 0, node: "dev-docker" });
    expect(r.job_id).toMatch(/^runner\.docker\/dispatch-/);
  });

  it("runs the formula as nobody with no privileges to gain, no capabilities, a read-only image", () => {
    expect(results.get(ids.walls)!.logs.split("\n")).toEqual([
      "uid 65534",
      "CapPrm: 0000000000000000",
      "CapEff: 0000000000000000",
      "CapBnd: 0000000000000000",
      "NoNewPrivs: 1",
      "image read-only",
      "task dir writable",
      "tmp writable",
      "bundle in the image",
      "bundle read-only",
    ]);
  });

  it("bounds the processes a formula can start (pids limit 256)", () => {
    const r = results.get(ids.forks)!;
    expect(r).toMatchObject({ status: "succeeded", exit_code: 0 });
    expect(r.logs.split("\n")[0]).toBe("bounded");
    expect(r.logs).toMatch(/^spawned \d+, refused \d+$/m);
  });

  it("hands over the action's secret and masks it, as under exec", () => {
    const r = results.get(ids.secret)!;
    expect(r).toMatchObject({ status: "succeeded", exit_code: 0, node: "dev-docker", policies: [`runner-${SECRET.toLowerCase()}`] });
    expect(r.logs).toBe("value: [redacted]");
  });
});
