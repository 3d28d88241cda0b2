import { describe, expect, it } from "vitest";
import { checkAction, notAllowedMountProblems, notAllowedSecretProblems, unknownSecretProblems } from "../../../dispatcher/actions/check.js";
import type { Action, ActionCatalog } from "../../../dispatcher/actions/schema.js";

const action = (over: Partial<Action> = {}): Action => ({
  id: "release",
  formula: "deploy",
  context: "ship",
  secrets: [],
  mounts: [],
  kind: "runner",
  ...over,
});

const catalog: ActionCatalog = {
  formulas: new Set(["deploy", "backup"]),
  mounts: new Set(["ssh", "gpg"]),
  secrets: new Set(["GITHUB_TOKEN", "NPM_TOKEN"]),
};

describe("checkAction", () => {
  it("passes an action whose references all resolve", () => {
    const a = action({ secrets: ["NPM_TOKEN", "GITHUB_TOKEN"], mounts: ["gpg", "ssh"] });
    expect(checkAction(a, catalog)).toEqual({ problems: [], unknownSecrets: [] });
  });

  it("names a missing formula and lists the ones present, sorted", () => {
    expect(checkAction(action({ formula: "deploi" }), catalog).problems).toEqual([
      'formula "deploi" has no formulas/deploi.sh in the ops repo (have: backup, deploy)',
    ]);
    expect(checkAction(action(), { ...catalog, formulas: new Set() }).problems).toEqual([
      'formula "deploy" has no formulas/deploy.sh in the ops repo (have: none)',
    ]);
  });

  it("caps a long list of names", () => {
    const formulas = new Set(Array.from({ length: 25 }, (_, i) => `f${String(i).padStart(2, "0")}`));
    const have = Array.from({ length: 20 }, (_, i) => `f${String(i).padStart(2, "0")}`).join(", ");
    expect(checkAction(action(), { ...catalog, formulas }).problems).toEqual([
      `formula "deploy" has no formulas/deploy.sh in the ops repo (have: ${have}, … (5 more))`,
    ]);
  });

  it("names each mount the cluster does not offer, with its index", () => {
    expect(checkAction(action({ mounts: ["ssh", "sops"] }), catalog).problems).toEqual([
      'mounts[1] "sops" is not available on this cluster (available: gpg, ssh)',
    ]);
  });

  it("returns unknown secrets apart from the problems", () => {
    const a = action({ secrets: ["GITHUB_TOKEN", "GITHB_TOKEN", "AWS_KEY"] });
    expect(checkAction(a, catalog)).toEqual({ problems: [], unknownSecrets: ["GITHB_TOKEN", "AWS_KEY"] });
  });
});

describe("checkAction with runner classes", () => {
  const classed: ActionCatalog = { ...catalog, classes: new Map([["big", new Set(["ssh"])], ["gpu", new Set<string>()]]) };

  it("names an unconfigured class and lists the configured ones", () => {
    expect(checkAction(action({ class: "huge" }), classed).problems).toEqual(['class "huge" is not a configured runner class (configured: big, gpu)']);
  });

  it("checks mounts against what the class's node pool offers, not the default pool", () => {
    expect(checkAction(action({ class: "big", mounts: ["ssh"] }), classed).problems).toEqual([]);
    expect(checkAction(action({ class: "big", mounts: ["ssh", "gpg"] }), classed).problems).toEqual([
      'mounts[1] "gpg" is not offered by any ready node of class "big" (node pool big offers: ssh)',
    ]);
    expect(checkAction(action({ class: "gpu", mounts: ["ssh"] }), classed).problems).toEqual(['mounts[0] "ssh" is not offered by any ready node of class "gpu" (node pool gpu offers: none)']);
  });

  it("leaves classes unchecked where the catalog does not know them (offline validate)", () => {
    expect(checkAction(action({ class: "anything", mounts: ["sops"] }), catalog).problems).toEqual([]);
  });
});

describe("unknownSecretProblems", () => {
  it("gives one line per unknown secret with its index and the known ones", () => {
    const a = action({ secrets: ["GITHUB_TOKEN", "GITHB_TOKEN", "AWS_KEY"] });
    expect(unknownSecretProblems(a, catalog)).toEqual([
      'secrets[1] "GITHB_TOKEN" is not a known secret (known: GITHUB_TOKEN, NPM_TOKEN)',
      'secrets[2] "AWS_KEY" is not a known secret (known: GITHUB_TOKEN, NPM_TOKEN)',
    ]);
    expect(unknownSecretProblems(a, { ...catalog, secrets: new Set() })[0]).toBe('secrets[0] "GITHUB_TOKEN" is not a known secret (known: none)');
  });
});

describe("notAllowedMountProblems", () => {
  const allowlist = { allowed: new Map([["deploy", new Set(["ssh"])]]), source: "[formula_mounts] in /etc/dispatcher.toml" };

  it("lets a formula have the mounts the allowlist gives it, and every mount without an allowlist", () => {
    expect(notAllowedMountProblems(action({ mounts: ["ssh"] }), allowlist)).toEqual([]);
    expect(notAllowedMountProblems(action({ mounts: ["gpg"] }), undefined)).toEqual([]);
  });

  it("names the formula, the mount and where the allowlist lives", () => {
    expect(notAllowedMountProblems(action({ mounts: ["ssh", "gpg"] }), allowlist)).toEqual([
      'mounts[1] "gpg" is not allowed for formula "deploy" (allowed: ssh; allowlist: [formula_mounts] in /etc/dispatcher.toml)',
    ]);
    expect(notAllowedMountProblems(action({ formula: "backup", mounts: ["ssh"] }), allowlist)).toEqual([
      'mounts[0] "ssh" is not allowed for formula "backup" (allowed: none; allowlist: [formula_mounts] in /etc/dispatcher.toml)',
    ]);
  });
});

describe("notAllowedSecretProblems", () => {
  const allowlist = { allowed: new Map([["deploy", new Set(["GITHUB_TOKEN"])]]), source: "[formula_secrets] in /etc/dispatcher.toml" };

  it("lets a formula have what the allowlist gives it, and everything without an allowlist", () => {
    expect(notAllowedSecretProblems(action({ secrets: ["GITHUB_TOKEN"] }), allowlist)).toEqual([]);
    expect(notAllowedSecretProblems(action({ secrets: ["NPM_TOKEN"] }), undefined)).toEqual([]);
  });

  it("names the formula, the secret and where the allowlist lives", () => {
    expect(notAllowedSecretProblems(action({ secrets: ["GITHUB_TOKEN", "NPM_TOKEN"] }), allowlist)).toEqual([
      'secrets[1] "NPM_TOKEN" is not allowed for formula "deploy" (allowed: GITHUB_TOKEN; allowlist: [formula_secrets] in /etc/dispatcher.toml)',
    ]);
    expect(notAllowedSecretProblems(action({ formula: "backup", secrets: ["NPM_TOKEN"] }), allowlist)).toEqual([
      'secrets[0] "NPM_TOKEN" is not allowed for formula "backup" (allowed: none; allowlist: [formula_secrets] in /etc/dispatcher.toml)',
    ]);
  });
});
