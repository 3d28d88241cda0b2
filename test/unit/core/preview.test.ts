import { describe, expect, it } from "vitest";
import { parseAction } from "../../../dispatcher/actions/parse.js";
import type { Catalog } from "../../../dispatcher/core/catalog.js";
import { formatIgnored, formatPlan, previewPass } from "../../../dispatcher/core/preview.js";

const settings = { runnerJob: "runner", sidecarJob: "sidecar", runnerRemote: "/ops.git", kvMount: "kv", defaultTimeoutMinutes: 60, tokenGraceSeconds: 300 };
const limits = { maxInFlight: 4, serializeBy: "formula" as const };
const catalog: Catalog = {
  formulas: new Set(["deploy", "triage"]),
  secrets: new Set(["GH_TOKEN"]),
  mounts: new Set(["ssh"]),
  mountPaths: new Map([["ssh", "/srv/ssh"]]),
  vaultOk: true,
};
const parse = (id: string, toml: string) => parseAction(toml, { path: `vault/actions/${id}.toml`, id, sha: `sha-${id}` });

describe("previewPass", () => {
  const parsed = [
    parse("a", 'id = "a"\nformula = "deploy"\ncontext = "c"\nsecrets = ["GH_TOKEN"]\nmounts = ["ssh"]\ntimeout_minutes = 5\n'),
    parse("b", 'id = "b"\nformula = "deploy"\ncontext = "c"\nsecrets = []\n'),
    parse("c", 'id = "c"\nformula = "deploy"\ncontext = "c"\nsecrets = []\nmounts = ["gpg"]\n'),
    parse("d", 'id = "d"\nformula = "triage"\ncontext = "c"\nsecrets = ["NOPE"]\n'),
    parse("e", 'id = "e"\nformula = "triage"\ncontext = "c"\nsecrets = []\nkind = "sidecar"\nissue = 7\nproject = "p.toml"\n'),
  ];

  it("dispatches, serializes, refuses with the loop's own messages", () => {
    const text = formatPlan(previewPass(parsed, catalog, "0123456789abcdef", settings, limits, new Date()), "0123456789abcdef");
    expect(text).toBe(
      [
        "plan for 0123456789ab (nothing is dispatched):",
        "a: dispatch job runner-ssh (task runner), timeout 5 min",
        "  meta:",
        "    action_id=a",
        "    action_path=vault/actions/a.toml",
        "    action_sha=sha-a",
        "    attempt=1",
        "    commit=0123456789abcdef",
        "    formula=deploy",
        "    kv_mount=kv",
        "    mounts_csv=ssh",
        "    ops_repo=/ops.git",
        "    secrets_csv=GH_TOKEN",
        "    timeout_minutes=5",
        "  token: runner-gh_token, ttl 600s, response-wrapped",
        "  mounts: ssh=/srv/ssh (read-only at /mnt/ssh)",
        "b: waits: serialized behind another action with formula:deploy",
        "c: invalid",
        '  vault/actions/c.toml: mounts[0] "gpg" is not available on this cluster (available: ssh)',
        "d: refused (secret_unknown)",
        '  vault/actions/d.toml: secrets[0] "NOPE" is not a known secret (known: GH_TOKEN)',
        "e: dispatch job sidecar (task runner), timeout 60 min",
        "  meta:",
        "    action_id=e",
        "    action_path=vault/actions/e.toml",
        "    action_sha=sha-e",
        "    attempt=1",
        "    commit=0123456789abcdef",
        "    formula=triage",
        "    issue_number=7",
        "    kv_mount=kv",
        "    ops_repo=/ops.git",
        "    project_toml=p.toml",
        "    timeout_minutes=60",
        "  token: none (no secrets)",
        "  mounts: none",
        "2 to dispatch, 1 waiting, 2 refused",
        "",
      ].join("\n"),
    );
  });

  it("refuses an unapproved action with the loop's message, and names who approved one that runs", () => {
    const approvals = new Map([
      ["vault/actions/a.toml", { ok: true as const, signers: ["alice@example.test", "bob@example.test"] }],
      ["vault/actions/e.toml", { ok: false as const, problem: "last changed by commit 0123456789ab, which is not signed (require_signed: sign it with a key in /etc/allowed)" }],
    ]);
    const lines = formatPlan(previewPass([parsed[0]!, parsed[4]!], catalog, "c0", settings, limits, new Date(), approvals), "c0").split("\n");
    expect(lines.slice(-6)).toEqual([
      "  mounts: ssh=/srv/ssh (read-only at /mnt/ssh)",
      "  approved by: alice@example.test, bob@example.test",
      "e: refused (unapproved)",
      "  vault/actions/e.toml: last changed by commit 0123456789ab, which is not signed (require_signed: sign it with a key in /etc/allowed)",
      "1 to dispatch, 0 waiting, 1 refused",
      "",
    ]);
  });

  it("lets an action whose verdict the pass's budget of signature checks did not reach wait, with the reason the loop gives", () => {
    const why = "commit signatures: this pass checked the 500 it may (approvals.signature_checks_per_pass); 12 more signed commits of this history are checked by the next passes, each once";
    const approvals = new Map([["vault/actions/e.toml", { ok: true as const, signers: ["alice@example.test"] }]]);
    const entries = previewPass([parsed[0]!, parsed[4]!], catalog, "c0", settings, limits, new Date(), approvals, new Map([["a", why]]));
    expect(entries.map((e) => [e.id, e.verdict, e.verdict === "wait" ? e.reason : undefined])).toEqual([
      ["a", "wait", why],
      ["e", "dispatch", undefined],
    ]);
  });

  it("lets actions with secrets wait, not fail, while Vault is unreachable", () => {
    const entries = previewPass(parsed.slice(0, 1), { ...catalog, secrets: new Set(), vaultOk: false }, "c0", settings, limits, new Date());
    expect(entries).toEqual([{ id: "a", verdict: "wait", reason: "Vault is unreachable: actions with secrets wait for it" }]);
  });
});

describe("formatIgnored (issue 31)", () => {
  it("names each ignored entry on one line, quoted, then counts them; nothing when there are none", () => {
    expect(formatIgnored("vault/actions", { entries: [], truncated: false })).toEqual([]);
    expect(formatIgnored("vault/actions", { entries: [{ path: "vault/actions/a\nb.toml", code: "control_character", reason: "its name has a control character (newline, tab, …)" }], truncated: false })).toEqual([
      'ignored: "vault/actions/a\\nb.toml": its name has a control character (newline, tab, …)',
      "ignored: 1 entry under vault/actions (not part of the contract: never read, never answered)",
    ]);
  });

  it("shows the first 20 of many, and says when the listing stopped at its cap", () => {
    const entries = Array.from({ length: 100_000 }, (_, i) => ({ path: `vault/actions/e-${i}`, code: "not_in_contract" as const, reason: "not <id>.toml, <id>.result.json or <id>.log" }));
    const lines = formatIgnored("vault/actions", { entries, truncated: true });
    expect(lines).toHaveLength(22);
    expect(lines.slice(-2)).toEqual([
      "ignored: 100000 entries under vault/actions (not part of the contract: never read, never answered), the first 20 shown",
      "ignored: vault/actions holds more entries than a listing reads; those past the cap are not seen",
    ]);
  });
});

describe("previewPass with [formula_mounts]", () => {
  it("shows an action asking for a mount its formula is not given as refused, with the loop's message", () => {
    const parsed = [parse("m", 'id = "m"\nformula = "triage"\ncontext = "c"\nsecrets = []\nmounts = ["ssh"]\n')];
    const withAllowlist: Catalog = { ...catalog, formulaMounts: { allowed: new Map([["deploy", new Set(["ssh"])]]), source: "[formula_mounts] in /etc/dispatcher.toml" } };
    expect(formatPlan(previewPass(parsed, withAllowlist, "0123456789abcdef", settings, limits, new Date()), "0123456789abcdef")).toBe(
      [
        "plan for 0123456789ab (nothing is dispatched):",
        "m: refused (not_allowed)",
        '  vault/actions/m.toml: mounts[0] "ssh" is not allowed for formula "triage" (allowed: none; allowlist: [formula_mounts] in /etc/dispatcher.toml)',
        "0 to dispatch, 0 waiting, 1 refused",
        "",
      ].join("\n"),
    );
  });
});
