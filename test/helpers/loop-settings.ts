// The loop's settings for unit tests over in-memory ports: one runner parent pinned as `spec`.
import type { LoopDeps } from "../../dispatcher/core/loop.js";
import { buildPinFile } from "../../dispatcher/core/pins.js";

/** the runner parent's spec as the in-memory Nomad holds it and the pin file pins it */
export const parentSpec = { Driver: "exec" };

export function loopTestSettings(now: Date, over: Partial<LoopDeps["settings"]> = {}): LoopDeps["settings"] {
  return {
    runnerJob: "runner",
    sidecarJob: "sidecar",
    runnerRemote: "git://ops",
    kvMount: "kv",
    defaultTimeoutMinutes: 10,
    tokenGraceSeconds: 60,
    actionsDir: "vault/actions",
    placementSeconds: 60,
    reevaluateSeconds: 0,
    maxLogBytes: 1024,
    tailBytes: 1024,
    pins: buildPinFile(new Map([["runner", parentSpec]]), now),
    knownSecrets: ["GITHUB_TOKEN"],
    classes: [],
    hostVolumes: { ssh: "ssh", gpg: "gpg", sops: "sops" },
    limits: { maxInFlight: 4, serializeBy: "none" },
    leaseMs: 60_000,
    purgeAfterMs: 0,
    namespace: "dispatch",
    dispatcher: { version: "0.1.0", instance: "me" },
    ...over,
  };
}
