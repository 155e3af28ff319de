// The lab base image download against a real HTTP server on the loopback: verified against the
// configured digest, cached by it, never kept when it does not match, errors naming the URL.
import * as crypto from "crypto";
import * as fs from "fs";
import * as http from "http";
import type { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import { baseVolumeName, fetchVerified, parseChecksum } from "../../providers/libvirt/image-download";

const IMAGE = crypto.randomBytes(300_000);
const sha = (alg: string, b: Buffer) => crypto.createHash(alg).update(b).digest("hex");
const SHA256 = `sha256:${sha("sha256", IMAGE)}`;
const SHA512 = `sha512:${sha("sha512", IMAGE)}`;

let server: http.Server;
let base: string;
let cache: string;
const requests: string[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    requests.push(req.url!);
    if (req.url === "/image.qcow2") {
      res.writeHead(200, { "content-length": IMAGE.length });
      res.end(IMAGE);
      return;
    }
    if (req.url === "/moved") {
      res.writeHead(302, { location: "/image.qcow2" });
      res.end();
      return;
    }
    if (req.url === "/short") {
      // announces the whole image, sends half, then closes: a broken-off download
      res.writeHead(200, { "content-length": IMAGE.length });
      res.write(IMAGE.subarray(0, IMAGE.length / 2));
      res.destroy();
      return;
    }
    res.writeHead(404, "Not Found");
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  cache = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-images-"));
  requests.length = 0;
});
afterEach(() => fs.rmSync(cache, { recursive: true, force: true }));

const files = () => fs.readdirSync(cache);

test("downloads, verifies (sha256 and sha512) and caches by digest; a second call does not download", async () => {
  const seen: number[] = [];
  const file = await fetchVerified(`${base}/image.qcow2`, SHA256, { cacheDir: cache, progress: (n) => seen.push(n) });
  expect(fs.readFileSync(file).equals(IMAGE)).toBe(true);
  expect(path.basename(file)).toBe(SHA256.replace(":", "-"));
  expect(seen[seen.length - 1]).toBe(IMAGE.length);
  expect(await fetchVerified(`${base}/image.qcow2`, SHA256, { cacheDir: cache })).toBe(file);
  expect(requests).toEqual(["/image.qcow2"]);
  const f512 = await fetchVerified(`${base}/moved`, SHA512, { cacheDir: cache });
  expect(fs.readFileSync(f512).equals(IMAGE)).toBe(true);
  expect(requests).toEqual(["/image.qcow2", "/moved", "/image.qcow2"]);
});

test("a digest mismatch is refused, names both digests and the keys, and keeps nothing", async () => {
  const wrong = `sha256:${"0".repeat(64)}`;
  await expect(fetchVerified(`${base}/image.qcow2`, wrong, { cacheDir: cache })).rejects.toThrow(
    new RegExp(
      `lab.baseImage: ${base}/image.qcow2 \\(300000 bytes\\) has sha256 ${SHA256.slice(7)}, but lab.baseImageChecksum is ${wrong}`,
    ),
  );
  expect(files()).toEqual([]);
});

test("a cached file that no longer matches is fetched again", async () => {
  const file = await fetchVerified(`${base}/image.qcow2`, SHA256, { cacheDir: cache });
  fs.writeFileSync(file, "corrupted");
  await fetchVerified(`${base}/image.qcow2`, SHA256, { cacheDir: cache });
  expect(fs.readFileSync(file).equals(IMAGE)).toBe(true);
  expect(requests).toEqual(["/image.qcow2", "/image.qcow2"]);
});

test("HTTP errors, broken-off transfers and unreachable servers name the URL and what happened", async () => {
  await expect(fetchVerified(`${base}/nope.qcow2`, SHA256, { cacheDir: cache })).rejects.toThrow(
    `lab.baseImage: GET ${base}/nope.qcow2 answered 404 Not Found`,
  );
  await expect(fetchVerified(`${base}/short`, SHA256, { cacheDir: cache })).rejects.toThrow(
    new RegExp(`lab.baseImage: GET ${base}/short (broke off after \\d+ bytes|failed)`),
  );
  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  await expect(fetchVerified(`http://127.0.0.1:${port}/x`, SHA256, { cacheDir: cache })).rejects.toThrow(
    new RegExp(`lab.baseImage: GET http://127.0.0.1:${port}/x failed: .*ECONNREFUSED`),
  );
  expect(files()).toEqual([]);
});

test("checksums parse strictly; the pool volume is named by the digest", () => {
  expect(parseChecksum(SHA256.toUpperCase().replace("SHA256", "sha256"))).toEqual({ algorithm: "sha256", hex: SHA256.slice(7) });
  expect(() => parseChecksum(`sha512:${"a".repeat(64)}`)).toThrow(/lab.baseImageChecksum/);
  expect(baseVolumeName(SHA256)).toBe(`k8sbm-base-sha256-${SHA256.slice(7, 23)}.qcow2`);
  expect(baseVolumeName(SHA512)).not.toBe(baseVolumeName(SHA256));
});
