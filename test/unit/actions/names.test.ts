import { describe, expect, it } from "vitest";
import { classifyEntry, showPath } from "../../../dispatcher/actions/names.js";

describe("classifyEntry", () => {
  it("takes <name>.toml, <name>.result.json and <name>.log files for what they are, valid id or not", () => {
    expect(classifyEntry("deploy.toml", "file")).toEqual({ role: "action", id: "deploy" });
    expect(classifyEntry("deploy.result.json", "file")).toEqual({ role: "result", id: "deploy" });
    expect(classifyEntry("deploy.log", "file")).toEqual({ role: "log", id: "deploy" });
    // a bad id still gets its invalid result, at a path git can hold
    expect(classifyEntry("Upper Case.toml", "file")).toEqual({ role: "action", id: "Upper Case" });
    expect(classifyEntry('q"\\-x.toml', "file")).toEqual({ role: "action", id: 'q"\\-x' });
    expect(classifyEntry("--output=x.toml", "file")).toEqual({ role: "action", id: "--output=x" });
  });

  it("takes <name>.toml of any kind as an action (it gets an invalid result saying what it is), other names of another kind are ignored", () => {
    expect(classifyEntry("d.toml", "directory")).toEqual({ role: "action", id: "d" });
    expect(classifyEntry("d.result.json", "directory")).toEqual({ role: "ignored", code: "not_a_file", reason: "a directory, not a file" });
    expect(classifyEntry("sub", "submodule")).toEqual({ role: "ignored", code: "not_a_file", reason: "a submodule (gitlink), not a file" });
    expect(classifyEntry("d.log", "symlink")).toEqual({ role: "ignored", code: "not_a_file", reason: "a symlink, not a file" });
  });

  it("ignores names no result could be written beside: control characters, bytes that are not UTF-8, more than 200 bytes", () => {
    expect(classifyEntry("a\nb.toml", "file")).toEqual({ role: "ignored", code: "control_character", reason: "its name has a control character (newline, tab, …)" });
    expect(classifyEntry("a\tb.toml", "file")).toMatchObject({ code: "control_character" });
    expect(classifyEntry("a\u007fb.toml", "file")).toMatchObject({ code: "control_character" });
    expect(classifyEntry("a\ufffd.toml", "file", true)).toEqual({ role: "ignored", code: "not_utf8", reason: "its name is not valid UTF-8" });
    expect(classifyEntry(`${"é".repeat(98)}.toml`, "file")).toEqual({ role: "ignored", code: "name_too_long", reason: "its name is 201 bytes long; at most 200" });
    expect(classifyEntry(`${"a".repeat(195)}.toml`, "file")).toEqual({ role: "action", id: "a".repeat(195) });
  });

  it("ignores what the contract does not name", () => {
    for (const name of ["README.md", "..", ".toml", ".result.json", "x.json", "x.toml.bak"]) {
      expect(classifyEntry(name, "file"), name).toEqual({ role: "ignored", code: "not_in_contract", reason: "not <id>.toml, <id>.result.json or <id>.log" });
    }
  });

  it("shows a path on one line, quoted", () => {
    expect(showPath("vault/actions/a\nb\t\"c\\.toml")).toBe('"vault/actions/a\\nb\\t\\"c\\\\.toml"');
  });
});
