// Formulas run under the exec driver as nobody in a minimal chroot: a hostile formula granted
// nothing looks for the stack's credentials, other allocations, other tasks' environments and the
// runner's code, and writes to its read-only mounts. Each attempt must fail on the real stack.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createTestDispatcher, deleteSecret, dispatcherNomad, grantSecret, uniq } from "../helpers/stack.js";

const root = new URL("../..", import.meta.url).pathname;
const u = uniq();
const SECRET = `ISOLATION_${u.toUpperCase()}`;
const VALUE = `victim-value-${u}`;
const ids = { probe: `probe-${u}`, victim: `victim-${u}`, ssh: `ssh-${u}`, nossh: `nossh-${u}` };
const dev = join(root, ".dev");
/** what a formula must not reach on the host */
const HOST_PATHS = [join(dev, "env"), join(dev, "root-token"), join(dev, "nomad-management-token"), join(dev, "bao-data"), join(dev, "nomad-data"), "/etc/shadow", "/root", root];
let remote: OpsRemote;
let sshDir: string;

const probe = `#!/usr/bin/env bash
sleep 3 # the victim is running by now
for p in ${HOST_PATHS.join(" ")}; do
  if [ -e "$p" ]; then echo "visible $p"; else echo "absent $p"; fi
done
echo "uid $(id -u)"
echo "secret-bearing processes $(grep -l "${VALUE}" /proc/[0-9]*/environ 2>/dev/null | wc -l)"
# builtins only, so the scan sees no process of its own making
names=""; for p in /proc/[0-9]*; do read -r c < "$p/comm" 2>/dev/null && names="$names $c"; done
echo "processes:$names"
if { echo x >> /opt/dispatcher/runner.mjs; } 2>/dev/null; then echo "runner bundle writable"; else echo "runner bundle read-only"; fi
# the Vault side's chunks: code planted there would run in the next runner that holds a token
n=0; w=0
for f in /opt/dispatcher/chunks/*.mjs; do [ -f "$f" ] && n=$((n + 1)); { echo x >> "$f"; } 2>/dev/null && w=$((w + 1)); done
{ echo x > /opt/dispatcher/chunks/planted.mjs; } 2>/dev/null && w=$((w + 1))
echo "runner chunks $([ "$n" -gt 0 ] && echo present || echo absent), $w written"
echo "env:$(env | cut -d= -f1 | grep -E '^(NOMAD_TOKEN|VAULT_TOKEN|${SECRET})$' | sort | sed 's/^/ /' | tr -d '\\n')"
`;

async function result(id: string): Promise<ActionResult> {
  const text = await remote.read(`vault/actions/${id}.result.json`);
  if (!text) throw new Error(`no result for ${id}`);
  return JSON.parse(text) as ActionResult;
}

beforeAll(async () => {
  await grantSecret(SECRET, VALUE);
  sshDir = (await dispatcherNomad().hostVolumes()).get("ssh")!;
  await mkdir(sshDir, { recursive: true });
  await writeFile(join(sshDir, `known-${u}`), "a deploy key stand-in\n", { mode: 0o644 });
  remote = await createOpsRemote({
    "formulas/probe.sh": probe,
    "formulas/victim.sh": "#!/usr/bin/env bash\nsleep 20\necho done\n",
    "formulas/mounts.sh": `#!/usr/bin/env bash
if [ -d /mnt/ssh ]; then echo "MOUNT_SSH=\${MOUNT_SSH:-unset} $(cat /mnt/ssh/known-${u})"; else echo "no /mnt/ssh"; fi
if [ -d /mnt/ssh ]; then touch /mnt/ssh/written 2>&1 | sed 's/^.*: //'; fi
`,
    [`vault/actions/${ids.probe}.toml`]: `id = "${ids.probe}"\nformula = "probe"\ncontext = "hostile"\nsecrets = []\n`,
    [`vault/actions/${ids.victim}.toml`]: `id = "${ids.victim}"\nformula = "victim"\ncontext = "holds a secret"\nsecrets = ["${SECRET}"]\n`,
    [`vault/actions/${ids.ssh}.toml`]: `id = "${ids.ssh}"\nformula = "mounts"\ncontext = "reads ssh"\nsecrets = []\nmounts = ["ssh"]\n`,
    [`vault/actions/${ids.nossh}.toml`]: `id = "${ids.nossh}"\nformula = "mounts"\ncontext = "no mounts"\nsecrets = []\n`,
  });
  const d = await createTestDispatcher(remote.remote, { DISPATCHER_SECRETS: SECRET, DISPATCHER_MAX_IN_FLIGHT: "4" }, (v) => v);
  await d.loop.once();
}, 240_000);

afterAll(async () => {
  await deleteSecret(SECRET);
  await rm(join(sshDir, `known-${u}`), { force: true });
  await remote?.cleanup();
});

describe("a formula granted nothing", () => {
  it("sees none of the host's credentials, stores or project, runs as nobody, cannot see other tasks or write the runner", async () => {
    const r = await result(ids.probe);
    expect(r).toMatchObject({ status: "succeeded", exit_code: 0 });
    expect(r.logs.split("\n")).toEqual([
      ...HOST_PATHS.map((p) => `absent ${p}`),
      "uid 65534",
      "secret-bearing processes 0",
      // its own pid namespace: the runner (node) and this formula, nothing of the host or the victim
      "processes: node bash",
      "runner bundle read-only",
      "runner chunks present, 0 written",
      "env:",
    ]);
    expect((await result(ids.victim)).status).toBe("succeeded");
  });
});

describe("mounts", () => {
  it("a formula with mounts = [\"ssh\"] reads /mnt/ssh and cannot write it", async () => {
    const r = await result(ids.ssh);
    expect(r).toMatchObject({ status: "succeeded", exit_code: 0 });
    // what it read is masked: a mount's small files are key material, masked like secrets
    expect(r.logs).toBe("MOUNT_SSH=/mnt/ssh [redacted]\nRead-only file system");
  });

  it("a formula without mounts has no /mnt/ssh", async () => {
    const r = await result(ids.nossh);
    expect(r.logs).toBe("no /mnt/ssh");
  });
});
