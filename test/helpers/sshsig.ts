// Commits signed with an SSH key made here, written by node as one pack: thousands of signed
// commits in a second or two (git commit -S runs ssh-keygen once per commit). The signatures are
// genuine SSHSIG (PROTOCOL.sshsig: namespace "git", sha512), so git verifies each one with
// ssh-keygen as it would a pushed commit's; the key is in no allowed-signers file.
import { execFileSync } from "node:child_process";
import { createHash, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { deflateSync } from "node:zlib";

/** SSH wire "string": a uint32 length, then the bytes */
function str(b: Buffer | string): Buffer {
  const data = Buffer.from(b);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

export interface SshKey {
  /** the public key's wire form (string "ssh-ed25519", string key) */
  publicBlob: Buffer;
  /** an armored SSH signature of `message` in namespace "git" */
  sign(message: Buffer): string;
}

export function createSshKey(): SshKey {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url");
  const publicBlob = Buffer.concat([str("ssh-ed25519"), str(raw)]);
  return { publicBlob, sign: (m) => sshsig(m, publicBlob, privateKey) };
}

function sshsig(message: Buffer, publicBlob: Buffer, key: KeyObject): string {
  const magic = Buffer.from("SSHSIG");
  const digest = createHash("sha512").update(message).digest();
  const signed = Buffer.concat([magic, str("git"), str(""), str("sha512"), str(digest)]);
  const signature = Buffer.concat([str("ssh-ed25519"), str(sign(null, signed, key))]);
  const version = Buffer.alloc(4);
  version.writeUInt32BE(1);
  const blob = Buffer.concat([magic, version, str(publicBlob), str("git"), str(""), str("sha512"), str(signature)]);
  const lines = blob.toString("base64").match(/.{1,70}/g)!;
  return ["-----BEGIN SSH SIGNATURE-----", ...lines, "-----END SSH SIGNATURE-----"].join("\n");
}

/** A pack entry's header: type 1 (commit) and the size, 4 bits then 7 bits a byte. */
function entryHeader(size: number): Buffer {
  const bytes = [(1 << 4) | (size & 0x0f)];
  for (let rest = size >> 4; rest > 0; rest >>= 7) {
    bytes[bytes.length - 1]! |= 0x80;
    bytes.push(rest & 0x7f);
  }
  return Buffer.from(bytes);
}

/**
 * `count` commits on top of `parent`, each with `tree` (nothing changes), signed by `key`, the
 * message ending in `trailer` when given; one pack indexed into the bare repo. Returns the last.
 */
export function writeSignedHistory(gitDir: string, parent: string, tree: string, count: number, key: SshKey, trailer?: string): string {
  let tip = parent;
  const when = Math.floor(Date.now() / 1000);
  const head = Buffer.alloc(12);
  head.write("PACK");
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(count, 8);
  const parts: Buffer[] = [head];
  for (let i = 0; i < count; i++) {
    const ident = `Pusher <pusher@example.test> ${when + i} +0000`;
    const headers = `tree ${tree}\nparent ${tip}\nauthor ${ident}\ncommitter ${ident}\n`;
    const message = `noise ${i}\n${trailer ? `\n${trailer}\n` : ""}`;
    const gpgsig = `gpgsig ${key.sign(Buffer.from(`${headers}\n${message}`)).split("\n").join("\n ")}\n`;
    const body = Buffer.from(`${headers}${gpgsig}\n${message}`);
    tip = createHash("sha1").update(`commit ${body.length}\0`).update(body).digest("hex");
    parts.push(entryHeader(body.length), deflateSync(body));
  }
  const pack = Buffer.concat(parts);
  execFileSync("git", ["index-pack", "--stdin"], { cwd: gitDir, input: Buffer.concat([pack, createHash("sha1").update(pack).digest()]) });
  return tip;
}
