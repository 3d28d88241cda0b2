// The ops repo's contract for the names in an actions directory, checked once, where the directory
// is listed: what each entry is to the dispatcher, or why it is ignored. Anyone who can push can
// put any name, kind or number of entries there; nothing here reads a file.

/** what a tree entry is, by its git mode */
export type EntryKind = "file" | "symlink" | "directory" | "submodule";

export const ACTION_EXT = ".toml";
export const RESULT_EXT = ".result.json";
export const LOG_EXT = ".log";

/**
 * Longest name an action file may have, in bytes. Its result's name (`<id>.result.json`) must
 * still fit a file system's 255 bytes wherever the ops repo is checked out.
 */
export const MAX_NAME_BYTES = 200;

export type EntryRole =
  | { role: "action" | "result" | "log"; id: string }
  /** not part of the contract: never read, never written beside; logged, counted, shown by plan and status */
  | { role: "ignored"; code: IgnoredCode; reason: string };

/** why an entry is ignored, as a metric label: a few values, whatever was pushed */
export type IgnoredCode = "not_utf8" | "control_character" | "name_too_long" | "not_a_file" | "not_in_contract";

// C0 controls and DEL: a newline breaks every line-based git protocol (cat-file, fast-import)
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A control character (newline, tab, …) in `text`: no line-based git protocol can carry it. */
export function hasControlCharacter(text: string): boolean {
  return CONTROL.test(text);
}

/**
 * What the entry `name` (of `kind`) of an actions directory is. A name that could not be written
 * back safely (a control character, bytes that are not UTF-8, too long) is ignored whatever it
 * ends with; any other `<name>.toml` is an action, even when `<name>` is no valid id or the entry
 * no file (it then gets an invalid result saying so, at `<name>.result.json`).
 */
export function classifyEntry(name: string, kind: EntryKind, notUtf8 = false): EntryRole {
  if (notUtf8) return { role: "ignored", code: "not_utf8", reason: "its name is not valid UTF-8" };
  if (hasControlCharacter(name)) return { role: "ignored", code: "control_character", reason: "its name has a control character (newline, tab, …)" };
  const bytes = Buffer.byteLength(name);
  if (bytes > MAX_NAME_BYTES) return { role: "ignored", code: "name_too_long", reason: `its name is ${bytes} bytes long; at most ${MAX_NAME_BYTES}` };
  if (name.endsWith(ACTION_EXT) && name.length > ACTION_EXT.length) return { role: "action", id: name.slice(0, -ACTION_EXT.length) };
  const notFile = kind === "file" ? undefined : ({ role: "ignored", code: "not_a_file", reason: notAFile(kind) } as const);
  if (name.endsWith(RESULT_EXT) && name.length > RESULT_EXT.length) return notFile ?? { role: "result", id: name.slice(0, -RESULT_EXT.length) };
  if (name.endsWith(LOG_EXT) && name.length > LOG_EXT.length) return notFile ?? { role: "log", id: name.slice(0, -LOG_EXT.length) };
  return notFile ?? { role: "ignored", code: "not_in_contract", reason: `not <id>${ACTION_EXT}, <id>${RESULT_EXT} or <id>${LOG_EXT}` };
}

/** Why an entry of `kind` is no file, as a problem or a reason: "a directory, not a file". */
export function notAFile(kind: Exclude<EntryKind, "file">): string {
  return `${KIND_TEXT[kind]}, not a file`;
}

const KIND_TEXT: Record<Exclude<EntryKind, "file">, string> = {
  symlink: "a symlink",
  directory: "a directory",
  submodule: "a submodule (gitlink)",
};

/** An entry's path as printed: one line, quoted, control characters escaped. */
export function showPath(path: string): string {
  return JSON.stringify(path);
}
