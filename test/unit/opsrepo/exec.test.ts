import { describe, expect, it } from "vitest";
import { buildEnv } from "../../../dispatcher/opsrepo/exec.js";

describe("buildEnv", () => {
  it("gives git no engine credentials or addresses, nothing that points it at another repository, and no prompt", () => {
    const env = buildEnv({
      PATH: "/usr/bin",
      HOME: "/home/d",
      NOMAD_TOKEN: "n",
      NOMAD_ADDR: "http://n",
      VAULT_TOKEN: "v",
      VAULT_ADDR: "http://v",
      BAO_TOKEN: "b",
      GITHUB_TOKEN: "g",
      GIT_DIR: "/elsewhere",
      GIT_SSH_COMMAND: "ssh -i key",
    });
    expect(env).toEqual({ PATH: "/usr/bin", HOME: "/home/d", GIT_SSH_COMMAND: "ssh -i key", GIT_TERMINAL_PROMPT: "0", LC_ALL: "C" });
  });
});
