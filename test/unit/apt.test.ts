// The Kubernetes package repository on Debian/Ubuntu nodes: config, the source list, pinned
// packages, and the signing key's fingerprint (checked against the real gpg's).
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConfigError, parseStackConfig } from "../../model/parse";
import { dearmor, fingerprints } from "../../providers/os/openpgp";
import { packageCommands, satisfiedSpecs, unavailablePackages } from "../../providers/os/configurer";
import { updateIndexCommand } from "../../providers/impl/apt-repository";
import { kubernetesRepository, pinnedPackages, sourceLine } from "../../render/apt";
import { NAMESPACE, devConfigCopy, devSecretKeys } from "../fixtures/dev";

const parse = (fn: (c: Record<string, any>) => void) => {
  const c = devConfigCopy();
  fn(c);
  return parseStackConfig(NAMESPACE, c, devSecretKeys).config;
};

function findings(fn: (c: Record<string, any>) => void): { key: string; message: string }[] {
  try {
    parse(fn);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).findings;
  }
  throw new Error("expected a ConfigError, the config parsed");
}

describe("packages.kubernetesRepository", () => {
  test("defaults to the minor channel of cluster.kubernetesVersion, its Release.key, the published key's fingerprint", () => {
    const c = parse((c) => (c.cluster = { ...c.cluster, kubernetesVersion: "v1.36.3" }));
    expect(kubernetesRepository(c)).toEqual({
      name: "kubernetes",
      url: "https://pkgs.k8s.io/core:/stable:/v1.36/deb/",
      keyUrl: "https://pkgs.k8s.io/core:/stable:/v1.36/deb/Release.key",
      fingerprint: "DE15B14486CD377B9E876E1A234654DA9A296436",
    });
  });
  test("a mirror and a fingerprint as gpg prints it (spaces, lower case)", () => {
    const c = parse(
      (c) =>
        (c.packages = {
          kubernetesRepository: {
            url: "http://mirror.example.com:8080/k8s/v1.36/",
            keyFingerprint: "de15 b144 86cd 377b 9e87  6e1a 2346 54da 9a29 6436",
          },
        }),
    );
    expect(kubernetesRepository(c)).toMatchObject({
      url: "http://mirror.example.com:8080/k8s/v1.36/",
      keyUrl: "http://mirror.example.com:8080/k8s/v1.36/Release.key",
      fingerprint: "DE15B14486CD377B9E876E1A234654DA9A296436",
    });
  });
  test("false: no repository", () => {
    expect(kubernetesRepository(parse((c) => (c.packages = { kubernetesRepository: false })))).toBeUndefined();
  });
  test("bad values are refused naming the key", () => {
    const f1 = findings((c) => (c.packages = { kubernetesRepository: { url: "https://pkgs.k8s.io/core:/stable:/v1.36/deb" } }));
    expect(f1).toEqual([
      expect.objectContaining({ key: "packages.kubernetesRepository.url", message: expect.stringMatching(/end with \//) }),
    ]);
    const f2 = findings((c) => (c.packages = { kubernetesRepository: { url: "ftp://x/" } }));
    expect(f2[0].key).toBe("packages.kubernetesRepository.url");
    const f3 = findings((c) => (c.packages = { kubernetesRepository: { keyFingerprint: "234654DA9A296436" } }));
    expect(f3).toEqual([
      expect.objectContaining({ key: "packages.kubernetesRepository.keyFingerprint", message: expect.stringMatching(/40 hex digits/) }),
    ]);
    expect(findings((c) => (c.packages = { kubernetesRepository: { url: "https://x/", trusted: true } }))[0].key).toMatch(
      /^packages\.kubernetesRepository/,
    );
  });
  test("the source list names the keyring that alone may sign it", () => {
    expect(sourceLine({ name: "kubernetes", url: "https://pkgs.k8s.io/core:/stable:/v1.36/deb/" })).toBe(
      "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.asc] https://pkgs.k8s.io/core:/stable:/v1.36/deb/ /\n",
    );
    expect(updateIndexCommand("kubernetes")).toBe(
      "apt-get update -o Dir::Etc::sourcelist='/etc/apt/sources.list.d/kubernetes.list' -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0",
    );
  });
});

describe("pinned packages", () => {
  test("kubeadm, kubelet and kubectl follow the cluster's version; the others are as they are", () => {
    expect(pinnedPackages(["containerd", "cri-tools", "dbus", "kubeadm", "kubelet", "kubectl"], "v1.36.3")).toEqual([
      "containerd",
      "cri-tools",
      "dbus",
      "kubeadm=1.36.3-*",
      "kubelet=1.36.3-*",
      "kubectl=1.36.3-*",
    ]);
  });
  test("a pin is satisfied by that version only; a plain name by any", () => {
    const out = "kubeadm 1.36.3-1.1\nkubelet 1.36.2-1.1\nsocat 1.7.4.4-2\n";
    expect([...satisfiedSpecs(["kubeadm=1.36.3-*", "kubelet=1.36.3-*", "kubectl=1.36.3-*", "socat"], out)]).toEqual([
      "kubeadm=1.36.3-*",
      "socat",
    ]);
    // the glob is apt's: a dot is a dot, not any character
    expect(satisfiedSpecs(["kubeadm=1.36.3-*"], "kubeadm 1x36x3-1\n").size).toBe(0);
    expect(satisfiedSpecs(["kubeadm=1.36.3-*"], "kubeadm 1.36.30-1\n").size).toBe(0);
  });
  test("apt installs the pins and holds them; remove lets go of the hold", () => {
    const apt = packageCommands("debian");
    const install = apt.install(["socat", "kubeadm=1.36.3-*"]);
    expect(install).toContain(
      "apt-get install -y --no-install-recommends --allow-change-held-packages --allow-downgrades 'socat' 'kubeadm=1.36.3-*'",
    );
    expect(install).toMatch(/&& apt-mark hold 'kubeadm' >\/dev\/null$/);
    expect(apt.install(["socat"])).not.toMatch(/apt-mark|--allow-downgrades/);
    expect(apt.remove(["kubeadm"])).toContain("--allow-change-held-packages");
  });
  test("a version the repository lacks is named like a missing package", () => {
    expect(unavailablePackages("debian", "E: Version '1.36.3-*' for 'kubeadm' was not found")).toEqual(["kubeadm"]);
  });
});

describe("the signing key's fingerprint", () => {
  let home: string;
  let gpgFingerprint: string;
  const gpg = (...args: string[]) =>
    execFileSync("gpg", ["--batch", "--pinentry-mode", "loopback", "--passphrase", "", ...args], {
      env: { ...process.env, GNUPGHOME: home },
      stdio: ["ignore", "pipe", "pipe"],
    });
  beforeAll(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-gpg-test-"));
    gpg("--quick-gen-key", "test <t@localhost>", "rsa2048", "sign", "never");
    gpg("--quick-add-key", /^fpr:+([0-9A-F]{40}):/m.exec(gpg("--with-colons", "--list-keys").toString())![1], "ed25519", "sign", "never");
    gpgFingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(gpg("--with-colons", "--list-keys").toString())![1];
  }, 120_000);
  afterAll(() => {
    execFileSync("gpgconf", ["--kill", "gpg-agent"], { env: { ...process.env, GNUPGHOME: home }, stdio: "ignore" });
    fs.rmSync(home, { recursive: true, force: true });
  });

  test("armoured and binary, the primary key's fingerprint is gpg's (its subkey is not a primary)", () => {
    const armoured = gpg("--armor", "--export").toString();
    expect(fingerprints(armoured)).toEqual([gpgFingerprint]);
    expect(fingerprints(gpg("--export"))).toEqual([gpgFingerprint]);
    expect(dearmor(armoured)).toEqual(gpg("--export"));
  });
  test("what is not a key is refused by name", () => {
    expect(() => fingerprints("<html>404 Not Found</html>")).toThrow(/not an OpenPGP public key/);
    expect(() => fingerprints(Buffer.from("<html>"))).toThrow(/not a packet header/);
    const truncated = gpg("--export").subarray(0, 40);
    expect(() => fingerprints(truncated)).toThrow(/runs past the end/);
  });
});
