// `--help` on every command of the built CLI: usage on stdout, exit 0.
import { describe, expect, it } from "vitest";
import { COMMANDS } from "../../dispatcher/cli/commands.js";
import { runCli } from "../helpers/cli.js";

const env = { PATH: process.env.PATH ?? "" };

describe("dispatcher --help", () => {
  it("lists every command and the exit codes", async () => {
    const run = await runCli(["--help"], env);
    expect(run.code).toBe(0);
    expect(Object.keys(COMMANDS).sort()).toEqual(["doctor", "jobs", "logs", "migrate-check", "once", "plan", "run", "status", "validate"]);
    for (const name of Object.keys(COMMANDS)) expect(run.stdout).toMatch(new RegExp(`^  ${name} +\\S`, "m"));
    expect(run.stdout).toContain("Exit codes: 0 ok, 1 failed/invalid (logs -f: the task's exit code), 2 usage or config error");
  });

  it.each(Object.keys(COMMANDS))("%s --help prints its usage", async (name) => {
    const run = await runCli([name, "--help"], env);
    expect(run).toMatchObject({ code: 0, stderr: "" });
    expect(run.stdout.startsWith(`Usage: dispatcher ${name}`)).toBe(true);
  });

  it("names the usage error of logs without an id", async () => {
    const run = await runCli(["logs"], env);
    expect(run).toMatchObject({ code: 2, stdout: "", stderr: "dispatcher: dispatcher logs: name exactly one action id (see dispatcher logs --help)\n" });
  });
});
