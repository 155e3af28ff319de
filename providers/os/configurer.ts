// Per-OS / per-init command planning: what to run to query and change packages and services.
// Pure string building, so it is tested without a host; the providers run what it returns.
import type { InitSystem, OsFamily } from "../../model/schema";

import { shq } from "../ssh/shell";

export interface PackageCommands {
  /** prints the given packages (names) that are installed, one per line: "<name> <version>", or "<name>" */
  installed(names: string[]): string;
  /** installs package specs: a name, or on apt "name=version" with a glob (held after, as kubeadm's guide does) */
  install(specs: string[]): string;
  remove(names: string[]): string;
}

/** "kubeadm=1.36.3-*" → { name: "kubeadm", version: "1.36.3-*" }; "socat" → { name: "socat" }. */
export function parseSpec(spec: string): { name: string; version?: string } {
  const i = spec.indexOf("=");
  return i < 0 ? { name: spec } : { name: spec.slice(0, i), version: spec.slice(i + 1) };
}

/** The package a spec names. */
export const nameOf = (spec: string): string => parseSpec(spec).name;

/** A version glob as apt reads one (`*`, `?`) against an installed version. */
const versionMatches = (glob: string, version: string): boolean =>
  new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
  ).test(version);

/** The specs among `wanted` that the `installed` command's output satisfies (a pinned one: name and version). */
export function satisfiedSpecs(wanted: string[], installedOutput: string): Set<string> {
  const have = new Map<string, string | undefined>();
  for (const line of installedOutput.split("\n")) {
    const [name, version] = line.trim().split(/\s+/);
    if (name) have.set(name, version);
  }
  return new Set(
    wanted.filter((spec) => {
      const { name, version } = parseSpec(spec);
      if (!have.has(name)) return false;
      const v = have.get(name);
      return version === undefined || (v !== undefined && versionMatches(version, v));
    }),
  );
}

export interface ServiceCommands {
  /** exits 0 when running */
  isRunning(name: string): string;
  /** exits 0 when started at boot; undefined when the init system has no boot-time notion (no init) */
  isEnabled(name: string): string | undefined;
  start(name: string): string;
  stop(name: string): string;
  restart(name: string): string;
  reload(name: string): string;
  enable(name: string): string | undefined;
  disable(name: string): string | undefined;
}

const debianPackages: PackageCommands = {
  installed: (p) =>
    `dpkg-query -W -f='\${Package} \${Version} \${db:Status-Status}\\n' ${p.map(shq).join(" ")} 2>/dev/null | awk '$3=="installed"{print $1, $2}'`,
  // update the index only when an install fails on a stale one. A pinned package is installed at
  // its version even where another is installed (another vendor's kubectl, a newer kubelet: the
  // cluster's version is the config's) and held, so an unattended upgrade cannot move it past
  // the cluster's version (and the next pin may change it).
  install: (p) => {
    const held = p
      .map(parseSpec)
      .filter((s) => s.version !== undefined)
      .map((s) => shq(s.name));
    const get = `apt-get install -y --no-install-recommends --allow-change-held-packages${held.length ? " --allow-downgrades" : ""} ${p.map(shq).join(" ")}`;
    return `export DEBIAN_FRONTEND=noninteractive; { ${get} || { apt-get update && ${get}; }; }${held.length ? ` && apt-mark hold ${held.join(" ")} >/dev/null` : ""}`;
  },
  remove: (p) => `DEBIAN_FRONTEND=noninteractive apt-get remove -y --allow-change-held-packages ${p.map(shq).join(" ")}`,
};

const gentooPackages: PackageCommands = {
  installed: (p) => `for a in ${p.map(shq).join(" ")}; do ls -d /var/db/pkg/$a-[0-9]* >/dev/null 2>&1 && echo "$a"; done; true`,
  install: (p) => `emerge --noreplace --quiet-build=y ${p.map(shq).join(" ")}`,
  remove: (p) => `emerge --unmerge --quiet ${p.map(shq).join(" ")}`,
};

const openrc: ServiceCommands = {
  isRunning: (n) => `rc-service ${shq(n)} status >/dev/null 2>&1`,
  isEnabled: (n) => `rc-update show default | awk '{print $1}' | grep -qx ${shq(n)}`,
  start: (n) => `rc-service ${shq(n)} start`,
  stop: (n) => `rc-service ${shq(n)} stop`,
  restart: (n) => `rc-service ${shq(n)} restart`,
  reload: (n) => `rc-service ${shq(n)} reload`,
  enable: (n) => `rc-update add ${shq(n)} default`,
  disable: (n) => `rc-update del ${shq(n)} default`,
};

// daemon-reload first: a unit drop-in the program wrote (the kubelet's) counts only after it
const systemd: ServiceCommands = {
  isRunning: (n) => `systemctl is-active --quiet ${shq(n)}`,
  isEnabled: (n) => `systemctl is-enabled --quiet ${shq(n)}`,
  start: (n) => `systemctl daemon-reload && systemctl start ${shq(n)}`,
  stop: (n) => `systemctl stop ${shq(n)}`,
  restart: (n) => `systemctl daemon-reload && systemctl restart ${shq(n)}`,
  reload: (n) => `systemctl daemon-reload && systemctl reload-or-restart ${shq(n)}`,
  enable: (n) => `systemctl enable ${shq(n)}`,
  disable: (n) => `systemctl disable ${shq(n)}`,
};

// No init system (containers, the SSH lab): the distribution's /etc/init.d scripts, nothing at
// boot. Not every script has `status` (Debian's keepalived has not): ask for the process.
const noInit: ServiceCommands = {
  isRunning: (n) => `pgrep -x ${shq(n)} >/dev/null`,
  isEnabled: () => undefined,
  start: (n) => `/etc/init.d/${n} start`,
  // an init script's stop signals and returns (systemctl stop waits): wait for the process to
  // go, and end what a stale pid file hid from the script, so "stopped" means stopped
  stop: (n) =>
    `(/etc/init.d/${n} stop; i=0; while pgrep -x ${shq(n)} >/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; ` +
    `if pgrep -x ${shq(n)} >/dev/null; then pkill -x ${shq(n)}; sleep 1; fi; ` +
    `! pgrep -x ${shq(n)} >/dev/null || { echo "${n} still running after its stop" >&2; exit 1; })`,
  restart: (n) => `/etc/init.d/${n} restart`,
  reload: (n) => `/etc/init.d/${n} reload`,
  enable: () => undefined,
  disable: () => undefined,
};

export function packageCommands(os: OsFamily): PackageCommands {
  return os === "gentoo" ? gentooPackages : debianPackages;
}

export function serviceCommands(init: InitSystem): ServiceCommands {
  return init === "openrc" ? openrc : init === "systemd" ? systemd : noInit;
}

/** Package names per OS for each layer of host preparation (seed §2, Gentoo names first). */
export function packagesFor(os: OsFamily, layer: "base" | "keepalived" | "kubernetes"): string[] {
  const gentoo = {
    base: [
      "net-firewall/conntrack-tools",
      "net-firewall/ebtables",
      "net-misc/socat",
      "sys-apps/ethtool",
      "sys-apps/iproute2",
      "net-misc/curl",
      "net-misc/iputils",
    ],
    keepalived: ["sys-cluster/keepalived"],
    // dbus only to get /etc/machine-id; Gentoo split sys-cluster/kubernetes into these three.
    kubernetes: [
      "app-containers/containerd",
      "app-containers/cri-tools",
      "sys-apps/dbus",
      "sys-cluster/kubeadm",
      "sys-cluster/kubelet",
      "sys-cluster/kubectl",
    ],
  };
  const debian = {
    base: ["conntrack", "ebtables", "socat", "ethtool", "iproute2", "curl", "iputils-ping"],
    keepalived: ["keepalived"],
    // kubeadm, kubelet, kubectl and cri-tools come from the Kubernetes package repository.
    kubernetes: ["containerd", "cri-tools", "dbus", "kubeadm", "kubelet", "kubectl"],
  };
  return (os === "gentoo" ? gentoo : debian)[layer];
}

/**
 * The packages the install's output says the distribution's repositories do not have (apt: "Unable
 * to locate package X", "Package 'X' has no installation candidate"; emerge: "there are no ebuilds
 * to satisfy "X""). apt and emerge resolve every package before installing any, so when this is
 * not empty nothing was installed.
 */
export function unavailablePackages(os: OsFamily, output: string): string[] {
  const patterns =
    os === "gentoo"
      ? [/there are no ebuilds (?:built with USE flags )?to satisfy "([^"]+)"/g]
      : [
          /Unable to locate package (\S+)/g,
          /Package '([^']+)' has no installation candidate/g,
          /Version '[^']+' for '([^']+)' was not found/g,
        ];
  return [...new Set(patterns.flatMap((re) => [...output.matchAll(re)].map((m) => m[1])))];
}
