import { pino, type Logger } from "pino";
import pinoPretty from "pino-pretty";

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
  /** pretty-print for humans (one line per event, no colours off a terminal); default: when stderr is a TTY */
  pretty?: boolean;
  /** write here instead of stderr (tests capture lines) */
  destination?: NodeJS.WritableStream;
  /** also append plain lines (as on a terminal, without colours) to this file: the old dispatcher.log habit */
  file?: string;
}

/** How a line reads for people: time, level, message, then the event's fields on the same line. */
function prettyStream(destination: NodeJS.WritableStream | string | number, colorize: boolean): pino.DestinationStream {
  return pinoPretty({
    destination,
    colorize,
    singleLine: true,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname",
    // a log file grows for years: never lose lines to a buffer when the process dies
    sync: true,
    mkdir: true,
    append: true,
  });
}

/** The one pino root. Components take children: root.child({ component: "nomad" }). */
export function createLogger(opts: LogOptions = {}): Logger {
  const pretty = opts.pretty ?? (process.stderr.isTTY === true && !opts.destination);
  const base = { level: opts.level ?? process.env.LOG_LEVEL ?? "info", redact: { paths: REDACT, censor: "[redacted]" } };
  const main: pino.DestinationStream = pretty
    ? prettyStream(opts.destination ?? 2, !opts.destination && process.stderr.isTTY === true)
    : ((opts.destination as pino.DestinationStream | undefined) ?? pino.destination(2));
  if (!opts.file) return pino(base, main);
  // every line reaches both: multistream filters by level, the root already did
  return pino(base, pino.multistream([{ stream: main, level: "trace" }, { stream: prettyStream(opts.file, false), level: "trace" }]));
}
