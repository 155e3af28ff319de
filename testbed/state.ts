// A testbed's recorded state (hosts.json under its state directory) and the names it uses.
import * as fs from "fs";
import * as path from "path";
import type { SshTarget } from "../providers/ssh/types";

export const DEFAULT_STATE_ROOT = "/run/k8sbm-lab";
export const TESTBED_USER = "root";
/** a non-root user with passwordless sudo in every lab host (same client key) */
export const SUDO_USER = "labuser";
export const SEGMENTS = {
  wan0: { net: "10.118.10", bridge: "br0" },
  wan1: { net: "10.118.12", bridge: "br1" },
} as const;
export type SegmentName = keyof typeof SEGMENTS;

export interface TestbedIface {
  name: SegmentName;
  address: string;
  prefixLength: number;
  cidr: string;
}

export interface TestbedHost {
  name: string;
  index: number;
  /** where the test process (root netns) reaches this host's sshd */
  ssh: { host: string; port: number; user: string };
  /** the ed25519 host key recorded at creation, "<type> <base64>" */
  hostKey: string;
  fingerprint: string;
  /** every host key the host has, by type */
  hostKeys: Record<string, string>;
  netns: string;
  ifaces: Record<SegmentName, TestbedIface>;
  pids: { init: number; forwarder: number };
  dir: string;
  upperDir: string;
}

export interface TestbedState {
  name: string;
  stateDir: string;
  createdAt: string;
  privateKeyPath: string;
  publicKey: string;
  /** non-root sudo user present on every host, or null when sudo is not installed */
  sudoUser: string | null;
  switchNetns: string;
  pids: { top: number; init: number };
  hosts: TestbedHost[];
  /** the Kubernetes "OS image" layer under every host's root (UpOptions.kube), if any */
  image?: string;
}

export interface UpOptions {
  /** 0 (default) = pick free ports; otherwise host i listens on basePort + i */
  basePort?: number;
  hostPrefix?: string;
  /** the last octet of host 1's addresses (default 20: the seed's k8s-1); host i gets firstAddress + i - 1 */
  firstAddress?: number;
  log?: (msg: string) => void;
  /**
   * Hosts that can run a real cluster: containerd, kubelet and kubeadm installed as packages
   * (testbed/node-image.sh) in a layer under each host's root, the machine's cgroups visible,
   * and the kubelet's service started at boot as its package would have it.
   */
  kube?: boolean;
  /** with kube: cilium's images (testbed/cilium-image.sh) and the real CoreDNS imported too */
  cilium?: boolean;
  /** with cilium: the add-on test's images too (testbed/addons-image.sh: cert-manager) */
  addons?: boolean;
  /** with kube: the upgrade target's images (testbed/upgrade-image.sh) at testbed/node-image.ts UPGRADE_IMAGES_DIR */
  upgrade?: boolean;
}

export function stateRoot(): string {
  return process.env.K8SBM_LAB_DIR || DEFAULT_STATE_ROOT;
}

export function stateDirOf(lab: string): string {
  return path.join(stateRoot(), checkTestbedName(lab));
}

export function checkTestbedName(lab: string): string {
  if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(lab)) {
    throw new Error(`invalid lab name ${JSON.stringify(lab)} (lowercase letters, digits, '-'; max 31 chars)`);
  }
  return lab;
}

export const nsPrefix = (lab: string) => `k8sbm.${lab}.`;
export const hostNetns = (lab: string, host: string) => `${nsPrefix(lab)}${host}`;
export const switchNetns = (lab: string) => `${nsPrefix(lab)}_sw`;

export function load(lab: string): TestbedState {
  const file = path.join(stateDirOf(lab), "hosts.json");
  if (!fs.existsSync(file)) throw new Error(`testbed ${lab} is not up (no ${file}); run \`npm run testbed:up\``);
  return JSON.parse(fs.readFileSync(file, "utf8")) as TestbedState;
}

export function save(st: TestbedState): void {
  const file = path.join(st.stateDir, "hosts.json");
  fs.writeFileSync(file + ".tmp", JSON.stringify(st, null, 2) + "\n", { mode: 0o600 });
  fs.renameSync(file + ".tmp", file);
}

export function hostOf(st: TestbedState, host: string): TestbedHost {
  const h = st.hosts.find((x) => x.name === host);
  if (!h) throw new Error(`testbed ${st.name} has no host ${host} (hosts: ${st.hosts.map((x) => x.name).join(", ")})`);
  return h;
}

/** The SSH layer's target for a lab host (root by default), with its recorded host key pinned. */
export function sshTarget(st: TestbedState, host: string, over: Partial<SshTarget> = {}): SshTarget {
  const h = hostOf(st, host);
  return {
    name: h.name,
    host: h.ssh.host,
    port: h.ssh.port,
    user: h.ssh.user,
    privateKey: fs.readFileSync(st.privateKeyPath, "utf8"),
    hostKey: h.hostKey,
    ...over,
  };
}
