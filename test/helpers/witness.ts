// The formula's own side effect, counted outside the dispatcher: a formula tells this loopback
// witness its action id (bash's /dev/tcp, from inside its exec task: the task shares the host's
// network), and the witness appends each id to a file. How often a formula really ran, whatever
// Nomad and the results say.
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";

export interface Witness {
  port: number;
  /** the file each run's action id is appended to */
  file: string;
  /** runs per action id, read back from the file */
  runs(): Map<string, number>;
  /** a bash line for a formula: reports $ACTION_ID to the witness (the formula fails when it cannot) */
  line: string;
  close(): Promise<void>;
}

export async function startWitness(file: string): Promise<Witness> {
  writeFileSync(file, "");
  const server = createServer((socket) => {
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (data += chunk));
    socket.on("end", () => {
      const ids = data.split("\n").filter(Boolean);
      if (ids.length > 0) appendFileSync(file, ids.map((id) => `${id}\n`).join(""));
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    file,
    line: `echo "$ACTION_ID" >/dev/tcp/127.0.0.1/${port}`,
    runs() {
      const counts = new Map<string, number>();
      for (const id of readFileSync(file, "utf8").split("\n").filter(Boolean)) counts.set(id, (counts.get(id) ?? 0) + 1);
      return counts;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
