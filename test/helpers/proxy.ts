// A TCP relay in front of a real engine, to take it off the network and bring it back while
// the engine keeps its state (a dev-mode engine restarted loses everything it held).
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface Outage {
  url: string;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function createRelay(target: string): Promise<Outage> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let listenPort = 0;

  function open(): Promise<void> {
    server = createServer((client) => {
      const upstream = createConnection({ host: hostname, port: Number(port) });
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
        s.on("error", () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    return new Promise((resolve) =>
      server!.listen(listenPort, "127.0.0.1", () => {
        listenPort = (server!.address() as { port: number }).port;
        resolve();
      }),
    );
  }

  function shut(): Promise<void> {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  await open();
  return { url: `http://127.0.0.1:${listenPort}`, down: shut, up: open, close: shut };
}
