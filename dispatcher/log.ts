import { pino, type Logger } from "pino";

export type { Logger };

/** Paths pino censors wherever they appear in a log object. */
const REDACT = [
  "token",
  "*.token",
  "wrappingToken",
  "*.wrappingToken",
  "client_token",
  "*.client_token",
  "headers['x-nomad-token']",
  "headers['x-vault-token']",
  "*.headers['x-nomad-token']",
  "*.headers['x-vault-token']",
  "config.nomad.token",
  "config.vault.token",
];

export interface LogOptions {
  level?: string;
  /** pretty-print for humans; default: when stderr is a TTY */
  pretty?: boolean;
  /** write here instead of stderr (tests capture lines) */
  destination?: NodeJS.WritableStream;
}

/** The one pino root. Components take children: root.child({ component: "nomad" }). */
export function createLogger(opts: LogOptions = {}): Logger {
  const pretty = opts.pretty ?? (process.stderr.isTTY === true && !opts.destination);
  const base = { level: opts.level ?? process.env.LOG_LEVEL ?? "info", redact: { paths: REDACT, censor: "[redacted]" } };
  if (pretty) {
    return pino({ ...base, transport: { target: "pino-pretty", options: { destination: 2 } } });
  }
  return pino(base, (opts.destination as pino.DestinationStream | undefined) ?? pino.destination(2));
}
