// SSH signing keys made with ssh-keygen, and an allowed-signers file naming some of them.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Signers {
  /** private key file of each named signer */
  key(name: string): string;
  /** the allowed-signers file: `<name>@example.test namespaces="git" <public key>` for `allowed` */
  allowedSigners: string;
  cleanup(): void;
}

export function createSigners(names: string[], allowed: string[]): Signers {
  const dir = mkdtempSync(join(tmpdir(), "signers-"));
  for (const n of names) execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", n, "-f", join(dir, n)]);
  const allowedSigners = join(dir, "allowed_signers");
  writeFileSync(allowedSigners, allowed.map((n) => `${n}@example.test namespaces="git" ${readFileSync(join(dir, `${n}.pub`), "utf8").trim()}\n`).join(""));
  return { key: (n) => join(dir, n), allowedSigners, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
