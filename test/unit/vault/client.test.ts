import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultApiError } from "../../../dispatcher/errors.js";
import { callVault, createVaultClient, statusOf } from "../../../dispatcher/vault/client.js";
import { startRecordingServer, type RecordingServer, type SeenRequest } from "../../helpers/http-server.js";

// The wire format only; every Vault behaviour is tested against OpenBao in test/integration.
let server: RecordingServer;
let addr: string;
let seen: SeenRequest[];

beforeAll(async () => {
  server = await startRecordingServer((req, res) => {
    const json = (status: number, value: unknown) => res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(value));
    if (req.url === "/v1/kv/data/ok") return json(200, { data: { data: { value: "v" } } });
    if (req.url === "/v1/kv/data/denied") return json(403, { errors: ["permission denied"] });
    if (req.url === "/v1/kv/data/bare") return res.writeHead(502).end();
    if (req.url === "/v1/auth/token/revoke-self") return res.writeHead(204).end();
    if (req.url === "/v1/sys/health") return json(503, { sealed: true, initialized: true, version: "2.4.0" });
    json(404, { errors: [] });
  });
  addr = server.url;
  seen = server.seen;
});

afterAll(() => server.close());

describe("createVaultClient", () => {
  it("reads with the client's token and writes JSON, a call's own headers winning", async () => {
    const client = createVaultClient(addr, "s.own");
    expect(await client.read("kv/data/ok")).toEqual({ data: { data: { value: "v" } } });
    await client.write("auth/token/revoke-self", { a: 1 }, { headers: { "X-Vault-Token": "s.other", "X-Vault-Wrap-TTL": "60s" } });
    const [read, write] = [seen.at(-2)!, seen.at(-1)!];
    expect([read.method, read.headers["x-vault-token"]]).toEqual(["GET", "s.own"]);
    expect([write.method, write.body, write.headers["x-vault-token"], write.headers["x-vault-wrap-ttl"]]).toEqual(["POST", '{"a":1}', "s.other", "60s"]);
  });

  it("sends no token at all when it has none, whatever VAULT_TOKEN holds", async () => {
    process.env.VAULT_TOKEN = "s.from-env";
    try {
      await createVaultClient(addr).read("kv/data/ok");
    } finally {
      delete process.env.VAULT_TOKEN;
    }
    expect(seen.at(-1)!.headers["x-vault-token"]).toBeUndefined();
  });

  it("uses a token replaced in place for the next call", async () => {
    const client = createVaultClient(addr);
    client.token = "s.after-login";
    await client.read("kv/data/ok");
    expect(seen.at(-1)!.headers["x-vault-token"]).toBe("s.after-login");
  });

  it("answers health even when Vault says sealed (503)", async () => {
    expect(await createVaultClient(addr).health()).toEqual({ sealed: true, initialized: true, version: "2.4.0" });
  });
});

describe("callVault", () => {
  it("names the operation, the status and Vault's first error", async () => {
    const client = createVaultClient(addr, "s.own");
    const err = await callVault("read secret denied", () => client.read("kv/data/denied")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VaultApiError);
    expect((err as Error).message).toBe("vault: read secret denied failed (HTTP 403: permission denied)");
    expect(statusOf(err)).toBe(403);
  });

  it("falls back to the status when Vault's answer has no errors", async () => {
    const err = await callVault("read secret bare", () => createVaultClient(addr).read("kv/data/bare")).catch((e: unknown) => e);
    expect([(err as Error).message, statusOf(err)]).toEqual(["vault: read secret bare failed (HTTP 502: Status 502)", 502]);
  });

  it("gives the socket's code and no status when nothing answers", async () => {
    const err = await callVault("read health", () => createVaultClient("http://127.0.0.1:1").health()).catch((e: unknown) => e);
    expect([(err as Error).message, statusOf(err)]).toEqual(["vault: read health failed (ECONNREFUSED)", undefined]);
  });
});
