import TOML from "@iarna/toml";
import type { z } from "zod";
import { ACTION_ID, actionSchema, SIDECAR_FORMULAS } from "./schema.js";
import type { Action, ActionFile, ParsedAction } from "./schema.js";

/** Larger files are refused before parsing: an action is a few lines, and the parser is not streaming. */
export const MAX_ACTION_BYTES = 64 * 1024;

const NAME_RULE = '1-64 characters of a-z, 0-9, ".", "_", "-" starting with a letter or digit';

/** How a field is described in problems: what type it takes, and what a string of that type must be. */
interface Rule {
  expected: string;
  mustBe?: string;
  item?: Rule;
}

const RULES: Record<keyof Action, Rule> = {
  id: { expected: 'a string like "release"', mustBe: `${NAME_RULE}, like "release"` },
  formula: { expected: 'a formula name like "deploy"', mustBe: `${NAME_RULE}, like "deploy"` },
  context: { expected: "a non-empty string", mustBe: "non-empty text" },
  secrets: {
    expected: 'an array of secret names like ["GITHUB_TOKEN"] (may be [])',
    item: { expected: 'a string like "GITHUB_TOKEN"', mustBe: 'UPPER_SNAKE_CASE like "GITHUB_TOKEN"' },
  },
  mounts: {
    expected: 'an array like ["ssh"]',
    item: { expected: "a string", mustBe: 'a mount alias (lower-case letters, digits, -) like "ssh"' },
  },
  model: { expected: "a non-empty string", mustBe: "non-empty" },
  tools: {
    expected: 'an array of tool names like ["git"]',
    item: { expected: "a string", mustBe: "non-empty" },
  },
  timeout_minutes: { expected: "a positive integer of at most 1440 (24 h)" },
  dispatch_mode: { expected: "a string", mustBe: "one of pr, direct" },
  blast_radius: { expected: "a string", mustBe: "one of low, medium, high" },
  kind: { expected: "a string", mustBe: "one of runner, sidecar" },
  class: { expected: 'a runner class like "big"', mustBe: 'a node pool name (lower-case letters, digits, -) like "big"' },
  issue: { expected: "a positive integer like 42" },
  project: { expected: "a non-empty string", mustBe: "non-empty" },
};

const ALLOWED_KEYS = Object.keys(actionSchema.shape).join(", ");

/** An action file too large to read at all (its size from the tree listing): invalid, unread. */
export function oversizeAction(file: ActionFile, size: number): ParsedAction | undefined {
  return size > MAX_ACTION_BYTES ? { ok: false, file, problems: [`file is ${size} bytes; at most ${MAX_ACTION_BYTES} (64 KiB) allowed`] } : undefined;
}

/** Parses and validates one action file; every fault becomes a one-line problem, nothing throws. */
export function parseAction(content: string | Buffer, file: ActionFile): ParsedAction {
  const fail = (problems: string[]): ParsedAction => ({ ok: false, file, problems });
  const size = typeof content === "string" ? Buffer.byteLength(content) : content.length;
  const oversize = oversizeAction(file, size);
  if (oversize) return oversize;
  const text = decodeUtf8(content);
  if (text === undefined) return fail(["file is not valid UTF-8 text"]);
  let raw: Record<string, unknown>;
  try {
    raw = TOML.parse(text);
  } catch (err) {
    return fail([describeTomlError(err, text)]);
  }
  const problems = [...checkFileName(file.id)];
  const result = actionSchema.safeParse(raw);
  if (!result.success) problems.push(...result.error.issues.flatMap((i) => describeIssue(i, raw)));
  problems.push(...checkIdMatchesFile(raw, file.id), ...checkKind(raw));
  const unique = [...new Set(problems)];
  if (!result.success || unique.length > 0) return fail(unique);
  return { ok: true, file, action: result.data };
}

/** Prefixes each problem with the file's path, one line per problem. */
export function formatProblems(path: string, problems: string[]): string {
  return problems.map((p) => `${path}: ${p}`).join("\n");
}

/** A leading BOM is legal in a TOML file but not in the parser's input, so it is dropped. */
function decodeUtf8(content: string | Buffer): string | undefined {
  let text: string;
  if (typeof content === "string") text = content;
  else {
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(content);
    } catch {
      return undefined;
    }
  }
  return text.startsWith("\uFEFF") ? text.slice(1) : text;
}

function describeTomlError(err: unknown, text: string): string {
  const e = err as { message?: unknown; line?: unknown; col?: unknown };
  // @iarna/toml appends " at row R, col C, pos P:" and a code excerpt; keep the reason only
  const reason = String(e.message ?? err).split("\n")[0]!.replace(/ at row \d+, col \d+, pos \d+:$/, "");
  const line = typeof e.line === "number" ? e.line : undefined;
  if (/^Can't redefine (an )?existing key/.test(reason) && line !== undefined) return duplicateKey(text.split("\n")[line] ?? "", line + 1);
  const at = line !== undefined && typeof e.col === "number" ? ` at line ${line + 1}, column ${e.col + 1}` : "";
  return `invalid TOML${at}: ${reason}`;
}

/** The key (or table) a duplicate-key error is about, read from the offending line. */
function duplicateKey(lineText: string, lineNumber: number): string {
  const table = /^\s*\[+\s*([^\]]+?)\s*\]+/.exec(lineText);
  if (table) return `table ${show(table[1]!)} defined twice (line ${lineNumber})`;
  const key = /^\s*(?:"([^"]*)"|'([^']*)'|([^=\s]+))\s*=/.exec(lineText);
  const name = key && (key[1] ?? key[2] ?? key[3]);
  return name === undefined || name === null ? `a key set twice (line ${lineNumber})` : `key ${show(name)} set twice (line ${lineNumber})`;
}

function checkFileName(id: string): string[] {
  if (ACTION_ID.test(id)) return [];
  return [`file name ${show(`${id}.toml`)} does not give a valid action id: the part before .toml must be ${NAME_RULE}, like "release.toml"`];
}

function describeIssue(issue: z.core.$ZodIssue, raw: Record<string, unknown>): string[] {
  if (issue.code === "unrecognized_keys") return issue.keys.map((k) => `unknown key ${show(k)} (allowed: ${ALLOWED_KEYS})`);
  const [field, index] = issue.path;
  const fieldRule = RULES[field as keyof Action];
  const rule = (typeof index === "number" ? fieldRule.item : undefined) ?? fieldRule;
  const label = typeof index === "number" ? `${String(field)}[${index}]` : String(field);
  const value = typeof index === "number" ? (raw[field as string] as unknown[])[index] : raw[field as string];
  if (value === undefined) return [`${label}: missing; expected ${rule.expected}`];
  if (typeof value === "string" && rule.mustBe) return [`${label} ${show(value)} must be ${rule.mustBe}`];
  return [`${label}: expected ${rule.expected}, got ${show(value)}`];
}

function checkIdMatchesFile(raw: Record<string, unknown>, fileId: string): string[] {
  const { id } = raw;
  if (typeof id !== "string" || !ACTION_ID.test(id) || !ACTION_ID.test(fileId) || id === fileId) return [];
  return [`id ${show(id)} does not match the file name (expected ${show(fileId)})`];
}

/** Sidecar fields mean nothing to a runner, and a sidecar is only defined for its own formulas. */
function checkKind(raw: Record<string, unknown>): string[] {
  const problems: string[] = [];
  if (raw.kind === undefined || raw.kind === "runner") {
    for (const key of ["issue", "project"] as const) {
      if (raw[key] !== undefined) problems.push(`${key}: only allowed with kind = "sidecar"`);
    }
  } else if (raw.kind === "sidecar") {
    if (raw.issue === undefined) problems.push(`issue: missing; kind "sidecar" requires ${RULES.issue.expected}`);
    const { formula } = raw;
    if (typeof formula === "string" && ACTION_ID.test(formula) && !(SIDECAR_FORMULAS as readonly string[]).includes(formula)) {
      problems.push(`formula ${show(formula)} must be one of ${SIDECAR_FORMULAS.join(", ")} for kind "sidecar"`);
    }
  }
  return problems;
}

/** A value as it appears in a problem: always one line, long strings cut. */
export function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "bigint") return `${value} (out of range)`;
  if (value instanceof Date) return "a date";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object" && value !== null) return "a table";
  return String(value);
}
