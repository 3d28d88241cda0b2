// Counts a process's HTTP requests by method and path shape (ids left out), for the notes: a
// preload, `node --import <abs>/dist/bench/count-requests.js ...` (e.g. in BENCH_NODE_ARGS). When
// the process exits it writes {"<port> <METHOD> <path>": n, ...} to
// $BENCH_REQUEST_COUNT_DIR/requests-<pid>.json. node:http's own diagnostics channel: every request
// axios (and node-vault through it) sends is seen, nothing in the process is changed.
import { subscribe } from "node:diagnostics_channel";
import { mkdirSync, writeFileSync } from "node:fs";
import type { ClientRequest } from "node:http";
import { join } from "node:path";

const dir = process.env.BENCH_REQUEST_COUNT_DIR;
const counts = new Map<string, number>();

/** the path without its query and ids: a dispatched job, an allocation, a ledger key */
export function shapeOf(path: string): string {
  return path
    .replace(/\?.*$/, "")
    .replace(/dispatch-\d+-[0-9a-f]+/g, "dispatch-*")
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "<uuid>")
    .replace(/(\/v1\/var\/dispatcher\/[^/]+\/[^/]+\/).*/, "$1*");
}

if (dir) {
  subscribe("http.client.request.start", (message) => {
    const req = (message as { request: ClientRequest }).request;
    // the Nomad agent's and OpenBao's ports tell the two apart
    const port = String(req.getHeader("host") ?? "").replace(/^.*:/, "");
    const key = `${port} ${req.method} ${shapeOf(req.path)}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  });
  process.on("exit", () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `requests-${process.pid}.json`), JSON.stringify(Object.fromEntries([...counts].sort((a, b) => b[1] - a[1])), null, 1));
  });
}
