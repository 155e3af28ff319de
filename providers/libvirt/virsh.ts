// Running virsh against a libvirt URI (qemu:///system here, or qemu+ssh://user@host/system).
// Every failure names the URI, the command and virsh's stderr.
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export interface VirshResult {
  stdout: string;
  stderr: string;
  code: number;
}

export function virsh(uri: string, args: string[], opts: { stdin?: string; allowFail?: boolean } = {}): Promise<VirshResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      "virsh",
      ["-q", "-c", uri, ...args],
      { maxBuffer: 64 * 1024 * 1024, timeout: 10 * 60_000 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === "number"
            ? Number((err as { code?: unknown }).code)
            : 1
          : 0;
        if (code !== 0 && !opts.allowFail)
          reject(
            new Error(
              `libvirt ${uri}: virsh ${args.join(" ")} exited ${code}: ${String(stderr || err?.message)
                .trim()
                .slice(0, 2000)}`,
            ),
          );
        else resolve({ stdout: String(stdout), stderr: String(stderr), code });
      },
    );
    // always close stdin: a prompt (e.g. libssh asking to accept an unknown host key) fails
    // at once instead of waiting for the 10-minute timeout
    child.stdin?.end(opts.stdin ?? "");
  });
}

/** A volume's path on the hypervisor; undefined when the pool has no such volume. */
export async function volPath(v: { uri: string; pool: string; name: string }): Promise<string | undefined> {
  const r = await virsh(v.uri, ["vol-path", "--pool", v.pool, v.name], { allowFail: true });
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/**
 * virsh *-define wants a file. Not /dev/stdin: Node gives a child a socket as stdin, and opening
 * /proc/self/fd/0 of a socket fails (ENXIO). A private temporary file, removed afterwards.
 */
export async function defineFrom(uri: string, verb: "net-define" | "define", xml: string, live?: string): Promise<void> {
  xml = withUuidOf(live, xml);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-virsh-"));
  try {
    const file = path.join(dir, "definition.xml");
    fs.writeFileSync(file, xml, { mode: 0o600 });
    await virsh(uri, [verb, file]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Redefining an existing domain or network needs its uuid (libvirt refuses "already exists with
 * uuid …" otherwise): our XML with the live definition's uuid after <name>.
 */
export function withUuidOf(live: string | undefined, xml: string): string {
  const uuid = live?.match(/<uuid>([^<]+)<\/uuid>/)?.[1];
  if (!uuid || /<uuid>/.test(xml)) return xml;
  return xml.replace(/(<name>[^<]*<\/name>)/, `$1\n  <uuid>${uuid}</uuid>`);
}

const KIB: Record<string, number> = {
  b: 1 / 1024,
  bytes: 1 / 1024,
  KiB: 1,
  k: 1,
  KB: 1000 / 1024,
  MiB: 1024,
  M: 1024,
  MB: 1e6 / 1024,
  GiB: 1024 ** 2,
  G: 1024 ** 2,
  GB: 1e9 / 1024,
};

/**
 * The parts of libvirt XML the program owns, in a canonical form. libvirt adds uuids, MACs of
 * bridges, PCI addresses...; comparing only what we wrote keeps refresh free of noise. libvirt
 * writes attributes in single quotes and memory in KiB: both are normalised here.
 */
export function ownedParts(xml: string): string[] {
  const x = xml.replace(/<!--[\s\S]*?-->/g, "").replace(/(\s[\w:-]+)='([^']*)'/g, '$1="$2"');
  const pick = [
    /<name>[^<]*<\/name>/g,
    /<forward mode="[^"]*"/g,
    /<bridge name="[^"]*"/g,
    /<ip address="[^"]*" netmask="[^"]*"/g,
    /<range start="[^"]*" end="[^"]*"/g,
    /<host mac="[^"]*" name="[^"]*" ip="[^"]*"/g,
    /<vcpu[^>]*>[^<]*<\/vcpu>/g,
    /<source (file|network)="[^"]*"/g,
    // a NIC's MAC (first child of <interface>), not the MAC libvirt gives a network's bridge
    /<interface[^>]*>\s*<mac address="[^"]*"/g,
    /<domain type="[^"]*"/g,
    /<(kernel|initrd|cmdline)>[^<]*<\/(kernel|initrd|cmdline)>/g,
  ];
  const memory = [...x.matchAll(/<memory unit="([^"]*)">(\d+)<\/memory>/g)].map((m) => {
    const f = KIB[m[1]];
    return f === undefined ? m[0] : `<memory unit="KiB">${Math.round(Number(m[2]) * f)}</memory>`;
  });
  return [...pick.flatMap((re) => [...x.matchAll(re)].map((m) => m[0].replace(/\s+/g, " "))), ...memory].sort();
}
