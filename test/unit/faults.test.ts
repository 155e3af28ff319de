// The pure parts of failing well on bad input at run time (issue 14): the OS check SshHost makes
// before anything is touched, the plain error for a package the repositories lack, a write that
// cannot be stored (full disk) leaving the target as it was, and the bound on a connect to a host
// that does not answer. The live counterparts are in test/e2e/faults.test.ts.
import { execFileSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { OS_FAMILIES as SCHEMA_FAMILIES } from "../../model/schema";
import { unavailablePackages } from "../../providers/os/configurer";
import { OS_FAMILIES, familyOf, osMismatch, parseOsRelease } from "../../providers/os/release";
import { unavailableError } from "../../providers/impl/packages";
import { backupCommand } from "../../providers/impl/remote-file";
import { RemoteError } from "../../providers/ssh/errors";
import { backoffMs, connectBudgetMs } from "../../providers/ssh/connection";
import { STORE_EXIT, writeFileScript } from "../../providers/ssh/shell";

const DEBIAN = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
HOME_URL="https://www.debian.org/"
`;
const UBUNTU = `PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
ID=ubuntu
ID_LIKE=debian
`;
const GENTOO = `NAME=Gentoo
ID=gentoo
PRETTY_NAME="Gentoo Linux"
`;
const FEDORA = `NAME="Fedora Linux"
ID=fedora
PRETTY_NAME="Fedora Linux 41 (Server Edition)"
`;
const SYSTEMD = "K8SBM_INIT=systemd\n";
const OPENRC = "K8SBM_INIT=openrc\n";

describe("the host's OS against the configured one", () => {
  test("os-release is parsed, quotes removed, init markers collected", () => {
    expect(parseOsRelease(UBUNTU + SYSTEMD)).toEqual({
      id: "ubuntu",
      idLike: ["debian"],
      prettyName: "Ubuntu 24.04.1 LTS",
      inits: ["systemd"],
    });
    expect(parseOsRelease(`ID='gentoo'\nID_LIKE="a b"\n` + OPENRC + OPENRC)).toMatchObject({
      id: "gentoo",
      idLike: ["a", "b"],
      inits: ["openrc"],
    });
    expect(familyOf(parseOsRelease("ID=raspbian\nID_LIKE=debian\n"))).toBe("debian");
    expect(familyOf(parseOsRelease(FEDORA))).toBeUndefined();
  });

  test("the families it knows are the schema's", () => {
    expect([...OS_FAMILIES]).toEqual([...SCHEMA_FAMILIES]);
  });

  test.each([
    [DEBIAN + SYSTEMD, "debian", "systemd"],
    [DEBIAN, "debian", "none"],
    [UBUNTU + SYSTEMD, "ubuntu", "systemd"],
    [UBUNTU + SYSTEMD, "debian", "systemd"], // the same apt and systemctl commands
    [GENTOO + OPENRC, "gentoo", "openrc"],
    [GENTOO + SYSTEMD, "gentoo", "systemd"],
  ] as const)("a host that is what the stack says passes (%#)", (probe, family, init) => {
    expect(osMismatch(probe, family, init, "nodes[0]")).toBeUndefined();
  });

  test("another family fails naming what the host runs, the key and the fix", () => {
    const m = osMismatch(DEBIAN, "gentoo", "openrc", "nodes[3]")!;
    expect(m).toContain("the host runs Debian GNU/Linux 12 (bookworm) (ID=debian), but the stack configures os gentoo");
    expect(m).toContain("nodes[3].os, or os.family");
    expect(m).toContain("set nodes[3].os to debian");
    // Debian is not "like" Ubuntu: configured ubuntu on a Debian host is refused
    expect(osMismatch(DEBIAN, "ubuntu", "none")).toMatch(/runs Debian .* configures os ubuntu/);
  });

  test("an unsupported distribution, or none that says what it is, fails", () => {
    expect(osMismatch(FEDORA + SYSTEMD, "debian", "systemd", "nodes[1]")).toMatch(
      /runs Fedora Linux 41 .*supports gentoo, debian, ubuntu only/,
    );
    expect(osMismatch("", "debian", "systemd", "nodes[1]")).toMatch(/no \/etc\/os-release/);
  });

  test("an init system that is not running fails; none matches any host", () => {
    expect(osMismatch(DEBIAN, "debian", "systemd", "nodes[2]")).toMatch(
      /configures init systemd .*nodes\[2\]\.init.*not running there \(found neither systemd nor OpenRC\)/,
    );
    expect(osMismatch(GENTOO + SYSTEMD, "gentoo", "openrc")).toMatch(/found systemd/);
    expect(osMismatch(GENTOO + OPENRC, "gentoo", "none")).toBeUndefined();
  });
});

describe("a package the repositories do not have", () => {
  const APT = [
    "Reading package lists...",
    "Building dependency tree...",
    "E: Unable to locate package kubeadm",
    "E: Package 'socat' has no installation candidate",
  ].join("\n");

  test("apt's and emerge's wording is recognised; other failures are not", () => {
    expect(unavailablePackages("debian", APT)).toEqual(["kubeadm", "socat"]);
    expect(unavailablePackages("ubuntu", "E: Unable to locate package x\nE: Unable to locate package x")).toEqual(["x"]);
    expect(unavailablePackages("gentoo", 'emerge: there are no ebuilds to satisfy "sys-cluster/kubeadm".')).toEqual([
      "sys-cluster/kubeadm",
    ]);
    expect(unavailablePackages("debian", "E: Could not get lock /var/lib/dpkg/lock-frontend")).toEqual([]);
  });

  test("the error names the node, the package and the fix, and keeps the command's own error", () => {
    const conn = { name: "k8s-4", host: "10.0.0.4", port: 22 } as never;
    const e = unavailableError(new RemoteError("k8s-4", "10.0.0.4", "apt-get install …", 100, "E: Unable to locate package socat"), {
      os: "debian",
      connection: conn,
    })!;
    expect(e.message).toMatch(/^k8s-4 \(10\.0\.0\.4:22\): package socat cannot be installed: .*do not have it, so nothing was installed/);
    expect(e.message).toContain('command "apt-get install …" exited 100');
    expect(
      unavailableError(new RemoteError("k8s-4", "h", "apt-get", 100, "E: dpkg was interrupted"), { os: "debian", connection: conn }),
    ).toBe(undefined);
    expect(unavailableError(new Error("x"), { os: "debian", connection: conn })).toBeUndefined();
  });
});

describe("a write that cannot be stored", () => {
  test("the target keeps its old content, no temp file stays, and the error says it was not replaced", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-full-"));
    const target = path.join(dir, "f.conf");
    try {
      fs.writeFileSync(target, "old\n");
      const content = "new content\n".repeat(100);
      const sent = { size: content.length, sha256: createHash("sha256").update(content).digest("hex") };
      // a file-size limit of 512 bytes stops cat midway, as a full file system would
      let code = 0;
      let err = "";
      try {
        execFileSync("sh", ["-c", `ulimit -f 1; ${writeFileScript(target, 0o640, sent)}`], {
          input: content,
          stdio: ["pipe", "pipe", "pipe"],
        });
      } catch (e) {
        const x = e as { status: number; stderr: Buffer };
        code = x.status;
        err = x.stderr.toString();
      }
      expect(code).toBe(STORE_EXIT);
      expect(err).toMatch(/k8sbm: cannot store the new content in .* \(a full file system\?\); .*f\.conf was not replaced/);
      expect(fs.readFileSync(target, "utf8")).toBe("old\n");
      expect(fs.readdirSync(dir)).toEqual(["f.conf"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the backup of a file the program replaces", () => {
  test("whole or not at all: a copy stopped midway leaves no backup and no temp file; the oldest backup is kept", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-backup-"));
    const file = path.join(dir, "etc", "x.conf");
    const backup = path.join(dir, "backup", "etc", "x.conf");
    const run = (limit: string) => {
      try {
        execFileSync("sh", ["-c", `${limit}${backupCommand(file, backup)}`], { stdio: ["ignore", "pipe", "pipe"] });
        return 0;
      } catch (e) {
        return (e as { status: number }).status;
      }
    };
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, "the operator's own\n".repeat(100));
      // a file-size limit of 512 bytes stops cp midway, as a full disk would
      expect(run("ulimit -f 1; ")).not.toBe(0);
      expect(fs.existsSync(backup)).toBe(false);
      expect(fs.readdirSync(path.dirname(backup))).toEqual([]);
      expect(run("")).toBe(0);
      expect(fs.readFileSync(backup, "utf8")).toBe("the operator's own\n".repeat(100));
      fs.writeFileSync(file, "ours\n");
      expect(run("")).toBe(0);
      expect(fs.readFileSync(backup, "utf8")).toBe("the operator's own\n".repeat(100));
      expect(fs.readdirSync(path.dirname(backup))).toEqual(["x.conf"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("an unreachable host", () => {
  test("connect gives up within every attempt's timeout plus the backoff between them", () => {
    expect(connectBudgetMs(10_000, 5)).toBe(6 * 10_000 + 500 + 1000 + 2000 + 4000 + 8000);
    expect(connectBudgetMs()).toBe(6 * 20_000 + 15_500);
    expect(connectBudgetMs(1000, 0)).toBe(1000);
    expect(connectBudgetMs(1000, 8)).toBe(9000 + [0, 1, 2, 3, 4, 5, 6, 7].reduce((a, i) => a + backoffMs(i), 0));
  });
});
