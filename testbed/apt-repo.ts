// A signed flat apt repository of the node image's .debs: the lab's stand-in for the Kubernetes
// package repository (a lab host serves it over HTTP), so the program's repository path —
// key download, fingerprint check, `signed-by` list, apt's signature check, pinned installs —
// runs for real. The signing key is made per build and thrown away.
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export interface AptRepo {
  dir: string;
  /** the signing key's fingerprint as gpg prints it */
  fingerprint: string;
}

const gpg = (home: string, args: string[], opts: { cwd?: string } = {}): string =>
  execFileSync("gpg", ["--batch", "--pinentry-mode", "loopback", "--passphrase", "", ...args], {
    encoding: "utf8",
    env: { ...process.env, GNUPGHOME: home },
    stdio: ["ignore", "pipe", "pipe"],
    ...opts,
  });

/** Builds the repository in `dir` (replaced) from the .debs in `debs` (directories): Packages, Release, InRelease, Release.key. */
export function buildAptRepo(dir: string, ...debs: string[]): AptRepo {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  // linked, not copied (the containerd package carries the lab's images)
  for (const d of debs)
    for (const f of fs.readdirSync(d).filter((f) => f.endsWith(".deb"))) fs.linkSync(path.join(d, f), path.join(dir, f));
  const packages = execFileSync("dpkg-scanpackages", ["--multiversion", ".", "/dev/null"], {
    cwd: dir,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
    maxBuffer: 16 << 20,
  });
  fs.writeFileSync(path.join(dir, "Packages"), packages);
  const sha256 = crypto.createHash("sha256").update(packages).digest("hex");
  fs.writeFileSync(
    path.join(dir, "Release"),
    [
      "Origin: k8s-baremetal lab",
      "Label: k8s-baremetal lab",
      `Date: ${new Date().toUTCString()}`,
      "SHA256:",
      ` ${sha256} ${Buffer.byteLength(packages)} Packages`,
      "",
    ].join("\n"),
  );
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-gpg-"));
  try {
    gpg(home, ["--quick-gen-key", "k8s-baremetal lab repository <lab@localhost>", "ed25519", "sign", "never"]);
    const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(gpg(home, ["--with-colons", "--list-keys"]))![1];
    fs.writeFileSync(path.join(dir, "Release.key"), gpg(home, ["--armor", "--export", fingerprint]));
    gpg(home, ["--local-user", fingerprint, "--clearsign", "--output", "InRelease", "Release"], { cwd: dir });
    return { dir, fingerprint };
  } finally {
    try {
      execFileSync("gpgconf", ["--kill", "gpg-agent"], { env: { ...process.env, GNUPGHOME: home }, stdio: "ignore" });
    } catch {
      // no agent was started
    }
    fs.rmSync(home, { recursive: true, force: true });
  }
}
