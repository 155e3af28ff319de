// What testbed hosts need, installed once into the real root (they see it through the overlay).
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { PATH_ENV } from "./processes";

const TOOLS: Record<string, string> = {
  ip: "iproute2",
  unshare: "util-linux",
  nsenter: "util-linux",
  setsid: "util-linux",
  chroot: "coreutils",
  tini: "tini",
  sshd: "openssh-server",
  "ssh-keygen": "openssh-client",
  useradd: "passwd",
};

// a cluster lab also needs what the node image's packages depend on or the program installs
const KUBE_TOOLS: Record<string, string> = {
  runc: "runc",
  "dbus-daemon": "dbus",
  "dpkg-deb": "dpkg",
  conntrack: "conntrack",
  socat: "socat",
  ethtool: "ethtool",
  ebtables: "ebtables",
  openssl: "openssl",
};

export function which(cmd: string): string | undefined {
  for (const d of `${PATH_ENV}:${process.env.PATH ?? ""}`.split(":")) {
    const p = path.join(d, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

function aptInstall(pkgs: string[], log: (m: string) => void): boolean {
  if (!which("apt-get") || pkgs.length === 0) return false;
  log(`installing ${pkgs.join(" ")} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive", PATH: PATH_ENV };
  const install = () => execFileSync("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...pkgs], { env, stdio: "pipe" });
  try {
    install();
  } catch {
    try {
      execFileSync("apt-get", ["update", "-q"], { env, stdio: "pipe" });
      install();
    } catch {
      return false;
    }
  }
  return true;
}

/** Installs (once) what lab hosts need into the real root; they see it through the overlay. */
export function ensureTools(log: (m: string) => void = () => undefined, kube = false): { sudo: boolean } {
  const tools = { ...TOOLS, ...(kube ? KUBE_TOOLS : {}) };
  const missing = [
    ...new Set(
      Object.keys(tools)
        .filter((c) => !which(c))
        .map((c) => tools[c]),
    ),
  ];
  if (missing.length) aptInstall(missing, log);
  const still = Object.keys(tools).filter((c) => !which(c));
  if (still.length) throw new Error(`the testbed needs ${still.join(", ")} (packages ${still.map((c) => tools[c]).join(", ")})`);
  if (!which("sudo") && !aptInstall(["sudo"], log)) log("sudo is not installable: lab hosts get no sudo user");
  return { sudo: !!which("sudo") };
}
