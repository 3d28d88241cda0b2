// The dispatcher's Vault session over the wire: a first login that fails (Vault down or sealed when
// the dispatcher starts) is retried, by the keep-alive and by the next caller alike, never kept as
// the session's answer for good. Every Vault behaviour beyond the wire is tested against OpenBao.
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Clock } from "../../../dispatcher/core/ports.js";
import { createLogger } from "../../../dispatcher/log.js";
import { createVaultSession } from "../../../dispatcher/vault/login.js";
import { startRecordingServer, type RecordingServer } from "../../helpers/http-server.js";

let server: RecordingServer;
/** lookup-self answers 503 (sealed) this many more times, then 200 */
let failures = 0;

beforeAll(async () => {
  server = await startRecordingServer((req, res) => {
    const json = (status: number, value: unknown) => res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(value));
    if (req.url === "/v1/auth/token/lookup-self") {
      if (failures > 0) {
        failures--;
        return json(503, { errors: ["Vault is sealed"] });
      }
      return json(200, { data: { ttl: 0 } });
    }
    json(404, { errors: [] });
  });
});

afterAll(() => server.close());

function session(sleeps: number[]) {
  const lines: string[] = [];
  const log = createLogger({ level: "info", pretty: false, destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) });
  // the retry's sleeps return at once; the wait for the next renewal lasts until the test stops it
  const clock: Clock = {
    now: () => new Date(),
    sleep: (ms, signal) => {
      sleeps.push(ms);
      if (ms === 5000) return new Promise((resolve) => setImmediate(resolve));
      return new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason as Error), { once: true }));
    },
  };
  return { lines, s: createVaultSession(server.url, { kind: "token", token: "t" }, log, clock) };
}

describe("createVaultSession", () => {
  it("tries the first login again for the next caller after it failed", async () => {
    failures = 1;
    const { s } = session([]);
    await expect(s.ready()).rejects.toThrow("vault: look up own token failed (HTTP 503: Vault is sealed)");
    await expect(s.ready()).resolves.toBeUndefined();
  });

  it("keeps trying to log in when Vault is down at start, every 5 s, then keeps the session alive", async () => {
    failures = 2;
    const sleeps: number[] = [];
    const { s, lines } = session(sleeps);
    const stop = new AbortController();
    const alive = s.keepAlive(stop.signal);
    await expect.poll(() => lines.some((l) => l.includes('"msg":"logged in to Vault"'))).toBe(true);
    stop.abort();
    await expect(alive).resolves.toBeUndefined();
    expect(lines.filter((l) => l.includes('"msg":"Vault login failed; retrying"'))).toHaveLength(2);
    expect(sleeps.slice(0, 2)).toEqual([5000, 5000]);
  });
});
