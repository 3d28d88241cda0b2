// Secret values and tokens never leave a process unmasked. The runner masks the values it holds
// in the formula's output; the dispatcher masks tokens it minted and anything token-shaped.

/** Vault/OpenBao token shapes: s./b./r. legacy and hvs./hvb./hvr. prefixed. */
const TOKEN_SHAPE = /\b(?:hv[sbr]|[sbr])\.[A-Za-z0-9._-]{20,}/g;

export function redact(text: string, values: Iterable<string>): string {
  let out = text;
  // longest first, so a value containing another is masked whole
  for (const v of [...values].filter((x) => x.length >= 4).sort((a, b) => b.length - a.length)) {
    out = out.split(v).join("[redacted]");
  }
  return out.replace(TOKEN_SHAPE, "[redacted-token]");
}

/**
 * A streaming masker: feed chunks, get masked text. It holds back the last (longest value - 1)
 * characters so a value split across two chunks is still masked.
 */
export function createMasker(values: string[]): { push(chunk: string): string; end(): string } {
  const longest = Math.max(0, ...values.map((v) => v.length));
  let pending = "";
  return {
    push(chunk) {
      pending += chunk;
      // cut at the last newline when there is one: values do not span lines in practice,
      // and line-sized output keeps logs readable
      const nl = pending.lastIndexOf("\n");
      const cut = nl >= 0 ? nl + 1 : Math.max(0, pending.length - (longest - 1));
      const ready = pending.slice(0, cut);
      pending = pending.slice(cut);
      return redact(ready, values);
    },
    end() {
      const rest = redact(pending, values);
      pending = "";
      return rest;
    },
  };
}

/** The last `bytes` of text, cut at a character boundary. */
export function tail(text: string, bytes: number): string {
  const buf = Buffer.from(text);
  if (buf.length <= bytes) return text;
  return buf.subarray(buf.length - bytes).toString("utf8").replace(/^\uFFFD+/, "");
}
