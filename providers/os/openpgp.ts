// The fingerprint of an OpenPGP public key (RFC 4880 §12.2), so a repository's signing key that a
// node downloads is checked against the one pinned in config before apt is told to trust it.
// Pure: no gpg needed on the node or here.
import { createHash } from "node:crypto";

const PUBLIC_KEY = 6;

/** The binary packets of an ASCII-armoured block (its CRC line and headers skipped), or the bytes as they are. */
export function dearmor(key: Buffer | string): Buffer {
  const text = typeof key === "string" ? key : key.toString("latin1");
  const begin = text.indexOf("-----BEGIN PGP PUBLIC KEY BLOCK-----");
  if (begin < 0) {
    if (typeof key === "string") throw new Error("not an OpenPGP public key: no armour header and not binary");
    return key;
  }
  const end = text.indexOf("-----END PGP PUBLIC KEY BLOCK-----", begin);
  if (end < 0) throw new Error("not an OpenPGP public key: the armour has no end line");
  const lines = text.slice(begin, end).split(/\r?\n/).slice(1);
  const blank = lines.findIndex((l) => l.trim() === ""); // the armour headers end at the first blank line
  const body = (blank >= 0 ? lines.slice(blank + 1) : lines).filter((l) => l && !l.startsWith("="));
  return Buffer.from(body.join(""), "base64");
}

/** Each packet's tag and body (old and new header formats; partial lengths are refused). */
function* packets(data: Buffer): Generator<{ tag: number; body: Buffer }> {
  let i = 0;
  while (i < data.length) {
    const h = data[i++];
    if (!(h & 0x80)) throw new Error(`not an OpenPGP public key: byte ${i - 1} is not a packet header`);
    let tag: number;
    let len: number;
    if (h & 0x40) {
      tag = h & 0x3f;
      const o1 = data[i++];
      if (o1 < 192) len = o1;
      else if (o1 < 224) len = ((o1 - 192) << 8) + data[i++] + 192;
      else if (o1 === 255) {
        len = data.readUInt32BE(i);
        i += 4;
      } else throw new Error("not an OpenPGP public key: a partial-length packet");
    } else {
      tag = (h >> 2) & 0x0f;
      const type = h & 3;
      if (type === 3) len = data.length - i;
      else {
        const n = [1, 2, 4][type];
        len = data.readUIntBE(i, n);
        i += n;
      }
    }
    if (i + len > data.length) throw new Error("not an OpenPGP public key: a packet runs past the end");
    yield { tag, body: data.subarray(i, i + len) };
    i += len;
  }
}

/** The primary keys' fingerprints, upper-case hex (version 4 keys: SHA-1 over the key packet). */
export function fingerprints(key: Buffer | string): string[] {
  const out: string[] = [];
  for (const p of packets(dearmor(key))) {
    if (p.tag !== PUBLIC_KEY) continue;
    if (p.body[0] !== 4) throw new Error(`an OpenPGP version ${p.body[0]} key: only version 4 keys are supported`);
    const head = Buffer.from([0x99, p.body.length >> 8, p.body.length & 0xff]);
    out.push(createHash("sha1").update(head).update(p.body).digest("hex").toUpperCase());
  }
  if (!out.length) throw new Error("not an OpenPGP public key: no public key packet");
  return out;
}
