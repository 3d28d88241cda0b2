// Secret values and tokens never leave a process unmasked. The runner masks the values it holds
// in the formula's output; the dispatcher masks tokens it minted and anything token-shaped.

/** Vault/OpenBao token shapes: s./b./r. legacy and hvs./hvb./hvr. prefixed. */
const TOKEN_SHAPE = /\b(?:hv[sbr]|[sbr])\.[A-Za-z0-9._-]{20,}/g;
const MARKER = "[redacted]";

function escape(v: string): string {
  return v.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Shorter values would mask ordinary words: the runner refuses a secret this short instead. */
export const MIN_SECRET_LENGTH = 4;

/** A value as stored without its trailing newline (what `echo "$S"` and a file read add back). */
export function trimSecret(value: string): string {
  return value.replace(/\r?\n$/, "");
}

/**
 * What to look for of one value: the value, the same printed with CRLF line ends, and each of
 * its lines alone (a formula that prints a key file line by line, or one line of it).
 */
function formsOf(value: string): string[] {
  const v = trimSecret(value);
  const lines = v.split(/\r?\n/);
  return lines.length === 1 ? [v] : [v, lines.join("\n"), lines.join("\r\n"), ...lines];
}

function maskable(values: Iterable<string>): string[] {
  // longest first: the whole value is replaced before any of its lines
  return [...new Set([...values].flatMap(formsOf))].filter((x) => x.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
}

export function redact(text: string, values: Iterable<string>): string {
  const list = maskable(values);
  // one pass, longest first: a value inside another, or inside a marker, is never re-matched
  const masked = list.length === 0 ? text : text.replace(new RegExp(list.map(escape).join("|"), "g"), MARKER);
  return masked.replace(TOKEN_SHAPE, "[redacted-token]");
}

/**
 * A streaming masker: feed chunks, get masked text. It holds back only the end of the stream
 * that could be the start of a value, so a value split across chunks (or lines) is still
 * masked and ordinary output flows at once.
 */
export function createMasker(values: string[]): { push(chunk: string): string; end(): string } {
  const list = maskable(values);
  let pending = "";
  function heldBack(text: string): number {
    const longest = list[0]?.length ?? 0;
    for (let k = Math.min(longest - 1, text.length); k > 0; k--) {
      const suffix = text.slice(-k);
      if (list.some((v) => v.startsWith(suffix))) return k;
    }
    return 0;
  }
  return {
    push(chunk) {
      const masked = redact(pending + chunk, list);
      const keep = heldBack(masked);
      pending = masked.slice(masked.length - keep);
      return masked.slice(0, masked.length - keep);
    },
    end() {
      const rest = redact(pending, list);
      pending = "";
      return rest;
    },
  };
}

/** The last `bytes` of text, starting on a UTF-8 character boundary. */
export function tail(text: string, bytes: number): string {
  const buf = Buffer.from(text);
  if (buf.length <= bytes) return text;
  let start = buf.length - bytes;
  while (start < buf.length && (buf[start]! & 0xc0) === 0x80) start++;
  return buf.subarray(start).toString("utf8");
}
