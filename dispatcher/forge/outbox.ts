// Unsent forge reports in a JSON file beside the dispatcher's clone, replaced atomically (write,
// then rename) on every change. A report is idempotent on the forge (a status is set by context,
// the comment found again by its marker), so sending one again after a crash does no harm; what
// the file holds survives a forge outage and a restart of this instance.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { ForgeReport } from "../core/forge.js";
import type { ForgeOutboxPort } from "../core/ports.js";

export function createFileOutbox(file: string): ForgeOutboxPort {
  return {
    load() {
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
        throw err;
      }
      const parsed = JSON.parse(text) as { reports?: ForgeReport[] };
      return Array.isArray(parsed.reports) ? parsed.reports : [];
    },
    save(reports) {
      mkdirSync(dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify({ reports }, null, 2)}\n`, { mode: 0o600 });
      renameSync(tmp, file);
    },
  };
}

/** what `status` shows: the outbox as the daemon left it (empty when there is none) */
export function readOutbox(file: string): ForgeReport[] {
  return createFileOutbox(file).load();
}
