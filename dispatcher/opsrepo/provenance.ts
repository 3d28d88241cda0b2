// Who last changed a path (or everything outside a folder), whether that commit is signed by an
// allowed key, and which signed commits after it carry "Approves:" trailers. History is read along
// first parents only, a merge judged against its first parent: a merge whose tree takes an older
// version of a file from its second parent is the change, not that older commit (git's default
// history simplification would follow the parent the file matches and report the old commit).
// Signatures are checked with git's own SSH check (gpg.ssh.allowedSignersFile), each commit once
// per process and allowed-signers file: a long history costs its length once, not every pass.
// A pass checks at most its budget of signatures (approvals.signature_checks_per_pass): what is
// left waits for the next pass, which checks on (Deferred), so no pass is held for minutes by a
// history of thousands of signed commits pushed to stall it.

import { stat } from "node:fs/promises";
import type { CommitSignature, Provenance, SignatureStatus } from "../core/ports.js";
import { Deferred } from "../errors.js";
import { outsideSpec, runGit } from "./exec.js";

// one record per commit: hash, %G?, signer principal, key fingerprint, Approves trailers
const SIGNED = "%H%x00%G?%x00%GS%x00%GK%x00%(trailers:key=Approves,valueonly,separator=%x1f)%x1e";
// the same without the signature: reading it verifies nothing
const TRAILERS = "%H%x00%x00%x00%x00%(trailers:key=Approves,valueonly,separator=%x1f)%x1e";

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

/** verdicts by allowed-signers file (its path, size and mtime: an edited file is read afresh) and commit */
const verdicts = new Map<string, CommitSignature>();
const MAX_VERDICTS = 200_000;
let checks = 0;

/** Commits whose signature this process has checked so far (each once per allowed-signers file). */
export function signatureChecks(): number {
  return checks;
}

/**
 * Commit signatures a pass checks at most unless configured (approvals.signature_checks_per_pass):
 * git runs ssh-keygen twice a commit, about 12 ms of CPU, so a pass spends at most ~6 s on them.
 */
export const SIGNATURE_CHECKS_PER_PASS = 500;

/** The signatures a pass may check; `left` is reset by the repo adapter at each pass's sync. */
export interface SignatureBudget {
  perPass: number;
  left: number;
}

export function createSignatureBudget(perPass: number): SignatureBudget {
  return { perPass, left: perPass };
}

/** commits read by one `git log --no-walk`: a hostile history can carry any number of trailers */
const CHUNK = 1000;

async function signersKey(file: string): Promise<string> {
  const s = await stat(file).catch(() => undefined);
  return `${file}\0${s?.size ?? -1}\0${s?.mtimeMs ?? -1}`;
}

/** checks run one call at a time: the provenances of one approval, read together, share commits (each checked once) and the budget */
let lane: Promise<unknown> = Promise.resolve();

/** The signature verdicts of `commits`, from the cache or, for those not seen yet, git log (a thousand a process). */
function verified(cwd: string, commits: readonly string[], allowedSignersFile: string, budget: SignatureBudget): Promise<CommitSignature[]> {
  const run = lane.then(() => verifyNow(cwd, commits, allowedSignersFile, budget));
  lane = run.catch(() => undefined);
  return run;
}

async function verifyNow(cwd: string, commits: readonly string[], allowedSignersFile: string, budget: SignatureBudget): Promise<CommitSignature[]> {
  const key = await signersKey(allowedSignersFile);
  const missing = [...new Set(commits.filter((c) => !verdicts.has(`${key}\0${c}`)))];
  const got = new Map<string, CommitSignature>();
  if (missing.length > 0) {
    const verify = ["-c", "gpg.format=ssh", "-c", `gpg.ssh.allowedSignersFile=${allowedSignersFile}`];
    for (let i = 0; i < missing.length; ) {
      const n = Math.min(CHUNK, budget.left, missing.length - i);
      if (n <= 0) {
        throw new Deferred(
          `commit signatures: this pass checked the ${budget.perPass} it may (approvals.signature_checks_per_pass); ${missing.length - i} more signed commits of this history are checked by the next passes, each once`,
        );
      }
      budget.left -= n;
      const read = parseRecords(await runGit(cwd, [...verify, "log", "--no-walk=unsorted", `--format=${SIGNED}`, ...missing.slice(i, i + n)]));
      i += n;
      checks += read.length;
      if (verdicts.size + read.length > MAX_VERDICTS) verdicts.clear();
      for (const r of read) {
        verdicts.set(`${key}\0${r.commit}`, r);
        got.set(r.commit, r);
      }
    }
  }
  return commits.map((c) => got.get(c) ?? verdicts.get(`${key}\0${c}`) ?? { commit: c, status: "unverifiable", approves: [] });
}

/**
 * The last commit on `commit`'s first-parent chain that changed `path` (with `outside`: anything
 * not under that folder; `path` is then only the label), how many first-parent commits came after
 * it, and those of them that carry Approves trailers, newest first.
 */
export async function readProvenance(cwd: string, commit: string, path: string, allowedSignersFile: string, budget: SignatureBudget, outside?: string): Promise<Provenance> {
  // every action at a commit shares the provenance of the code, many that of their formula
  const key = `${await signersKey(allowedSignersFile)}\0${cwd}\0${commit}\0${path}\0${outside ?? ""}`;
  let read = memo.get(key);
  if (!read) {
    if (memo.size >= MAX_MEMO) memo.clear();
    read = readOnce(cwd, commit, path, allowedSignersFile, budget, outside);
    memo.set(key, read);
    read.catch(() => memo.delete(key));
  }
  return read;
}

const memo = new Map<string, Promise<Provenance>>();
const MAX_MEMO = 10_000;

async function readOnce(cwd: string, commit: string, path: string, allowedSignersFile: string, budget: SignatureBudget, outside?: string): Promise<Provenance> {
  const spec = ["--", ...(outside === undefined ? [path] : outsideSpec(outside))];
  const last = (await runGit(cwd, ["log", "--first-parent", "-1", "--format=%H", commit, ...spec])).toString("utf8").trim();
  if (!last) return { path, later: [] };
  const after = last === commit ? [] : parseRecords(await runGit(cwd, ["log", "--first-parent", `--format=${TRAILERS}`, `${last}..${commit}`]));
  const approving = after.filter((c) => c.approves.length > 0).map((c) => c.commit);
  const [lastSig, ...later] = await verified(cwd, [last, ...approving], allowedSignersFile, budget);
  return { path, last: lastSig!, later, ...(after.length > 0 ? { distance: after.length } : {}) };
}
