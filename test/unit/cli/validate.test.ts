import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateFiles } from "../../../dispatcher/cli/validate.js";

let repo: string;

beforeAll(async () => {
  repo = await mkdtemp(join(tmpdir(), "validate-"));
  await mkdir(join(repo, "vault/actions"), { recursive: true });
  await mkdir(join(repo, "formulas"));
  await writeFile(join(repo, "formulas/backup.sh"), "#!/usr/bin/env bash\n");
  await writeFile(join(repo, "vault/actions/backup.toml"), 'id = "backup"\nformula = "backup"\ncontext = "c"\nsecrets = []\nmounts = ["ssh", "gpg"]\n');
});

afterAll(async () => {
  await rm(repo, { recursive: true, force: true });
});

describe("validate --config with [formula_mounts]", () => {
  it("names each mount the allowlist does not give the formula, and passes without an allowlist", async () => {
    const file = join(repo, "vault/actions/backup.toml");
    const mounts = { allowed: new Map([["backup", new Set(["gpg"])]]), source: "[formula_mounts] in ci.toml" };
    const refused = await validateFiles([file], undefined, undefined, mounts);
    expect(refused.invalid).toBe(1);
    expect(refused.lines.join("\n")).toContain('mounts[0] "ssh" is not allowed for formula "backup" (allowed: gpg; allowlist: [formula_mounts] in ci.toml)');
    expect((await validateFiles([file])).lines).toEqual([`${file}: ok`]);
  });
});
