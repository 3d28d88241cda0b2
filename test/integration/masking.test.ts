// What the runner masks in the formula's output, end to end: a multi-line key printed whole,
// with CRLF line ends and line by line, and a value stored with a trailing newline, in the
// result's tail and in the stored full log. A secret too short to mask is refused before the
// formula runs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createTestDispatcher, deleteSecret, grantSecret, uniq } from "../helpers/stack.js";

const u = uniq();
const KEY = `MASK_KEY_${u.toUpperCase()}`;
const PASS = `MASK_PASS_${u.toUpperCase()}`;
const SHORT = `MASK_SHORT_${u.toUpperCase()}`;
const ENC = `MASK_ENC_${u.toUpperCase()}`;
/** a value with the characters each encoding changes */
const encValue = `Pa ss/w+rd&x=y"z'${u}`;
const keyLines = ["-----BEGIN TEST KEY-----", `first-${u}-line`, `second-${u}-line`, "-----END TEST KEY-----"];
const keyValue = `${keyLines.join("\n")}\n`;
const passValue = `pass-${u}-word\n`;
const ids = { mask: `mask-${u}`, short: `short-${u}`, enc: `enc-${u}` };
let remote: OpsRemote;

// printed first (only in the stored log, past the tail) and again last (in the result's tail)
const print = `echo "whole:"; printf '%s\\n' "$${KEY}"
echo "crlf:"; printf '%s\\n' "$${KEY}" | sed 's/$/\\r/'
echo "line: $(printf '%s' "$${KEY}" | sed -n 3p)"
echo "pass: $${PASS}."`;

async function result(id: string): Promise<ActionResult> {
  return JSON.parse((await remote.read(`vault/actions/${id}.result.json`))!) as ActionResult;
}

beforeAll(async () => {
  await grantSecret(KEY, keyValue);
  await grantSecret(PASS, passValue);
  await grantSecret(SHORT, "ab\n");
  await grantSecret(ENC, encValue);
  remote = await createOpsRemote({
    "formulas/leaky.sh": `#!/usr/bin/env bash\n${print}\nfor i in $(seq 1 400); do echo "filler line $i"; done\n${print}\n`,
    "formulas/noop.sh": "#!/usr/bin/env bash\necho should not run\n",
    [`vault/actions/${ids.mask}.toml`]: `id = "${ids.mask}"\nformula = "leaky"\ncontext = "c"\nsecrets = ["${KEY}", "${PASS}"]\n`,
    "formulas/encode.sh": `#!/usr/bin/env bash
S="$${ENC}"
for p in "" a ab; do echo "base64 '$p': $(printf '%s' "$p$S" | base64 -w0)"; done
echo "base64 url: $(printf '%s' "$S" | base64 -w0 | tr '+/' '-_')"
echo "uri: $(jq -rn --arg s "$S" '$s|@uri')"
echo "json: $(jq -cn --arg s "$S" '{password: $s}')"
echo "quoted: $(printf '%q' "$S")"
curl -sv -u "deploy:$S" "$VAULT_ADDR/v1/sys/health" -o /dev/null 2>&1 | grep -i '^> authorization'
`,
    [`vault/actions/${ids.enc}.toml`]: `id = "${ids.enc}"\nformula = "encode"\ncontext = "c"\nsecrets = ["${ENC}"]\n`,
    [`vault/actions/${ids.short}.toml`]: `id = "${ids.short}"\nformula = "noop"\ncontext = "c"\nsecrets = ["${SHORT}"]\n`,
  });
  await (await createTestDispatcher(remote.remote, { DISPATCHER_SECRETS: [KEY, PASS, SHORT, ENC].join(",") })).loop.once();
}, 180_000);

afterAll(async () => {
  for (const name of [KEY, PASS, SHORT, ENC]) await deleteSecret(name);
  await remote?.cleanup();
});

describe("masking", () => {
  it("masks multi-line, CRLF-printed, single-line and trailing-newline secrets in the result and the stored log", async () => {
    const r = await result(ids.mask);
    expect(r.status).toBe("succeeded");
    const log = await remote.read(`vault/actions/${ids.mask}.log`);
    expect(log).toBeDefined();
    for (const text of [r.logs, log!]) {
      for (const secret of [...keyLines, keyValue.trim(), `pass-${u}-word`]) expect(text).not.toContain(secret);
      // the values' own trailing newlines are printed back; only the values are secret
      expect(text).toContain("whole:\n[redacted]\n\ncrlf:\n[redacted]\r\n\r\nline: [redacted]\npass: [redacted]\n.");
    }
  });

  it("refuses a secret shorter than the masker's minimum before the formula runs", async () => {
    const r = await result(ids.short);
    expect(r).toMatchObject({
      status: "failed",
      exit_code: 90,
      error: {
        class: "secret_missing",
        message: `secret ${SHORT} at kv/data/runner/${SHORT} is 2 characters long: values shorter than 4 cannot be masked in the formula's output; store a longer value`,
      },
    });
    expect(r.logs).not.toContain("should not run");
  });

  it("masks each encoded form of a secret the formula prints: base64 at three alignments, URL-safe, URI, JSON, printf %q, a Basic auth header", async () => {
    const r = await result(ids.enc);
    expect(r.status).toBe("succeeded");
    const lines = r.logs.trimEnd().split("\n");
    expect(lines.map((l) => l.replace(/:.*$/, ""))).toEqual(["base64 ''", "base64 'a'", "base64 'ab'", "base64 url", "uri", "json", "quoted", "> Authorization"]);
    for (const line of lines) expect(line, line).toContain("[redacted]");
    // nothing left in a line decodes to 8 characters of the secret
    const core = encValue.slice(3, 11);
    const b64 = (t: string) => Buffer.from(t.replace(/\[redacted\]/g, ""), "base64").toString("latin1");
    for (const line of lines) {
      const rest = line.slice(line.indexOf(":") + 1).replace(/^ (Basic )?/, "");
      expect(rest).not.toContain(core);
      expect(b64(rest)).not.toContain(core);
      expect(decodeURIComponent(rest.replace(/\[redacted\]/g, ""))).not.toContain(core);
    }
    expect(lines[7]).toMatch(/^> Authorization: Basic ZGVwbG95O[A-Za-z0-9+/]{0,4}\[redacted\][A-Za-z0-9+/=]{0,4}\r?$/);
  });
});
