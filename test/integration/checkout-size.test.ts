// A pusher commits a 400 MB file outside vault/actions/: every checkout of that tree would
// write it into the task (the exec driver enforces no disk quota). The runner must refuse the
// checkout, naming the file and its size, before writing it; an action of another ops repo runs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createTestDispatcher, uniq } from "../helpers/stack.js";

const u = uniq();
const ids = { huge: `huge-${u}`, clean: `clean-${u}` };
let hugeRemote: OpsRemote;
let cleanRemote: OpsRemote;

async function result(remote: OpsRemote, id: string): Promise<ActionResult> {
  const text = await remote.read(`vault/actions/${id}.result.json`);
  if (!text) throw new Error(`no result for ${id}`);
  return JSON.parse(text) as ActionResult;
}

beforeAll(async () => {
  const action = (id: string) => `id = "${id}"\nformula = "hello"\ncontext = "c"\nsecrets = []\n`;
  const hello = '#!/usr/bin/env bash\necho "checked out: $(ls "$OPS_REPO_DIR" | tr "\\n" " ")"\n';
  hugeRemote = await createOpsRemote({ "formulas/hello.sh": hello, [`vault/actions/${ids.huge}.toml`]: action(ids.huge) });
  // committed after the action: any checkout of the tip carries it
  await hugeRemote.commit({ "assets/huge.bin": Buffer.alloc(400 * 1024 * 1024) }, "a large file");
  cleanRemote = await createOpsRemote({ "formulas/hello.sh": hello, [`vault/actions/${ids.clean}.toml`]: action(ids.clean) });
  await Promise.all([(await createTestDispatcher(hugeRemote.remote)).loop.once(), (await createTestDispatcher(cleanRemote.remote)).loop.once()]);
}, 300_000);

afterAll(async () => {
  await hugeRemote?.cleanup();
  await cleanRemote?.cleanup();
});

describe("a checkout larger than the task's disk", () => {
  it("is refused by the runner naming the file and its size; nothing ran", async () => {
    const r = await result(hugeRemote, ids.huge);
    expect(r).toMatchObject({ status: "failed", exit_code: 90, attempts: 1, error: { class: "invalid" } });
    expect(r.error!.message).toMatch(/^checkout of [0-9a-f]{40} refused: assets\/huge\.bin is 400\.0 MB, more than a checked-out file may be \(100\.0 MB\); keep large files out of the ops repo or raise RUNNER_MAX_FILE_MB$/);
    expect(r.logs).not.toContain("checked out:");
  });

  it("leaves other actions running", async () => {
    expect(await result(cleanRemote, ids.clean)).toMatchObject({ status: "succeeded", logs: "checked out: formulas vault" });
  });
});
