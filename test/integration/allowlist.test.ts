// The formula → secrets allowlist lives in the dispatcher's config, outside the ops repo: a commit
// asking for a secret its formula may not have is refused before any token is minted.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { childrenOf, createTestDispatcher, deleteSecret, grantSecret, uniq } from "../helpers/stack.js";

const u = uniq();
const ALLOWED = `ALLOWED_${u.toUpperCase()}`;
const OTHER = `OTHER_${u.toUpperCase()}`;
const ids = { ok: `allowed-${u}`, greedy: `greedy-${u}` };
let remote: OpsRemote;
let dir: string;
const minted: string[] = [];

async function result(id: string): Promise<ActionResult> {
  return JSON.parse((await remote.read(`vault/actions/${id}.result.json`))!) as ActionResult;
}

beforeAll(async () => {
  await grantSecret(ALLOWED, `allowed-value-${u}`);
  await grantSecret(OTHER, `other-value-${u}`);
  dir = await mkdtemp(join(tmpdir(), "allowlist-"));
  const config = join(dir, "dispatcher.toml");
  await writeFile(config, `[formula_secrets]\ndeploy = ["${ALLOWED}"]\n`);
  remote = await createOpsRemote({
    "formulas/deploy.sh": `#!/usr/bin/env bash\n[ -n "$${ALLOWED}" ] && echo "deploy has its secret"\n`,
    [`vault/actions/${ids.ok}.toml`]: `id = "${ids.ok}"\nformula = "deploy"\ncontext = "c"\nsecrets = ["${ALLOWED}"]\n`,
    [`vault/actions/${ids.greedy}.toml`]: `id = "${ids.greedy}"\nformula = "deploy"\ncontext = "c"\nsecrets = ["${ALLOWED}", "${OTHER}"]\n`,
  });
  const d = await createTestDispatcher(remote.remote, { DISPATCHER_SECRETS: `${ALLOWED},${OTHER}`, DISPATCHER_CONFIG: config }, (v) => ({
    ...v,
    mintWrapped: (req) => (minted.push(req.meta.action ?? "?"), v.mintWrapped(req)),
  }));
  await d.loop.once();
}, 120_000);

afterAll(async () => {
  await deleteSecret(ALLOWED);
  await deleteSecret(OTHER);
  await remote?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe("formula → secrets allowlist", () => {
  it("runs an action asking for a secret its formula may have", async () => {
    expect(await result(ids.ok)).toMatchObject({ status: "succeeded", logs: "deploy has its secret" });
  });

  it("refuses one asking for more, naming formula, secret and allowlist, with no token and no job", async () => {
    const r = await result(ids.greedy);
    expect(r).toMatchObject({
      status: "rejected",
      exit_code: -1,
      error: {
        class: "not_allowed",
        message: `vault/actions/${ids.greedy}.toml: secrets[1] "${OTHER}" is not allowed for formula "deploy" (allowed: ${ALLOWED}; allowlist: [formula_secrets] in ${join(dir, "dispatcher.toml")})`,
      },
    });
    expect(minted).toEqual([ids.ok]);
    expect(await childrenOf("runner", ids.greedy)).toEqual([]);
  });
});
