import type { ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNomadPort, type AllocationEventBatch } from "../../../dispatcher/nomad/client.js";
import { startRecordingServer, type RecordingServer } from "../../helpers/http-server.js";

let server: RecordingServer;
let addr: string;
/** what the next /v1/event/stream answer writes, chunk by chunk */
let streamChunks: Buffer[] = [];

beforeAll(async () => {
  server = await startRecordingServer((req, res: ServerResponse) => {
    if (!req.url?.startsWith("/v1/event/stream")) return void res.writeHead(404).end("no");
    res.writeHead(200);
    const chunks = [...streamChunks];
    const next = () => (chunks.length === 0 ? res.end() : res.write(chunks.shift()!, () => setTimeout(next, 2)));
    next();
  });
  addr = server.url;
});

afterAll(() => server.close());

function allocEvent(id: string, jobId: string, message: string): unknown {
  const Events = [{ Type: "Terminated", ExitCode: 3 }, { Type: "Killed", DisplayMessage: message }];
  return { Topic: "Allocation", Payload: { Allocation: { ID: id, JobID: jobId, NodeName: "n1", ClientStatus: "failed", CreateIndex: 5, TaskStates: { runner: { State: "dead", Failed: true, Events } } } } };
}

describe("allocationEvents", () => {
  it("reads a batch split over many small chunks, a character cut in two included, and heartbeats between batches", async () => {
    // 300 events make a line of ~50 KB; "é" is two bytes in UTF-8
    const big = `${JSON.stringify({ Index: 9, Events: Array.from({ length: 300 }, (_, i) => allocEvent(`a${i}`, "runner/dispatch-1", `killed é ${i}`)) })}\n`;
    const bytes = Buffer.from(`{}\n${big}\n{}\n`);
    const cut = bytes.indexOf(Buffer.from("é")) + 1;
    streamChunks = [bytes.subarray(0, cut)];
    for (let at = cut; at < bytes.length; at += 997) streamChunks.push(bytes.subarray(at, at + 997));

    const port = createNomadPort({ addr });
    const seen: AllocationEventBatch[] = [];
    for await (const batch of port.allocationEvents(0, new AbortController().signal)) seen.push(batch);

    expect(seen.map((b) => (b.heartbeat ? "heartbeat" : `${b.index}:${b.allocations.length}`))).toEqual(["heartbeat", "9:300", "heartbeat"]);
    const batch = seen[1] as Extract<AllocationEventBatch, { index: number }>;
    expect(batch.allocations[0]).toMatchObject({ id: "a0", failureMessage: "killed é 0" });
    expect(batch.allocations[299]).toMatchObject({ id: "a299", jobId: "runner/dispatch-1", exitCode: 3, clientStatus: "failed", failureMessage: "killed é 299" });
  });
});
