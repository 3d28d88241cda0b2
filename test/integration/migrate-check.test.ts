// `dispatcher migrate-check` on an ops repo and a factory repository in disinto's layout, built
// here as real git repositories: every needed change is named exactly, and once the configuration
// makes them the same check passes.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runGit } from "../../dispatcher/opsrepo/exec.js";
import { runCli } from "../helpers/cli.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";

let dir: string;
let opsRemote: OpsRemote;
let factoryRemote: OpsRemote;
let factoryHead: string;
const env = () => ({ PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "migrate-check-"));
  factoryRemote = await createOpsRemote({});
  factoryHead = await factoryRemote.commit({
    // disinto's formulas: the action id as $1, keys under ~/.ssh, helpers from the factory
    "formulas/deploy.sh": '#!/usr/bin/env bash\nid=$1\nssh -i ~/.ssh/id_ed25519 deploy@host "release $id"\n',
    "formulas/report.sh": '#!/usr/bin/env bash\n. "$FACTORY_ROOT/lib/env.sh"\necho "report for ${1}"\n',
    "lib/env.sh": "# helpers\n",
  });
  opsRemote = await createOpsRemote({
    "vault/actions/deploy.toml": 'id = "deploy"\nformula = "deploy"\ncontext = "ship it"\nsecrets = ["GITHUB_TOKEN"]\nmounts = ["ssh"]\n',
    "vault/actions/report.toml": 'id = "report"\nformula = "report"\ncontext = "weekly"\nsecrets = []\n',
  });
  await runGit(dir, ["clone", "--quiet", opsRemote.remote, join(dir, "ops")]);
  await runGit(dir, ["clone", "--quiet", factoryRemote.remote, join(dir, "factory")]);
});

afterAll(async () => {
  await opsRemote?.cleanup();
  await factoryRemote?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe("dispatcher migrate-check", () => {
  it("names every setting the old layout needs, per action, and exits 1", async () => {
    const config = join(dir, "empty.toml");
    await writeFile(config, "");
    const run = await runCli(["migrate-check", "--ops", join(dir, "ops"), "--factory", join(dir, "factory"), "-c", config], env());
    expect(run.stderr).toBe("");
    expect(run.stdout).toBe(
      [
        `change deploy: formulas/deploy.sh is in the factory repository, not the ops repo: set formulas.factory_remote and formulas.factory_commit = "${factoryHead}" (${config}), or move it into the ops repo; ` +
          `formulas/deploy.sh reads $1 (the action id under dispatcher.sh): set formulas.args = "action-id" (${config}); ` +
          `secrets[0] "GITHUB_TOKEN" is not a known secret (known: none): add it to secrets (DISPATCHER_SECRETS); ` +
          `secrets GITHUB_TOKEN are read at kv/data/runner/{name}; dispatcher.sh kept them at kv/data/disinto/runner/{name}: set vault.secret_path = "disinto/runner/{name}" (${config}) and write the policies with DISPATCHER_SECRET_PATH=disinto/runner/{name} scripts/bootstrap-vault.sh, or move the secrets; ` +
          `formulas/deploy.sh reads ~/.ssh, mount ssh lands at /mnt/ssh: set [mounts] ssh = { volume = "ssh", path = "/home/agent/.ssh" } (${config}); ` +
          `formulas/deploy.sh reads ~/.ssh: set formulas.home = "/home/agent" (${config})`,
        `change report: formulas/report.sh is in the factory repository, not the ops repo: set formulas.factory_remote and formulas.factory_commit = "${factoryHead}" (${config}), or move it into the ops repo; ` +
          `formulas/report.sh reads $1 (the action id under dispatcher.sh): set formulas.args = "action-id" (${config}); ` +
          `formulas/report.sh uses FACTORY_ROOT: set formulas.factory_remote and formulas.factory_commit (${config})`,
        "2 of 2 actions need a change",
        "",
      ].join("\n"),
    );
    expect(run.code).toBe(1);
  });

  it("passes once the configuration makes those changes, and names a pin that is not the factory checkout", async () => {
    const config = join(dir, "dispatcher.toml");
    const settings = (commit: string) =>
      [
        'secrets = ["GITHUB_TOKEN"]',
        "[vault]",
        'secret_path = "disinto/runner/{name}"',
        "[formulas]",
        'factory_remote = "git://git.example/factory.git"',
        `factory_commit = "${commit}"`,
        'args = "action-id"',
        'home = "/home/agent"',
        "[mounts]",
        'ssh = { volume = "ssh", path = "/home/agent/.ssh" }',
        "",
      ].join("\n");
    await writeFile(config, settings(factoryHead));
    const ok = await runCli(["migrate-check", "--ops", join(dir, "ops"), "--factory", join(dir, "factory"), "-c", config], env());
    expect(ok.stdout).toBe("ok deploy: runs as is\nok report: runs as is\n2 actions run as they are\n");
    expect(ok.code).toBe(0);

    const other = "0".repeat(40);
    await writeFile(config, settings(other));
    const stale = await runCli(["migrate-check", "--ops", join(dir, "ops"), "--factory", join(dir, "factory"), "-c", config], env());
    const pin = `formulas.factory_commit is ${other}, the factory checkout is at ${factoryHead}: pin the commit that was reviewed (${config})`;
    expect(stale.stdout).toBe(`change deploy: ${pin}\nchange report: ${pin}\n2 of 2 actions need a change\n`);
    expect(stale.code).toBe(1);
  });
});
