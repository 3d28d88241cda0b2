#!/usr/bin/env node
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { ConfigInvalid, DispatcherError, ExitError } from "../errors.js";
import { COMMANDS, usage } from "./commands.js";
import { EXIT } from "./common.js";

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage());
    return name ? EXIT.ok : EXIT.usage;
  }
  const command = COMMANDS[name];
  if (!command) throw new ExitError(`unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(", ")}; see dispatcher --help)`, EXIT.usage);
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...command.options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ExitError(`dispatcher ${name}: ${(err as Error).message}\n\n${command.help}`, EXIT.usage);
  }
  if (parsed.values.help) {
    process.stdout.write(`${command.help}\n`);
    return EXIT.ok;
  }
  return command.run(parsed.values as Record<string, string | boolean | undefined>, parsed.positionals);
}

/** The one top-level catch: every error becomes a message and an exit code. */
function exitCodeOf(err: unknown): number {
  if (err instanceof ExitError) return err.exitCode;
  if (err instanceof ConfigInvalid) return EXIT.usage;
  if (err instanceof DispatcherError) return err.class === "invalid" ? EXIT.failed : EXIT.engine;
  return EXIT.internal;
}

// The dispatcher keeps little alive (about 12 KB per action in flight) but allocates fast while it
// dispatches, and V8 by default lets the heap grow to 4x what is alive. Favouring size keeps 2,000
// allocations in flight at ~150 MiB RSS instead of ~225 (make bench), inside the jobspec's 256 MB.
setFlagsFromString("--optimize-for-size");

/**
 * Exits once what was written to stdout and stderr has reached them: into a pipe a large answer
 * (status of 12,000 actions: 1.2 MB) goes in pieces, and process.exit() cut it off.
 */
function exitFlushed(code: number): void {
  let pending = 2;
  const done = () => void (--pending === 0 && process.exit(code));
  process.stdout.write("", done);
  process.stderr.write("", done);
}

main(process.argv.slice(2)).then(exitFlushed, (err: unknown) => {
  const code = exitCodeOf(err);
  const message = err instanceof Error ? (code === EXIT.internal ? (err.stack ?? err.message) : err.message) : String(err);
  if (message) process.stderr.write(`dispatcher: ${message}\n`);
  exitFlushed(code);
});
