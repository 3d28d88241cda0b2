// Who last changed a path, whether that commit is signed by an allowed key, and which signed
// commits after it approve it. Read with git's own SSH signature check (gpg.ssh.allowedSignersFile).

import type { CommitSignature, Provenance, SignatureStatus } from "../core/ports.js";
import { runGit } from "./exec.js";

// one record per commit: hash, %G?, signer principal, key fingerprint, Approves trailers
const FORMAT = "%H%x00%G?%x00%GS%x00%GK%x00%(trailers:key=Approves,valueonly,separator=%x1f)%x1e";

const STATUS: Record<string, SignatureStatus> = { G: "good", U: "unknown_key", N: "unsigned", B: "bad" };

function parseRecords(out: Buffer): CommitSignature[] {
  return out
    .toString("utf8")
    .split("\x1e")
    .map((r) => r.replace(/^\n/, ""))
    .filter((r) => r.length > 0)
    .map((r) => {
      const [commit = "", code = "", signer = "", key = "", trailers = ""] = r.split("\x00");
      return {
        commit,
        status: STATUS[code] ?? "unverifiable",
        ...(signer ? { signer } : {}),
        ...(key ? { key } : {}),
        approves: trailers.split("\x1f").map((t) => t.trim()).filter(Boolean),
      };
    });
}

/** The last commit at or before `commit` that changed `path`, and the commits after it up to `commit`. */
export async function readProvenance(cwd: string, commit: string, path: string, allowedSignersFile: string): Promise<Provenance> {
  const verify = ["-c", "gpg.format=ssh", "-c", `gpg.ssh.allowedSignersFile=${allowedSignersFile}`];
  const [last] = parseRecords(await runGit(cwd, [...verify, "log", "-1", `--format=${FORMAT}`, commit, "--", path]));
  if (!last) return { path, later: [] };
  const later = last.commit === commit ? [] : parseRecords(await runGit(cwd, [...verify, "log", `--format=${FORMAT}`, `${last.commit}..${commit}`]));
  return { path, last, later };
}
