// A lab base image given as a URL: downloaded once into a cache on the machine running Pulumi,
// verified against the checksum from the stack config, and only then handed to libvirt. The
// cache is content-addressed (algorithm and digest), so a verified file is never fetched again
// and a partial or corrupt one is never used.
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export type Checksum = { algorithm: "sha256" | "sha512"; hex: string };

/** "sha256:<hex>" | "sha512:<hex>" (what lab.baseImageChecksum holds; the schema checks the form) */
export function parseChecksum(s: string): Checksum {
  const m = /^(sha256|sha512):([0-9a-fA-F]+)$/.exec(s.trim());
  if (!m || m[2].length !== (m[1] === "sha256" ? 64 : 128))
    throw new Error(`lab.baseImageChecksum: "${s}" is not sha256:<64 hex digits> or sha512:<128 hex digits>`);
  return { algorithm: m[1] as Checksum["algorithm"], hex: m[2].toLowerCase() };
}

/** The pool volume a URL image becomes: named by its digest, so another image is another volume. */
export function baseVolumeName(checksum: string): string {
  const c = parseChecksum(checksum);
  return `k8sbm-base-${c.algorithm}-${c.hex.slice(0, 16)}.qcow2`;
}

export function imageCacheDir(): string {
  const base = process.env.K8SBM_CACHE || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "k8s-baremetal");
  return path.join(base, "images");
}

async function digestOf(file: string, algorithm: Checksum["algorithm"]): Promise<string> {
  const h = crypto.createHash(algorithm);
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest("hex");
}

export interface Progress {
  (received: number, total: number | undefined): void;
}

/**
 * The verified image file for url: from the cache when a file there still has the digest, else
 * downloaded (redirects followed), hashed while it streams, and kept only when the digest
 * matches. Errors name the URL, the HTTP status or network error, and both digests.
 */
export async function fetchVerified(url: string, checksum: string, opts: { cacheDir?: string; progress?: Progress } = {}): Promise<string> {
  const want = parseChecksum(checksum);
  const dir = opts.cacheDir ?? imageCacheDir();
  const file = path.join(dir, `${want.algorithm}-${want.hex}`);
  if (fs.existsSync(file) && (await digestOf(file, want.algorithm)) === want.hex) return file;
  fs.mkdirSync(dir, { recursive: true });
  const part = `${file}.${process.pid}.part`;
  let res: Response;
  try {
    res = await fetch(url, { redirect: "follow" });
  } catch (e) {
    const cause = (e as { cause?: { message?: string } }).cause?.message;
    throw new Error(`lab.baseImage: GET ${url} failed: ${cause ?? (e as Error).message}`);
  }
  if (res.status !== 200 || !res.body) throw new Error(`lab.baseImage: GET ${url} answered ${res.status} ${res.statusText}`);
  const total = Number(res.headers.get("content-length")) || undefined;
  const h = crypto.createHash(want.algorithm);
  const out = fs.createWriteStream(part, { mode: 0o644 });
  let received = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      h.update(chunk);
      received += chunk.length;
      if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
      opts.progress?.(received, total);
    }
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  } catch (e) {
    out.destroy();
    fs.rmSync(part, { force: true });
    throw new Error(`lab.baseImage: GET ${url} broke off after ${received} bytes: ${(e as Error).message}`);
  }
  const got = h.digest("hex");
  if (got !== want.hex) {
    fs.rmSync(part, { force: true });
    throw new Error(
      `lab.baseImage: ${url} (${received} bytes) has ${want.algorithm} ${got}, but lab.baseImageChecksum is ${want.algorithm}:${want.hex}; ` +
        "the download was discarded. Check the checksum against the image's published SUMS file (and that the URL names the same image)",
    );
  }
  fs.renameSync(part, file);
  return file;
}
