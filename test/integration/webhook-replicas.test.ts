// The webhook's replay guard shared by replicas (nomad/deliveries.ts): two dispatchers behind one
// ingress, handed the same signed delivery at the same time, start one pass between them, and a
// replay to either starts none; past the guard's window the delivery counts again, once.
import { createHmac, randomUUID } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Served } from "../../dispatcher/server/http.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { sleep } from "../helpers/process.js";
import { replayKey } from "../../dispatcher/server/webhook.js";
import { createTestDispatcher, nomadHttp, stackEnv, uniq, type TestDispatcher } from "../helpers/stack.js";

const u = uniq();
const secret = `hook-${randomUUID()}`;
const prefix = `dispatcher/hooks-${u}`;
let remote: OpsRemote;
const replicas: { d: TestDispatcher; served: Served; pushes: number }[] = [];

beforeAll(async () => {
  remote = await createOpsRemote({ "formulas/noop.sh": "#!/usr/bin/env bash\ntrue\n" });
  const secretFile = join(await mkdtemp(join(tmpdir(), "hook-")), "secret");
  await writeFile(secretFile, `${secret}\n`);
  for (const name of ["a", "b"]) {
    const d = await createTestDispatcher(remote.remote, {
      DISPATCHER_INSTANCE: `hooks-${u}-${name}`,
      DISPATCHER_LEDGER_PREFIX: prefix,
      DISPATCHER_LISTEN: "127.0.0.1:0",
      DISPATCHER_WEBHOOK_SECRET_FILE: secretFile,
      DISPATCHER_WEBHOOK_REPLAY_SECONDS: "4",
    });
    const replica = { d, served: (await d.serve())!, pushes: 0 };
    // what a delivery that is let through does: wake the loop (no loop runs here)
    d.loop.wake = () => void replica.pushes++;
    replicas.push(replica);
  }
}, 60_000);

afterAll(async () => {
  for (const r of replicas) {
    await r.served.close();
    r.d.close();
  }
  await remote?.cleanup();
});

const sign = (body: string) => createHmac("sha256", secret).update(body).digest("hex");

async function deliver(to: Served, body: string): Promise<string> {
  const res = await fetch(`${to.url}/hooks/push`, { method: "POST", body, headers: { "Content-Type": "application/json", "X-Gitea-Signature": sign(body), "X-Gitea-Event": "push", "X-Gitea-Delivery": `d-${u}` } });
  expect(res.status).toBe(202);
  return res.text();
}

it("two replicas handed the same delivery at once start one pass between them; a replay to either starts none; past the window it counts once again", async () => {
  const body = JSON.stringify({ ref: "refs/heads/main", after: "a".repeat(40), nonce: u });
  const both = await Promise.all(replicas.map((r) => deliver(r.served, body)));
  expect(both.sort()).toEqual([`delivery d-${u} was already handled\n`, "pass started\n"]);
  expect(replicas.map((r) => r.pushes).reduce((a, b) => a + b)).toBe(1);
  // a replay to the one that refused it, and to the one that took it
  expect(await deliver(replicas[0]!.served, body)).toBe(`delivery d-${u} was already handled\n`);
  expect(await deliver(replicas[1]!.served, body)).toBe(`delivery d-${u} was already handled\n`);
  expect(replicas.map((r) => r.pushes).reduce((a, b) => a + b)).toBe(1);
  // the record in the ledger's store, beside the ledger
  const listed = (await (await nomadHttp("GET", `/v1/vars?prefix=${prefix}/deliveries/&namespace=${stackEnv().NOMAD_NAMESPACE}`)).json()) as { Path: string }[];
  expect(listed.map((v) => v.Path)).toEqual([`${prefix}/deliveries/${replayKey(Buffer.from(body))}`]);

  // past the window the delivery counts again, for one replica; the expired record was taken over
  await sleep(4500);
  const again = await Promise.all(replicas.map((r) => deliver(r.served, body)));
  expect(again.sort()).toEqual([`delivery d-${u} was already handled\n`, "pass started\n"]);
  expect(replicas.map((r) => r.pushes).reduce((a, b) => a + b)).toBe(2);
});
