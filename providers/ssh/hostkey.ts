// OpenSSH public key lines ("<type> <base64> [comment]"): parsing, fingerprints, and the
// host key algorithms to offer so the server presents the pinned key's type.
import { createHash } from "crypto";

export interface PublicKey {
  type: string;
  /** the SSH wire-format key blob (the decoded base64 field) */
  blob: Buffer;
}

/** The key type encoded at the start of an SSH key blob (a uint32 length + string). */
export function blobType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > blob.length) return undefined;
  return blob.subarray(4, 4 + len).toString("latin1");
}

/** Parses "<type> <base64> [comment]"; throws a clear error on anything else. */
export function parseKeyLine(line: string): PublicKey {
  const fields = String(line ?? "")
    .trim()
    .split(/\s+/);
  if (fields.length < 2 || !fields[0] || !fields[1]) {
    throw new Error(`not an OpenSSH public key line ("<type> <base64>"): ${JSON.stringify(String(line).slice(0, 80))}`);
  }
  const [type, b64] = fields;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new Error(`public key of type ${type}: invalid base64`);
  const blob = Buffer.from(b64, "base64");
  const inner = blobType(blob);
  if (inner !== type) {
    throw new Error(`public key of type ${type}: the key data says ${inner ?? "nothing readable"}`);
  }
  return { type, blob };
}

/** "<type> <base64>" for a key blob as presented by a server. */
export function keyLineOf(blob: Buffer): string {
  const type = blobType(blob);
  if (!type) throw new Error("unreadable host key blob");
  return `${type} ${blob.toString("base64")}`;
}

/** OpenSSH's SHA256 fingerprint of a blob: "SHA256:" + unpadded base64. */
export function fingerprintOfBlob(blob: Buffer): string {
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

/** OpenSSH's SHA256 fingerprint of a public key line, as `ssh-keygen -l` prints it. */
export function fingerprint(line: string): string {
  return fingerprintOfBlob(parseKeyLine(line).blob);
}

/** Server host key algorithms to offer so the server proves the key of this type. */
export function hostKeyAlgorithms(type: string): string[] {
  switch (type) {
    case "ssh-ed25519":
    case "ecdsa-sha2-nistp256":
    case "ecdsa-sha2-nistp384":
    case "ecdsa-sha2-nistp521":
      return [type];
    case "ssh-rsa":
      return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
    default:
      throw new Error(`unsupported host key type ${type} (use ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa)`);
  }
}
