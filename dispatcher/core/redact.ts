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
  const plain = lines.length === 1 ? [v] : [v, lines.join("\n"), lines.join("\r\n"), ...lines];
  return [...plain, ...encodedForms(v)];
}

/** An encoded form shorter than this is not masked: it would match ordinary text (a secret this short has its plain forms masked only). */
export const MIN_ENCODED_LENGTH = 8;

/**
 * The forms a value takes in ordinary output: base64 (the value anywhere in an encoded stream:
 * each of the three byte alignments, only the characters the value alone decides; so also the
 * password inside a Basic auth header), its URL-safe alphabet, URL-encoded (upper- and lower-case
 * hex), JSON-escaped and shell-quoted as bash's `printf %q` prints it.
 */
export function encodedForms(v: string): string[] {
  const bytes = Buffer.from(v, "utf8");
  const forms: string[] = [];
  for (const k of [0, 1, 2]) {
    const b64 = Buffer.concat([Buffer.alloc(k), bytes, Buffer.alloc(2)]).toString("base64");
    const form = b64.slice(Math.ceil((8 * k) / 6), Math.floor((8 * (k + bytes.length)) / 6));
    forms.push(form, form.replace(/\+/g, "-").replace(/\//g, "_"));
  }
  const url = encodeURIComponent(v);
  forms.push(url, url.replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase()), url.replace(/%20/g, "+"));
  forms.push(JSON.stringify(v).slice(1, -1));
  forms.push(shellQuoted(v));
  return [...new Set(forms)].filter((f) => f !== v && f.length >= MIN_ENCODED_LENGTH);
}

/** bash's `printf %q`: a backslash before each character the shell would read otherwise; $'…' for a value with control characters. */
function shellQuoted(v: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(v)) {
    const ansi = v.replace(/[\\']/g, (c) => `\\${c}`).replace(/[\x00-\x1f\x7f]/g, (c) => ({ "\n": "\\n", "\t": "\\t", "\r": "\\r" })[c] ?? `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
    return `$'${ansi}'`;
  }
  return v.replace(/[ '"\\|&;()<>!{}*[\]?^$`,]|^[~#]/g, (c) => `\\${c}`);
}

function maskable(values: Iterable<string>): string[] {
  // longest first: the whole value is replaced before any of its lines
  return [...new Set([...values].flatMap(formsOf))].filter((x) => x.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
}

function maskWith(text: string, pattern: RegExp | undefined): string {
  // one pass, longest first: a value inside another, or inside a marker, is never re-matched
  const masked = pattern ? text.replace(pattern, MARKER) : text;
  return masked.replace(TOKEN_SHAPE, "[redacted-token]");
}

function patternOf(list: string[]): RegExp | undefined {
  return list.length === 0 ? undefined : new RegExp(list.map(escape).join("|"), "g");
}

export function redact(text: string, values: Iterable<string>): string {
  return maskWith(text, patternOf(maskable(values)));
}

/**
 * A streaming masker: feed chunks, get masked text. It holds back only the end of the stream
 * that could be the start of a value, so a value split across chunks (or lines) is still
 * masked and ordinary output flows at once.
 */
export function createMasker(values: string[]): { push(chunk: string): string; end(): string } {
  const list = maskable(values);
  const pattern = patternOf(list);
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
      const masked = maskWith(pending + chunk, pattern);
      const keep = heldBack(masked);
      pending = masked.slice(masked.length - keep);
      return masked.slice(0, masked.length - keep);
    },
    end() {
      const rest = maskWith(pending, pattern);
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
