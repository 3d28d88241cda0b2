import { describe, expect, it } from "vitest";
import { formatProblems, parseAction } from "../../../dispatcher/actions/parse.js";
import type { ActionFile } from "../../../dispatcher/actions/schema.js";

const file = (id = "release"): ActionFile => ({ path: `vault/actions/${id}.toml`, id, sha: "abc123" });

const MINIMAL = ['id = "release"', 'formula = "deploy"', 'context = "ship v1"', "secrets = []"];

/** A minimal valid action with extra lines appended (later keys may not repeat earlier ones). */
const toml = (...extra: string[]) => [...MINIMAL, ...extra].join("\n") + "\n";

/** Problems for a file, or fails the test when it parses. */
function problemsOf(content: string | Buffer, f = file()): string[] {
  const parsed = parseAction(content, f);
  if (parsed.ok) throw new Error(`expected problems, got ${JSON.stringify(parsed.action)}`);
  return parsed.problems;
}

describe("parseAction", () => {
  it("accepts a full action", () => {
    const content = [
      'id = "release"',
      'formula = "deploy"',
      'context = "ship v1.2.3 to production"',
      'secrets = ["GITHUB_TOKEN", "NPM_TOKEN"]',
      'mounts = ["ssh", "gpg"]',
      'model = "sonnet"',
      'tools = ["git", "npm"]',
      "timeout_minutes = 30",
      'dispatch_mode = "pr"',
      'blast_radius = "medium"',
      'kind = "runner"',
    ].join("\n");
    expect(parseAction(content, file())).toEqual({
      ok: true,
      file: file(),
      action: {
        id: "release",
        formula: "deploy",
        context: "ship v1.2.3 to production",
        secrets: ["GITHUB_TOKEN", "NPM_TOKEN"],
        mounts: ["ssh", "gpg"],
        model: "sonnet",
        tools: ["git", "npm"],
        timeout_minutes: 30,
        dispatch_mode: "pr",
        blast_radius: "medium",
        kind: "runner",
      },
    });
  });

  it("fills the defaults: no mounts, kind runner", () => {
    expect(parseAction(toml(), file())).toEqual({
      ok: true,
      file: file(),
      action: { id: "release", formula: "deploy", context: "ship v1", secrets: [], mounts: [], kind: "runner" },
    });
  });

  it("accepts a sidecar with its fields", () => {
    const parsed = parseAction(
      ['id = "triage-42"', 'formula = "triage"', 'context = "x"', "secrets = []", 'kind = "sidecar"', "issue = 42", 'project = "projects/a.toml"'].join("\n"),
      file("triage-42"),
    );
    expect(parsed.ok && parsed.action).toMatchObject({ kind: "sidecar", issue: 42, project: "projects/a.toml" });
  });

  it("accepts a Buffer with a UTF-8 BOM and CRLF line ends", () => {
    const content = Buffer.from("\uFEFF" + toml().replaceAll("\n", "\r\n"));
    expect([...content.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(parseAction(content, file())).toMatchObject({ ok: true, action: { id: "release", context: "ship v1" } });
  });

  it("accepts a string with a BOM", () => {
    expect(parseAction("\uFEFF" + toml(), file()).ok).toBe(true);
  });

  it("refuses a file over 64 KiB", () => {
    const content = toml(`model = "${"x".repeat(64 * 1024)}"`);
    expect(problemsOf(content)).toEqual([`file is ${Buffer.byteLength(content)} bytes; at most 65536 (64 KiB) allowed`]);
  });

  it("refuses invalid UTF-8", () => {
    const content = Buffer.concat([Buffer.from(toml()), Buffer.from([0x6d, 0x3d, 0x22, 0xff, 0xfe, 0x22, 0x0a])]);
    expect(problemsOf(content)).toEqual(["file is not valid UTF-8 text"]);
  });

  it("refuses malformed TOML with its line and column", () => {
    expect(problemsOf('id = "release"\ncontext = "oops\n')).toEqual(["invalid TOML at line 2, column 16: Unterminated string"]);
    expect(problemsOf("id = \n")).toEqual([
      "invalid TOML at line 1, column 7: Unexpected character, expecting string, number, datetime, boolean, inline array or inline table",
    ]);
  });

  it("names a key set twice and its line", () => {
    expect(problemsOf(toml('id = "other"'))).toEqual(['key "id" set twice (line 5)']);
    expect(problemsOf('id = "x"\nformula = "a"\nformula = "b"\n')).toEqual(['key "formula" set twice (line 3)']);
    expect(problemsOf('id = "x"\n"context" = "a"\ncontext = "b"\n')).toEqual(['key "context" set twice (line 3)']);
    expect(problemsOf('id = "x"\n[t]\na = 1\n[t]\n')).toEqual(['table "t" defined twice (line 4)']);
  });

  it("says which file and key, as a result message would", () => {
    const parsed = parseAction('id = "x"\nformula = "a"\nformula = "b"\n', { path: "vault/actions/x.toml", id: "x", sha: "s" });
    expect(!parsed.ok && formatProblems(parsed.file.path, parsed.problems)).toBe('vault/actions/x.toml: key "formula" set twice (line 3)');
  });

  it("names each unknown key", () => {
    const allowed = "id, formula, context, secrets, mounts, model, tools, timeout_minutes, dispatch_mode, blast_radius, kind, class, issue, project";
    expect(problemsOf(toml("foo = 1", "[bar]", "x = 2"))).toEqual([
      `unknown key "foo" (allowed: ${allowed})`,
      `unknown key "bar" (allowed: ${allowed})`,
    ]);
  });

  it("reports missing required fields", () => {
    expect(problemsOf('id = "release"\n')).toEqual([
      'formula: missing; expected a formula name like "deploy"',
      "context: missing; expected a non-empty string",
      'secrets: missing; expected an array of secret names like ["GITHUB_TOKEN"] (may be [])',
    ]);
  });

  it("reports wrong types with what was expected and what was found", () => {
    const content = [
      "id = 7",
      "formula = true",
      "context = 1979-05-27",
      'secrets = "GITHUB_TOKEN"',
      "mounts = [{ a = 1 }]",
      'tools = ["git", ["npm"]]',
      'timeout_minutes = "ten"',
      "issue = 9007199254740993",
    ].join("\n");
    expect(problemsOf(content)).toEqual([
      'id: expected a string like "release", got 7',
      'formula: expected a formula name like "deploy", got true',
      "context: expected a non-empty string, got a date",
      'secrets: expected an array of secret names like ["GITHUB_TOKEN"] (may be []), got "GITHUB_TOKEN"',
      "mounts[0]: expected a string, got a table",
      "tools[1]: expected a string, got an array",
      'timeout_minutes: expected a positive integer of at most 1440 (24 h), got "ten"',
      "issue: expected a positive integer like 42, got 9007199254740993 (out of range)",
      'issue: only allowed with kind = "sidecar"',
    ]);
  });

  it("accepts an integer timeout and refuses a fractional or non-positive one", () => {
    expect(parseAction(toml("timeout_minutes = 90"), file())).toMatchObject({ ok: true, action: { timeout_minutes: 90 } });
    expect(problemsOf(toml("timeout_minutes = 1.5"))).toEqual(["timeout_minutes: expected a positive integer of at most 1440 (24 h), got 1.5"]);
    expect(problemsOf(toml("timeout_minutes = 0"))).toEqual(["timeout_minutes: expected a positive integer of at most 1440 (24 h), got 0"]);
    expect(problemsOf(toml("timeout_minutes = 1441"))).toEqual(["timeout_minutes: expected a positive integer of at most 1440 (24 h), got 1441"]);
    expect(problemsOf(toml("timeout_minutes = 9007199254740991"))).toEqual(["timeout_minutes: expected a positive integer of at most 1440 (24 h), got 9007199254740991"]);
  });

  it("reports strings that break a field's rule, with the array index", () => {
    const content = [
      'id = "release"',
      'formula = "Deploy!"',
      'context = "   "',
      'secrets = ["GITHUB_TOKEN", "githb_token"]',
      'mounts = ["ssh", "NFS"]',
      'tools = [""]',
      'dispatch_mode = "yolo"',
      'blast_radius = "huge"',
      'model = ""',
    ].join("\n");
    expect(problemsOf(content)).toEqual([
      'formula "Deploy!" must be 1-64 characters of a-z, 0-9, ".", "_", "-" starting with a letter or digit, like "deploy"',
      'context "   " must be non-empty text',
      'secrets[1] "githb_token" must be UPPER_SNAKE_CASE like "GITHUB_TOKEN"',
      'mounts[1] "NFS" must be a mount alias (lower-case letters, digits, -) like "ssh"',
      'model "" must be non-empty',
      'tools[0] "" must be non-empty',
      'dispatch_mode "yolo" must be one of pr, direct',
      'blast_radius "huge" must be one of low, medium, high',
    ]);
  });

  it("keeps a problem on one line and cuts long values", () => {
    expect(problemsOf(toml(`kind = "${"a\\n".repeat(30)}"`))).toEqual([`kind "${"a\\n".repeat(20)}…" must be one of runner, sidecar`]);
  });

  it("requires the id to match the file name", () => {
    expect(problemsOf(toml().replace('"release"', '"x"'))).toEqual(['id "x" does not match the file name (expected "release")']);
    expect(problemsOf(toml().replace('"release"', '"Release"'))).toEqual([
      'id "Release" must be 1-64 characters of a-z, 0-9, ".", "_", "-" starting with a letter or digit, like "release"',
    ]);
  });

  it("refuses a file name that is not a valid id", () => {
    const rule = 'the part before .toml must be 1-64 characters of a-z, 0-9, ".", "_", "-" starting with a letter or digit, like "release.toml"';
    expect(problemsOf(toml(), file("../x"))).toEqual([`file name "../x.toml" does not give a valid action id: ${rule}`]);
    expect(problemsOf(toml(), file("Release"))).toEqual([`file name "Release.toml" does not give a valid action id: ${rule}`]);
    const long = "a".repeat(65);
    expect(problemsOf(toml().replace('"release"', `"${long}"`), file(long))).toEqual([
      `file name "${"a".repeat(40)}…" does not give a valid action id: ${rule}`,
      `id "${"a".repeat(40)}…" must be 1-64 characters of a-z, 0-9, ".", "_", "-" starting with a letter or digit, like "release"`,
    ]);
  });

  it("refuses sidecar fields on a runner", () => {
    expect(problemsOf(toml("issue = 3", 'project = "p.toml"'))).toEqual([
      'issue: only allowed with kind = "sidecar"',
      'project: only allowed with kind = "sidecar"',
    ]);
  });

  it("requires a sidecar to have an issue and a sidecar formula", () => {
    expect(problemsOf(toml('kind = "sidecar"'))).toEqual([
      'issue: missing; kind "sidecar" requires a positive integer like 42',
      'formula "deploy" must be one of reproduce, triage, verify for kind "sidecar"',
    ]);
  });
});

describe("formatProblems", () => {
  it("prefixes each problem with the path", () => {
    expect(formatProblems("vault/actions/a.toml", ["one", "two"])).toBe("vault/actions/a.toml: one\nvault/actions/a.toml: two");
  });
});
