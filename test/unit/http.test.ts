import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttp, HttpFailure } from "../../dispatcher/http.js";
import { waitUntil } from "../helpers/process.js";
import { startRecordingServer, type RecordingServer, type SeenRequest } from "../helpers/http-server.js";

let server: RecordingServer;
let base: string;
let seen: SeenRequest[];
/** answers of /v1/hold requests, sent when the test calls them */
const held: (() => void)[] = [];

beforeAll(async () => {
  server = await startRecordingServer((req, res) => {
    if (req.url?.startsWith("/v1/json")) return res.writeHead(200, { "X-Nomad-Index": "42" }).end('{"a":1}');
    if (req.url?.startsWith("/v1/text")) return res.writeHead(500).end("rpc error: no such job");
    if (req.url?.startsWith("/v1/bytes")) return res.writeHead(200).end(Buffer.from([0, 1, 2, 255]));
    if (req.url?.startsWith("/v1/stream")) {
      res.writeHead(200);
      res.write("one\n");
      setTimeout(() => res.end("two\n"), 20);
      return;
    }
    if (req.url?.startsWith("/v1/hold")) return void held.push(() => res.writeHead(200).end("{}"));
    // /v1/slow: never answers
  });
  base = server.url;
  seen = server.seen;
});

afterAll(() => server.close());

const http = () => createHttp({ baseUrl: base, headers: { "X-Nomad-Token": "t0k" }, params: { namespace: "dispatch", region: undefined }, maxSockets: 4 });

describe("createHttp", () => {
  it("sends the base headers and query, JSON bodies, and leaves undefined parameters out", async () => {
    const res = await http().request({ method: "PUT", url: "/v1/json/x", params: { index: 7, meta: true, skip: undefined }, data: { Path: "p" } });
    expect(res).toMatchObject({ status: 200, data: { a: 1 } });
    expect(res.headers["x-nomad-index"]).toBe("42");
    const last = seen.at(-1)!;
    expect([last.method, last.url, last.body, last.headers["x-nomad-token"], last.headers["content-type"]]).toEqual([
      "PUT",
      "/v1/json/x?namespace=dispatch&index=7&meta=true",
      '{"Path":"p"}',
      "t0k",
      "application/json",
    ]);
  });

  it("adds a request's own headers to the client's, the request's winning", async () => {
    await http().request({ url: "/v1/json/y", headers: { "X-Nomad-Token": "other", "X-Extra": "1" } });
    const last = seen.at(-1)!;
    expect([last.headers["x-nomad-token"], last.headers["x-extra"]]).toEqual(["other", "1"]);
  });

  it("hands a text answer over as text, whatever the status", async () => {
    expect(await http().request({ url: "/v1/text" })).toMatchObject({ status: 500, data: "rpc error: no such job" });
  });

  it("hands bytes over untouched", async () => {
    expect((await http().request({ url: "/v1/bytes", responseType: "bytes" })).data).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it("streams a response until the server ends it", async () => {
    const res = await http().request({ url: "/v1/stream", responseType: "stream", timeout: 0 });
    const chunks: string[] = [];
    for await (const c of res.data) chunks.push((c as Buffer).toString());
    expect(chunks.join("")).toBe("one\ntwo\n");
  });

  it("fails with ETIMEDOUT when no answer comes in time", async () => {
    const err = await http().request({ url: "/v1/slow", timeout: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpFailure);
    expect(err).toMatchObject({ code: "ETIMEDOUT", message: "no answer within 50 ms" });
  });

  it("fails with ABORTED when its signal aborts", async () => {
    const stop = new AbortController();
    const pending = http().request({ url: "/v1/slow", signal: stop.signal, timeout: 0 });
    setTimeout(() => stop.abort(), 20);
    await expect(pending).rejects.toMatchObject({ code: "ABORTED" });
  });

  it("fails with the socket's code when nothing listens", async () => {
    const closed = createHttp({ baseUrl: "http://127.0.0.1:1", headers: {}, params: {}, maxSockets: 1 });
    await expect(closed.request({ url: "/v1/json" })).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("keeps requests past the pool waiting in the client, and a stream's slot until it ends", async () => {
    const pool = http(); // 4 connections
    const stream = await pool.request({ url: "/v1/stream", responseType: "stream", timeout: 0 });
    const answers = Array.from({ length: 5 }, () => pool.request({ url: "/v1/hold" }));
    await waitUntil(async () => held.length >= 3, 2000, 10);
    await new Promise((r) => setTimeout(r, 50));
    // the stream holds one of the four until its end (20 ms after it began)
    expect(held).toHaveLength(3);
    for await (const _ of stream.data) void _;
    await waitUntil(async () => held.length >= 4, 2000, 10);
    expect(held).toHaveLength(4);
    held.splice(0).forEach((answer) => answer());
    await waitUntil(async () => held.length >= 1, 2000, 10);
    expect(held).toHaveLength(1);
    held.splice(0).forEach((answer) => answer());
    expect((await Promise.all(answers)).map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
  });

  it("gives a free connection to an urgent request before those that waited longer", async () => {
    const pool = http(); // 4 connections
    const busy = Array.from({ length: 4 }, () => pool.request({ url: "/v1/hold", params: { who: "busy" } }));
    const later = pool.request({ url: "/v1/hold", params: { who: "bookkeeping" } });
    const first = pool.request({ url: "/v1/hold", params: { who: "start" }, urgent: true });
    await waitUntil(async () => held.length >= 4, 2000, 10);
    await new Promise((r) => setTimeout(r, 50));
    const sent = () => seen.map((r) => new URL(r.url!, "http://x").searchParams.get("who")).filter((w) => w !== null);
    expect(sent()).toEqual(["busy", "busy", "busy", "busy"]);
    // a freed connection's next request goes out a few event-loop turns later (axios's pipeline)
    held.splice(0, 1).forEach((answer) => answer());
    await waitUntil(async () => sent().length > 4, 2000, 10);
    expect(sent().slice(4)).toEqual(["start"]);
    held.splice(0).forEach((answer) => answer());
    await waitUntil(async () => sent().length > 5, 2000, 10);
    expect(sent().slice(4)).toEqual(["start", "bookkeeping"]);
    held.splice(0).forEach((answer) => answer());
    await Promise.all([...busy, later, first]);
  });
});
