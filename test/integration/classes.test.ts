// Runner classes on the two-client dev stack: an action's class routes its child to the node pool
// of that name (the second client, pool "big"); actions without one never land there; a mount is
// checked against the nodes of the action's pool (big offers ssh only, from its own directory),
// and an unknown class is refused naming the configured ones — nothing dispatched for either.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { childrenByAction, createTestDispatcher, uniq } from "../helpers/stack.js";

const u = uniq();
const ids = { plain: `plain-${u}`, big: `big-${u}`, bigSsh: `big-ssh-${u}`, bigGpg: `big-gpg-${u}`, huge: `huge-${u}` };
const action = (id: string, extra = "") => `id = "${id}"\nformula = "where"\ncontext = "class routing"\nsecrets = []\n${extra}`;
let remote: OpsRemote;
const results = new Map<string, ActionResult>();

beforeAll(async () => {
  remote = await createOpsRemote({
    "formulas/where.sh": '#!/usr/bin/env bash\nif [ -n "${MOUNT_SSH:-}" ]; then cat "$MOUNT_SSH/where"; else echo "no mount"; fi\n',
    [`vault/actions/${ids.plain}.toml`]: action(ids.plain),
    [`vault/actions/${ids.big}.toml`]: action(ids.big, 'class = "big"\n'),
    [`vault/actions/${ids.bigSsh}.toml`]: action(ids.bigSsh, 'class = "big"\nmounts = ["ssh"]\n'),
    [`vault/actions/${ids.bigGpg}.toml`]: action(ids.bigGpg, 'class = "big"\nmounts = ["gpg"]\n'),
    [`vault/actions/${ids.huge}.toml`]: action(ids.huge, 'class = "huge"\n'),
  });
  const d = await createTestDispatcher(remote.remote);
  await d.loop.once();
  for (const id of Object.values(ids)) results.set(id, JSON.parse((await remote.read(`vault/actions/${id}.result.json`))!) as ActionResult);
}, 240_000);

afterAll(async () => {
  await remote?.cleanup();
});

describe("runner classes", () => {
  it("runs a class's action on a node of its pool, through the class's parent", async () => {
    expect(results.get(ids.big)).toMatchObject({ status: "succeeded", node: "dev-big", logs: "no mount" });
    expect(results.get(ids.big)!.job_id).toMatch(/^runner\.big\/dispatch-/);
  });

  it("never places an action without a class on the class's node", () => {
    expect(results.get(ids.plain)).toMatchObject({ status: "succeeded", logs: "no mount" });
    expect(results.get(ids.plain)!.node).not.toBe("dev-big");
    expect(results.get(ids.plain)!.job_id).toMatch(/^runner\/dispatch-/);
  });

  it("mounts the volume of the class's node, where only that node offers it", () => {
    expect(results.get(ids.bigSsh)).toMatchObject({ status: "succeeded", node: "dev-big", logs: "[redacted]" }); // the big node's own ssh volume file, masked as a mount's files are
    expect(results.get(ids.bigSsh)!.job_id).toMatch(/^runner\.big-ssh\/dispatch-/);
  });

  it("refuses a mount the class's pool does not offer, and an unknown class, dispatching nothing", async () => {
    expect(results.get(ids.bigGpg)).toMatchObject({
      status: "invalid",
      error: { class: "invalid", message: `vault/actions/${ids.bigGpg}.toml: mounts[0] "gpg" is not offered by any ready node of class "big" (node pool big offers: ssh)` },
    });
    expect(results.get(ids.huge)).toMatchObject({ status: "invalid", error: { class: "invalid", message: `vault/actions/${ids.huge}.toml: class "huge" is not a configured runner class (configured: big, docker)` } });
    const children = new Map([...(await childrenByAction("runner.big-gpg")), ...(await childrenByAction("runner"))]);
    expect(children.get(ids.bigGpg)).toBeUndefined();
    expect(children.get(ids.huge)).toBeUndefined();
  });
});
