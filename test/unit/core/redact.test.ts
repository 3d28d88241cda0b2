import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { createMasker, redact, tail } from "../../../dispatcher/core/redact.js";

describe("redact", () => {
  it("masks every occurrence of each value", () => {
    expect(redact("pw=hunter2; again hunter2", ["hunter2"])).toBe("pw=[redacted]; again [redacted]");
  });

  it("masks the longest value first so a value containing another is masked whole", () => {
    expect(redact("key abcd-efgh and abcd", ["abcd", "abcd-efgh"])).toBe("key [redacted] and [redacted]");
    // same result whatever order the values come in
    expect(redact("key abcd-efgh and abcd", ["abcd-efgh", "abcd"])).toBe("key [redacted] and [redacted]");
  });

  it("leaves values shorter than 4 characters alone (too likely to mangle ordinary text)", () => {
    expect(redact("a b abc abcd", ["abc", "a", ""])).toBe("a b abc abcd");
    expect(redact("a b abc abcd", ["abcd"])).toBe("a b abc [redacted]");
  });

  it("treats values literally, not as patterns", () => {
    expect(redact("x a.b*c+ y aXbbc z", ["a.b*c+"])).toBe("x [redacted] y aXbbc z");
  });

  it("accepts any iterable of values", () => {
    expect(redact("one secret1 two", new Set(["secret1"]))).toBe("one [redacted] two");
  });

  it("masks legacy s./b./r. tokens and prefixed hvs./hvb./hvr. tokens", () => {
    const body = "A1b2C3d4E5f6G7h8I9j0kLmN";
    for (const prefix of ["s.", "b.", "r.", "hvs.", "hvb.", "hvr."]) {
      expect(redact(`token=${prefix}${body} end`, [])).toBe("token=[redacted-token] end");
    }
  });

  it("masks token bodies containing dots, dashes and underscores whole", () => {
    expect(redact("hvs.CAESIJ_abc-def.ghi0123456789XYZ next", [])).toBe("[redacted-token] next");
  });

  it("leaves token-like text alone when the body is shorter than 20 characters", () => {
    const short = "hvs.abcdefghij012345678"; // 19 characters after the dot
    expect(redact(short, [])).toBe(short);
    expect(redact("hvs.abcdefghij0123456789", [])).toBe("[redacted-token]");
  });

  it("needs a word boundary before the prefix", () => {
    const text = "see items.abcdefghijklmnopqrstuvwxyz and xhvs.abcdefghijklmnopqrstuvwxyz";
    expect(redact(text, [])).toBe(text);
  });

  it("masks values and tokens together", () => {
    expect(redact("v=topsecret t=s.0123456789abcdefghijKL", ["topsecret"])).toBe("v=[redacted] t=[redacted-token]");
  });
});

describe("createMasker", () => {
  const pem = "-----BEGIN KEY-----\nline-one-abc\nline-two-def\n-----END KEY-----\n";

  it("masks each line of a multi-line secret as well as the whole value", () => {
    const m = createMasker([pem]);
    const out = m.push("whole:\n" + pem + "one line: line-two-def\nfooter: -----END KEY-----\n") + m.end();
    expect(out).toBe("whole:\n[redacted]\none line: [redacted]\nfooter: [redacted]\n");
  });

  it("masks a multi-line secret printed with CRLF line ends", () => {
    const m = createMasker([pem]);
    expect(m.push(`crlf:\r\n${pem.trimEnd().replaceAll("\n", "\r\n")}\r\nafter\r\n`) + m.end()).toBe("crlf:\r\n[redacted]\r\nafter\r\n");
  });

  it("matches a value stored with a trailing newline wherever it is printed without one", () => {
    const m = createMasker(["hunter2-pass\n"]);
    expect(m.push("pw=hunter2-pass; done\n") + m.end()).toBe("pw=[redacted]; done\n");
  });

  it("leaves lines of a multi-line secret shorter than the minimum alone (the whole value is still masked)", () => {
    const m = createMasker(["{\nkey: long-value\n}"]);
    expect(m.push("{\nkey: long-value\n}\nbrace: }\n") + m.end()).toBe("[redacted]\nbrace: }\n");
  });

  it("masks a value inside a line and emits everything that cannot start a value", () => {
    const m = createMasker(["hunter2"]);
    expect(m.push("pw=hunter2\nnext ")).toBe("pw=[redacted]\nnext ");
    expect(m.push("line\n")).toBe("line\n");
    expect(m.end()).toBe("");
  });

  it("holds back only a possible start of a value and masks it when the value completes", () => {
    const m = createMasker(["SECRET"]);
    expect(m.push("token: SECR")).toBe("token: ");
    expect(m.push("ET\n")).toBe("[redacted]\n");
    expect(m.end()).toBe("");
  });

  it("masks a value split across chunks with no newline anywhere", () => {
    const m = createMasker(["SECRET"]);
    expect([m.push("xxSECR"), m.push("ETyy"), m.end()].join("")).toBe("xx[redacted]yy");
  });

  it("masks a whole value at the end of a chunk at once", () => {
    const m = createMasker(["SECRET"]);
    expect(m.push("tail SECRET")).toBe("tail [redacted]");
    expect(m.end()).toBe("");
  });

  it("masks a multi-line value (a key file) split at its newline: line by line, nothing of it shown", () => {
    const key = "-----BEGIN KEY-----\nabcdef\n-----END KEY-----";
    const m = createMasker([key]);
    const first = m.push("key:\n-----BEGIN KEY-----\nab");
    expect(first).toBe("key:\n[redacted]\n");
    expect(first + m.push("cdef\n-----END KEY-----\ndone\n") + m.end()).toBe("key:\n[redacted]\n[redacted]\n[redacted]\ndone\n");
  });

  it("masks a value split across chunks with the newline in the first chunk", () => {
    const m = createMasker(["SECRET"]);
    expect(m.push("a\nSECR")).toBe("a\n");
    expect(m.push("ET is done\n")).toBe("[redacted] is done\n");
  });

  it("masks a value split across three chunks ending a line", () => {
    const m = createMasker(["PASSWORD123"]);
    const out = [m.push("x PASS"), m.push("WORD"), m.push("123\n"), m.end()].join("");
    expect(out).toBe("x [redacted]\n");
  });

  it("never emits a prefix of a value that has not been completed yet", () => {
    const m = createMasker(["SECRET"]);
    const emitted = [m.push("aaaaaaaaaaS"), m.push("E"), m.push("C"), m.push("R")].join("");
    expect(emitted).toBe("aaaaaaaaaa");
    expect(m.end()).toBe("SECR");
  });

  it("end() flushes the held-back tail, masked", () => {
    const m = createMasker(["SECRET", "LONGERVALUE1"]);
    expect(m.push("x SECRET LONGER")).toBe("x [redacted] ");
    expect(m.end()).toBe("LONGER");
    expect(m.end()).toBe("");
  });

  it("end() flushes a partial value as is (it never became a secret)", () => {
    const m = createMasker(["SECRET"]);
    expect(m.push("SECR")).toBe("");
    expect(m.end()).toBe("SECR");
  });

  it("masks token shapes in emitted text", () => {
    const m = createMasker([]);
    expect(m.push("using hvs.abcdefghijklmnopqrstuvwxyz now\n")).toBe("using [redacted-token] now\n");
  });

  it("with no values passes text through, holding nothing back", () => {
    const m = createMasker([]);
    expect(m.push("abc")).toBe("abc");
    expect(m.push("def")).toBe("def");
    expect(m.end()).toBe("");
  });

  it("loses nothing: line-sized chunks give the masked whole", () => {
    const values = ["alpha-secret", "beta-9999"];
    const input = "start alpha-secret\nmid beta-9999 and alpha-secret\nend\n";
    const m = createMasker(values);
    let out = "";
    for (const line of input.split(/(?<=\n)/)) out += m.push(line);
    out += m.end();
    expect(out).toBe(redact(input, values));
    expect(out).toBe("start [redacted]\nmid [redacted] and [redacted]\nend\n");
  });
});

describe("tail", () => {
  it("returns the text unchanged when it fits", () => {
    expect(tail("hello", 5)).toBe("hello");
    expect(tail("hello", 100)).toBe("hello");
    expect(tail("", 0)).toBe("");
  });

  it("keeps the last bytes of ASCII text", () => {
    expect(tail("0123456789", 4)).toBe("6789");
  });

  it("counts bytes, not characters", () => {
    // "é" is 2 bytes: "aéb" is 4 bytes
    expect(Buffer.byteLength("aéb")).toBe(4);
    expect(tail("aéb", 3)).toBe("éb");
  });

  it("drops a character cut in the middle instead of emitting a replacement character", () => {
    // "€" is 3 bytes, so "a€b" is 5 bytes and its last 4 bytes are exactly "€b"
    expect(tail("a€b", 4)).toBe("€b");
    // last 3 bytes start in the middle of "€"
    expect(tail("a€b", 3)).toBe("b");
    expect(tail("a€b", 2)).toBe("b");
  });

  it("cuts at a 4-byte character boundary", () => {
    const s = "x😀😀";
    expect(Buffer.byteLength(s)).toBe(9);
    expect(tail(s, 8)).toBe("😀😀");
    expect(tail(s, 7)).toBe("😀");
    expect(tail(s, 5)).toBe("😀");
    expect(tail(s, 3)).toBe("");
  });

  it("never returns more than the byte budget", () => {
    const s = "ab€😀cdé€€😀z";
    for (let n = 0; n <= Buffer.byteLength(s); n++) {
      const t = tail(s, n);
      expect(Buffer.byteLength(t)).toBeLessThanOrEqual(n);
      expect(s.endsWith(t)).toBe(true);
      expect(t).not.toContain("\uFFFD");
    }
  });
});

describe("redact in one pass", () => {
  it("never re-matches a shorter value inside a marker it wrote", () => {
    expect(redact("pw=topsecretvalue", ["topsecretvalue", "acted"])).toBe("pw=[redacted]");
  });

  it("keeps a replacement character that was in the text (tail)", () => {
    expect(tail("x\uFFFDb", 4)).toBe("\uFFFDb");
  });
});

describe("encoded forms of a secret", () => {
  const secret = "p@ss w0rd/with+odd&chars=\"q\"";
  const masked = (text: string) => !redact(text, [secret]).includes(text.trim()) && !redact(text, [secret]).includes("w0rd");

  it("masks base64 of the value at each of the three byte alignments, and its URL-safe alphabet", () => {
    for (const prefix of ["", "a", "ab", "abc", "user:"]) {
      const b64 = Buffer.from(`${prefix}${secret}\n`).toString("base64");
      const out = redact(`data ${b64} end`, [secret]);
      expect(out).toContain("[redacted]");
      // what remains of the encoded value cannot decode to the secret or any 8 characters of it
      expect(Buffer.from(out.replace(/^data |\[redacted\]| end$/g, ""), "base64").toString("latin1")).not.toContain(secret.slice(4, 12));
      expect(redact(b64.replace(/\+/g, "-").replace(/\//g, "_"), [secret])).toContain("[redacted]");
    }
  });

  it("masks the password of a Basic auth header (what curl -v -u user:$T prints)", () => {
    const header = `> Authorization: Basic ${Buffer.from(`deploy:${secret}`).toString("base64")}\n`;
    const out = redact(header, [secret]);
    expect(out).toMatch(/^> Authorization: Basic [A-Za-z0-9+/]{0,12}\[redacted\][A-Za-z0-9+/=]{0,4}\n$/);
  });

  it("masks the URL-encoded (either hex case, + for space), JSON-escaped and printf %q forms", () => {
    const q = execFileSync("bash", ["-c", 'printf %q "$S"'], { env: { S: secret } }).toString();
    for (const text of [encodeURIComponent(secret), encodeURIComponent(secret).toLowerCase(), encodeURIComponent(secret).replace(/%20/g, "+"), JSON.stringify(secret), JSON.stringify({ password: secret }), q]) {
      expect(masked(text), text).toBe(true);
    }
  });

  it("masks bash's $'…' form of a value with a newline, and the JSON-escaped key file", () => {
    const key = "-----BEGIN KEY-----\nAAAAsecretbody\n-----END KEY-----";
    const q = execFileSync("bash", ["-c", 'printf %q "$S"'], { env: { S: key } }).toString();
    expect(redact(q, [key])).toBe("[redacted]");
    expect(redact(JSON.stringify({ key }), [key])).toBe('{"key":"[redacted]"}');
  });

  it("does not mask encoded forms shorter than 8 characters (ordinary text would match)", () => {
    expect(redact(Buffer.from("abcd").toString("base64"), ["abcd"])).toBe("YWJjZA==");
  });
});

describe("the masker with encoded forms", () => {
  it("masks a base64 form split across chunks", () => {
    const secret = "a-long-enough-secret-value";
    const b64 = Buffer.from(secret).toString("base64");
    const m = createMasker([secret]);
    const out = m.push(`x ${b64.slice(0, 10)}`) + m.push(`${b64.slice(10)} y\n`) + m.end();
    expect(out).not.toContain(b64.slice(2, 30));
    expect(out).toContain("[redacted]");
  });
});
