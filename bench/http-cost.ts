// The client's CPU per request of the project's HTTP layer (dispatcher/http.ts: axios, keep-alive,
// the bounded pool) against a local server in another process, warm: a ledger write as the
// dispatcher sends it (PUT, a query, a JSON body, a JSON answer). Server apart: only this process.
//   node dist/bench/http-cost.js [build dir, default this one's dist]
import { fork } from "node:child_process";
import { createServer } from "node:http";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { createHttp as Create } from "../http.js";

const WARM_UP = 3000;
const REQUESTS = 2000;
const ROUNDS = 3;

if (process.argv[2] === "--server") {
  const body = Buffer.from(JSON.stringify({ Path: "dispatcher/bench/actions/a1", ModifyIndex: 123, Items: { state: "claimed", owner: "bench", attempt: "1", action_sha: "a".repeat(40), commit: "c".repeat(40) } }));
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "Content-Type": "application/json", "X-Nomad-Index": "123" });
      res.end(body);
    });
  }).listen(0, "127.0.0.1", () => process.send!((server.address() as { port: number }).port));
} else {
  const build = process.argv[2] ? join(process.argv[2], "http.js") : new URL("../http.js", import.meta.url).pathname;
  const { createHttp } = (await import(pathToFileURL(build).href)) as { createHttp: typeof Create };
  const server = fork(new URL(import.meta.url).pathname, ["--server"]);
  const port = await new Promise<number>((resolve) => server.once("message", (p) => resolve(p as number)));
  const http = createHttp({ baseUrl: `http://127.0.0.1:${port}`, headers: { "X-Nomad-Token": "bench" }, params: { namespace: "dispatch" }, maxSockets: 32 });
  const one = () => http.request({ method: "PUT", url: "/v1/var/dispatcher/bench/actions/a1", params: { cas: 12 }, data: { Path: "dispatcher/bench/actions/a1", Items: { state: "finished", owner: "bench" } } });
  for (let i = 0; i < WARM_UP; i++) await one();
  for (let r = 0; r < ROUNDS; r++) {
    const before = process.cpuUsage();
    for (let i = 0; i < REQUESTS; i++) await one();
    const used = process.cpuUsage(before);
    process.stdout.write(`${build}: ${((used.user + used.system) / REQUESTS).toFixed(0)} µs of the client's CPU per request (warm, ${REQUESTS} requests)\n`);
  }
  http.closeIdle();
  server.kill();
  process.exit(0);
}
