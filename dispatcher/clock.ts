import type { Clock } from "./core/ports.js";

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const aborted = () => (clearTimeout(timer), reject(signal!.reason));
      // a long-lived signal (the Vault keep-alive sleeps on one every few seconds) keeps no listener per sleep
      const timer = setTimeout(() => (signal?.removeEventListener("abort", aborted), resolve()), ms);
      signal?.addEventListener("abort", aborted, { once: true });
    }),
};
