// The lab harness: N "servers" on one Linux machine, each a network namespace plus its own
// mount/UTS/PID namespaces (tini as PID 1) on an overlay of the real root, running a real sshd,
// wired to two L2 segments (wan0, wan1) through bridges in a separate "switch" namespace.
//
// How the root namespace reaches each sshd without bridging a lab network into it: a small
// forwarder process per host lives in the host's network namespace and owns a listening
// socket that the harness bound on 127.0.0.1:<port> in the root namespace (passed as fd 3).
// Connections to that loopback port are relayed to <wan0 address>:22 inside the lab.
//
// All lab processes live in one per-lab PID namespace whose init (tini) reaps them; killing
// that init tears everything down. Every process we start carries K8SBM_LAB_MEMBER=<lab> in
// its environment, so `down` also finds leftovers of a run whose state was lost.
import { execFileSync, spawn, type SpawnOptions } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { fingerprint } from "../../providers/ssh/hostkey";
import type { SshTarget } from "../../providers/ssh/types";

export const DEFAULT_STATE_ROOT = "/run/k8sbm-lab";
export const LAB_USER = "root";
/** a non-root user with passwordless sudo in every lab host (same client key) */
export const SUDO_USER = "labuser";
const MARKER = "K8SBM_LAB_MEMBER";
const PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const FORWARDER = path.join(__dirname, "forwarder.js");

export const SEGMENTS = {
  wan0: { net: "10.118.10", bridge: "br0" },
  wan1: { net: "10.118.12", bridge: "br1" },
} as const;
export type SegmentName = keyof typeof SEGMENTS;

export interface LabIface {
  name: SegmentName;
  address: string;
  prefixLength: number;
  cidr: string;
}

export interface LabHost {
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
  ifaces: Record<SegmentName, LabIface>;
  pids: { init: number; forwarder: number };
  dir: string;
  upperDir: string;
}

export interface LabState {
  name: string;
  stateDir: string;
  createdAt: string;
  privateKeyPath: string;
  publicKey: string;
  /** non-root sudo user present on every host, or null when sudo is not installed */
  sudoUser: string | null;
  switchNetns: string;
  pids: { top: number; init: number };
  hosts: LabHost[];
  /** the Kubernetes "OS image" layer under every host's root (UpOptions.kube), if any */
  image?: string;
}

export interface UpOptions {
  /** 0 (default) = pick free ports; otherwise host i listens on basePort + i */
  basePort?: number;
  hostPrefix?: string;
  log?: (msg: string) => void;
  /**
   * Hosts that can run a real cluster: containerd, kubelet and kubeadm installed as packages
   * (test/lab/node-image.sh) in a layer under each host's root, the machine's cgroups visible,
   * and the kubelet's service started at boot as its package would have it.
   */
  kube?: boolean;
}

export function stateRoot(): string {
  return process.env.K8SBM_LAB_DIR || DEFAULT_STATE_ROOT;
}

export function stateDirOf(lab: string): string {
  return path.join(stateRoot(), checkLabName(lab));
}

export function checkLabName(lab: string): string {
  if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(lab)) {
    throw new Error(`invalid lab name ${JSON.stringify(lab)} (lowercase letters, digits, '-'; max 31 chars)`);
  }
  return lab;
}

const nsPrefix = (lab: string) => `k8sbm.${lab}.`;
const hostNetns = (lab: string, host: string) => `${nsPrefix(lab)}${host}`;
const switchNetns = (lab: string) => `${nsPrefix(lab)}_sw`;

// ---------------------------------------------------------------------------------------------
// small process helpers

function labEnv(lab: string): NodeJS.ProcessEnv {
  return { PATH: PATH_ENV, HOME: "/root", LANG: "C.UTF-8", [MARKER]: lab };
}

function run(cmd: string, args: string[], opts: { input?: string; allowFail?: boolean } = {}): string {
  try {
    return execFileSync(cmd, args, {
      input: opts.input,
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, PATH: `${PATH_ENV}:${process.env.PATH ?? ""}` },
    });
  } catch (e) {
    if (opts.allowFail) return "";
    const err = e as { stderr?: string; status?: number };
    throw new Error(`${cmd} ${args.join(" ")} failed (${err.status}): ${String(err.stderr ?? "").trim()}`);
  }
}

/** Spawns and waits; resolves with the exit code. */
function spawnWait(cmd: string, args: string[], opts: SpawnOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, opts);
    c.on("error", reject);
    c.on("exit", (code, sig) => resolve(code ?? (sig ? 128 : 1)));
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

function readPidFile(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, "utf8").trim());
    return Number.isInteger(n) && n > 1 ? n : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function isMember(pid: number, lab: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").includes(`${MARKER}=${lab}`);
  } catch {
    return false;
  }
}

function ancestors(): Set<number> {
  const out = new Set<number>();
  let pid = process.pid;
  while (pid > 1 && !out.has(pid)) {
    out.add(pid);
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      pid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    } catch {
      break;
    }
  }
  return out;
}

/** SIGKILLs the given PIDs (never this process or its ancestors) and waits until they are gone. */
async function killAll(pids: Iterable<number>): Promise<void> {
  const spare = ancestors();
  const targets = [...new Set(pids)].filter((p) => p > 1 && !spare.has(p) && alive(p));
  for (const p of targets) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  await waitFor("lab processes to exit", 10_000, () => (targets.some(alive) ? undefined : true));
}

function listNetns(): string[] {
  return run("ip", ["netns", "list"], { allowFail: true })
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0])
    .filter(Boolean);
}

function netnsPids(ns: string): number[] {
  return run("ip", ["netns", "pids", ns], { allowFail: true })
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
}

function memberPids(lab: string): number[] {
  return fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((p) => isMember(p, lab));
}

/** Lazily unmounts anything still mounted below dir (deepest first) in our mount namespace. */
function unmountBelow(dir: string): void {
  const prefix = dir.endsWith("/") ? dir : dir + "/";
  const points = fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(prefix)))
    .map((p) => p.replace(/\\040/g, " "))
    .sort((a, b) => b.length - a.length);
  for (const p of points) run("umount", ["-l", p], { allowFail: true });
}

function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  unmountBelow(dir);
  // --one-file-system: never descend into something mounted below (belt and braces)
  run("rm", ["-rf", "--one-file-system", "--", dir]);
}

// ---------------------------------------------------------------------------------------------
// tools

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

function which(cmd: string): string | undefined {
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
  const install = () =>
    execFileSync("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...pkgs], { env, stdio: "pipe" });
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
  const missing = [...new Set(Object.keys(tools).filter((c) => !which(c)).map((c) => tools[c]))];
  if (missing.length) aptInstall(missing, log);
  const still = Object.keys(tools).filter((c) => !which(c));
  if (still.length) throw new Error(`lab needs ${still.join(", ")} (packages ${still.map((c) => tools[c]).join(", ")})`);
  if (!which("sudo") && !aptInstall(["sudo"], log)) log("sudo is not installable: lab hosts get no sudo user");
  return { sudo: !!which("sudo") };
}

// ---------------------------------------------------------------------------------------------
// state

export function load(lab: string): LabState {
  const file = path.join(stateDirOf(lab), "hosts.json");
  if (!fs.existsSync(file)) throw new Error(`lab ${lab} is not up (no ${file}); run \`npm run lab:up\``);
  return JSON.parse(fs.readFileSync(file, "utf8")) as LabState;
}

function save(st: LabState): void {
  const file = path.join(st.stateDir, "hosts.json");
  fs.writeFileSync(file + ".tmp", JSON.stringify(st, null, 2) + "\n", { mode: 0o600 });
  fs.renameSync(file + ".tmp", file);
}

function hostOf(st: LabState, host: string): LabHost {
  const h = st.hosts.find((x) => x.name === host);
  if (!h) throw new Error(`lab ${st.name} has no host ${host} (hosts: ${st.hosts.map((x) => x.name).join(", ")})`);
  return h;
}

/** The SSH layer's target for a lab host (root by default), with its recorded host key pinned. */
export function sshTarget(st: LabState, host: string, over: Partial<SshTarget> = {}): SshTarget {
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

// ---------------------------------------------------------------------------------------------
// building hosts

/** Creates dir (and parents) in the upper layer with the mode/owner of the same path in "/". */
function mkdirLike(upper: string, rel: string): string {
  const parts = rel.split("/").filter(Boolean);
  let cur = upper;
  let real = "/";
  for (const p of parts) {
    cur = path.join(cur, p);
    real = path.join(real, p);
    if (fs.existsSync(cur)) continue;
    let mode = 0o755;
    let uid = 0;
    let gid = 0;
    try {
      const s = fs.statSync(real);
      if (s.isDirectory()) ({ mode, uid, gid } = { mode: s.mode & 0o7777, uid: s.uid, gid: s.gid });
    } catch {
      /* new dir */
    }
    fs.mkdirSync(cur, { mode });
    fs.chmodSync(cur, mode);
    fs.chownSync(cur, uid, gid);
  }
  return cur;
}

function putFile(upper: string, rel: string, content: string, mode: number): void {
  mkdirLike(upper, path.dirname(rel));
  const f = path.join(upper, rel);
  fs.writeFileSync(f, content, { mode });
  fs.chmodSync(f, mode);
}

const SSHD_CTL = `#!/bin/sh
# lab helper: start/stop this lab host's sshd (no init system in a lab host)
pidf=/run/sshd.pid
running() { [ -s "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; }
case "$1" in
  start)
    running && exit 0
    mkdir -p /run/sshd && chmod 0755 /run/sshd
    exec /usr/sbin/sshd -E /var/log/sshd.log </dev/null >/dev/null 2>&1 ;;
  stop)
    if running; then
      pid=$(cat "$pidf"); kill "$pid"; i=0
      while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
    fi
    rm -f "$pidf" ;;
  restart) "$0" stop; exec "$0" start ;;
  *) echo "usage: $0 start|stop|restart" >&2; exit 2 ;;
esac
`;

function sshdConfig(listen: string): string {
  return `# k8sbm lab host sshd (generated by test/lab)
ListenAddress ${listen}:22
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile /run/sshd.pid
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
`;
}

/**
 * The machine's cgroup hierarchies, mounted again under a lab host's /sys/fs/cgroup (the same
 * hierarchies: without a cgroup namespace a mount shows their root). `ip netns exec` gave the
 * host a fresh sysfs, without the machine's cgroup mounts under it.
 */
function cgroupMounts(target: string): string {
  const lines = fs
    .readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" "))
    .filter(([, at, type]) => at?.startsWith("/sys/fs/cgroup") && (type === "cgroup" || type === "cgroup2" || (type === "tmpfs" && at === "/sys/fs/cgroup")));
  return lines
    .map(([, at, type, opts]) => {
      const dir = `'${target}${at.slice("/sys/fs/cgroup".length)}'`;
      const o = opts.split(",").filter((x) => !["rw", "relatime", "nosuid", "nodev", "noexec"].includes(x) && !x.startsWith("seclabel"));
      const options = type === "tmpfs" ? "mode=0755" : o.join(",") || "defaults";
      return `mkdir -p ${dir} && mount -t ${type} -o '${options}' ${type === "tmpfs" ? "cgroup" : type} ${dir}\n`;
    })
    .join("");
}

function setupScript(
  h: { name: string; dir: string; upper: string; work: string; merged: string; sudo: boolean; image?: string },
  tini: string,
): string {
  const M = h.merged;
  const lower = h.image ? `${h.image}:/` : "/";
  return `#!/bin/sh
# PID 1 of the lab host's PID namespace until it execs tini (generated by test/lab)
set -eu
read -r gpid _ < /proc/self/stat   # /proc is still the root procfs: the global PID
echo "$gpid" > '${h.dir}/init.pid.tmp'
mount -t overlay overlay -o 'lowerdir=${lower},upperdir=${h.upper},workdir=${h.work}' '${M}'
mount -t proc proc '${M}/proc'
mount --rbind /dev '${M}/dev'
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs '${M}/dev/shm'
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts '${M}/dev/pts'
mount --bind '${M}/dev/pts/ptmx' '${M}/dev/ptmx'
mount -t sysfs sysfs '${M}/sys'
${h.image ? cgroupMounts(`${M}/sys/fs/cgroup`) : ""}mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs '${M}/run'
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs '${M}/tmp'
hostname '${h.name}'
chroot '${M}' /bin/sh -c 'rm -f /etc/ssh/ssh_host_*; ssh-keygen -A >/dev/null'
${
  h.sudo
    ? `chroot '${M}' /bin/sh -c 'useradd -m -s /bin/sh ${SUDO_USER} && usermod -p "*" ${SUDO_USER} && install -d -m 0700 -o ${SUDO_USER} -g ${SUDO_USER} /home/${SUDO_USER}/.ssh && install -m 0600 -o ${SUDO_USER} -g ${SUDO_USER} /root/.ssh/authorized_keys /home/${SUDO_USER}/.ssh/authorized_keys'`
    : ""
}
mv '${h.dir}/init.pid.tmp' '${h.dir}/init.pid'
exec chroot '${M}' ${tini} -s -- /bin/sh -c '/usr/local/sbin/k8sbm-lab-sshd start; ${h.image ? "/etc/init.d/kubelet start; " : ""}exec sleep infinity'
`;
}

interface Ctx {
  lab: string;
  stateDir: string;
  labInit: number;
  publicKey: string;
  sudo: boolean;
  prefix: string;
  log: (m: string) => void;
  image?: string;
}

function tail(file: string, n = 2000): string {
  try {
    const s = fs.readFileSync(file, "utf8");
    return s.slice(-n).trim();
  } catch {
    return "";
  }
}

/** Resolves once a real SSH banner comes back through the forwarder. */
function bannerOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    let buf = "";
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(2000, () => done(false));
    s.on("data", (d) => {
      buf += d.toString("latin1");
      if (buf.includes("\n")) done(buf.startsWith("SSH-"));
    });
    s.on("error", () => done(false));
    s.on("close", () => done(false));
  });
}

export async function waitForSsh(port: number, timeoutMs = 20_000): Promise<void> {
  await waitFor(`sshd behind 127.0.0.1:${port}`, timeoutMs, async () => ((await bannerOnce(port)) ? true : undefined));
}

async function listenLoopback(port: number): Promise<net.Server> {
  const server = net.createServer((c) => c.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) =>
      reject(new Error(`cannot listen on 127.0.0.1:${port}: ${(e as Error).message} (pick another --base-port)`)),
    );
    server.listen({ host: "127.0.0.1", port, exclusive: true }, resolve);
  });
  return server;
}

async function buildHost(ctx: Ctx, index: number, port: number): Promise<LabHost> {
  const name = `${ctx.prefix}${index}`;
  const ns = hostNetns(ctx.lab, name);
  const sw = switchNetns(ctx.lab);
  const dir = path.join(ctx.stateDir, "hosts", name);
  const upper = path.join(dir, "upper");
  const work = path.join(dir, "work");
  const merged = path.join(dir, "merged");
  const ifaces = Object.fromEntries(
    (Object.keys(SEGMENTS) as SegmentName[]).map((seg) => {
      const address = `${SEGMENTS[seg].net}.${19 + index}`;
      return [seg, { name: seg, address, prefixLength: 24, cidr: `${address}/24` }];
    }),
  ) as Record<SegmentName, LabIface>;

  // network: veth pairs straight from the switch namespace into the host namespace
  run("ip", ["netns", "add", ns]);
  const swCmds: string[] = [];
  const hostCmds = ["link set lo up"];
  (Object.keys(SEGMENTS) as SegmentName[]).forEach((seg, k) => {
    const swEnd = `h${index}w${k}`;
    swCmds.push(`link add ${swEnd} type veth peer name ${seg} netns ${ns}`, `link set ${swEnd} master ${SEGMENTS[seg].bridge} up`);
    hostCmds.push(`addr add ${ifaces[seg].cidr} dev ${seg}`, `link set ${seg} up`);
  });
  run("ip", ["-n", sw, "-batch", "-"], { input: swCmds.join("\n") + "\n" });
  run("ip", ["-n", ns, "-batch", "-"], { input: hostCmds.join("\n") + "\n" });

  // filesystem: the upper layer carries only what differs from the real root
  for (const d of [upper, work, merged]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  fs.chmodSync(upper, 0o755); // the upper root's mode becomes the host's "/" mode
  fs.chmodSync(merged, 0o755);
  putFile(upper, "etc/hostname", `${name}\n`, 0o644);
  putFile(upper, "etc/hosts", `127.0.0.1\tlocalhost\n${ifaces.wan0.address}\t${name}\n::1\tlocalhost ip6-localhost ip6-loopback\n`, 0o644);
  putFile(upper, "etc/machine-id", randomBytes(16).toString("hex") + "\n", 0o444);
  putFile(upper, "etc/ssh/sshd_config", sshdConfig(ifaces.wan0.address), 0o644);
  putFile(upper, "usr/local/sbin/k8sbm-lab-sshd", SSHD_CTL, 0o755);
  mkdirLike(upper, "root");
  // pristine dotfiles: the machine's own /root/.bashrc (sourced by bash under sshd) is not the lab's business
  for (const f of [".bashrc", ".profile"]) {
    const skel = path.join("/etc/skel", f);
    fs.writeFileSync(path.join(upper, "root", f), fs.existsSync(skel) ? fs.readFileSync(skel) : "", { mode: 0o644 });
  }
  fs.mkdirSync(path.join(upper, "root/.ssh"), { mode: 0o700 });
  fs.writeFileSync(path.join(upper, "root/.ssh/authorized_keys"), ctx.publicKey, { mode: 0o600 });
  if (ctx.sudo) putFile(upper, `etc/sudoers.d/${SUDO_USER}`, `${SUDO_USER} ALL=(ALL) NOPASSWD: ALL\n`, 0o440);
  const setup = path.join(dir, "setup.sh");
  fs.writeFileSync(setup, setupScript({ name, dir, upper, work, merged, sudo: ctx.sudo, image: ctx.image }, which("tini")!), { mode: 0o700 });

  const env = labEnv(ctx.lab);
  // the host: inside the lab PID namespace, double-forked (setsid -f) so the lab's tini adopts it
  const consoleLog = fs.openSync(path.join(dir, "console.log"), "a");
  const hostRc = await spawnWait(
    "nsenter",
    ["-t", String(ctx.labInit), "-p", "--", "setsid", "-f", "ip", "netns", "exec", ns,
      "unshare", "-m", "-u", "-p", "-f", "--kill-child", "--propagation", "private", "/bin/sh", setup],
    { env, stdio: ["ignore", consoleLog, consoleLog] },
  );
  if (hostRc !== 0) throw new Error(`${name}: starting the host failed (${hostRc}): ${tail(path.join(dir, "console.log"))}`);

  // the forwarder: listening socket bound here (root netns, loopback), relaying inside the lab
  const server = await listenLoopback(port);
  const sshPort = (server.address() as net.AddressInfo).port;
  const fwdLog = fs.openSync(path.join(dir, "forwarder.log"), "a");
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  let fwdRc: number;
  try {
    fwdRc = await spawnWait(
      "nsenter",
      ["-t", String(ctx.labInit), "-p", `--net=/run/netns/${ns}`, "--", "setsid", "-f",
        process.execPath, FORWARDER, ifaces.wan0.address, "22", path.join(dir, "forwarder.pid")],
      { env, stdio: ["ignore", fwdLog, fwdLog, fd] },
    );
  } finally {
    server.close();
    fs.closeSync(fwdLog);
    fs.closeSync(consoleLog);
  }
  if (fwdRc !== 0) throw new Error(`${name}: starting the forwarder failed (${fwdRc}): ${tail(path.join(dir, "forwarder.log"))}`);

  const why = () => `\n--- ${name} console ---\n${tail(path.join(dir, "console.log"))}\n--- sshd ---\n${tail(path.join(upper, "var/log/sshd.log"))}`;
  let init: number;
  let forwarder: number;
  try {
    init = await waitFor(`${name} to boot`, 20_000, () => readPidFile(path.join(dir, "init.pid")));
    forwarder = await waitFor(`${name}'s forwarder`, 10_000, () => readPidFile(path.join(dir, "forwarder.pid")));
    await waitForSsh(sshPort);
  } catch (e) {
    throw new Error(`${(e as Error).message}${why()}`);
  }

  const hostKeys: Record<string, string> = {};
  for (const t of ["ed25519", "ecdsa", "rsa"]) {
    const f = path.join(upper, `etc/ssh/ssh_host_${t}_key.pub`);
    if (fs.existsSync(f)) hostKeys[t] = fs.readFileSync(f, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
  }
  if (!hostKeys.ed25519) throw new Error(`${name}: no ed25519 host key was generated${why()}`);
  ctx.log(`${name}: ${ifaces.wan0.cidr} ${ifaces.wan1.cidr}, ssh 127.0.0.1:${sshPort} ${fingerprint(hostKeys.ed25519)}`);
  return {
    name,
    index,
    ssh: { host: "127.0.0.1", port: sshPort, user: LAB_USER },
    hostKey: hostKeys.ed25519,
    fingerprint: fingerprint(hostKeys.ed25519),
    hostKeys,
    netns: ns,
    ifaces,
    pids: { init, forwarder },
    dir,
    upperDir: upper,
  };
}

// ---------------------------------------------------------------------------------------------
// public API

/** Creates lab `lab` with n hosts (k8s-1..k8s-n). Tears down any leftovers of that lab first. */
export async function up(n: number, lab = "dev", opts: UpOptions = {}): Promise<LabState> {
  checkLabName(lab);
  if (!Number.isInteger(n) || n < 1 || n > 200) throw new Error(`lab size must be 1..200, got ${n}`);
  const log = opts.log ?? (() => undefined);
  const { sudo } = ensureTools(log, opts.kube);
  await down(lab);

  const stateDir = stateDirOf(lab);
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const keyPath = path.join(stateDir, "id_ed25519");
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `k8sbm-lab-${lab}`, "-f", keyPath]);
  const publicKey = fs.readFileSync(keyPath + ".pub", "utf8");

  try {
    const sw = switchNetns(lab);
    run("ip", ["netns", "add", sw]);
    const swCmds = ["link set lo up"];
    for (const seg of Object.values(SEGMENTS)) {
      swCmds.push(`link add ${seg.bridge} type bridge stp_state 0 mcast_snooping 0`, `link set ${seg.bridge} up`);
    }
    run("ip", ["-n", sw, "-batch", "-"], { input: swCmds.join("\n") + "\n" });

    // the lab's own PID namespace: its tini adopts and reaps every lab process
    const labLog = fs.openSync(path.join(stateDir, "lab.log"), "a");
    const initPidFile = path.join(stateDir, "init.pid");
    const top = spawn(
      "unshare",
      ["--pid", "--fork", "--kill-child", "--", "/bin/sh", "-c",
        `read -r p _ < /proc/self/stat; echo "$p" > "$1"; exec ${which("tini")} -s -- sleep infinity`, "sh", initPidFile],
      { detached: true, env: labEnv(lab), stdio: ["ignore", labLog, labLog] },
    );
    top.unref();
    fs.closeSync(labLog);
    const labInit = await waitFor("the lab init", 10_000, () => readPidFile(initPidFile));

    const st: LabState = {
      name: lab,
      stateDir,
      createdAt: new Date().toISOString(),
      privateKeyPath: keyPath,
      publicKey: publicKey.trim(),
      sudoUser: sudo ? SUDO_USER : null,
      switchNetns: sw,
      pids: { top: top.pid!, init: labInit },
      hosts: [],
    };
    save(st);
    if (opts.kube) st.image = buildImageLayer(stateDir, log);
    const ctx: Ctx = { lab, stateDir, labInit, publicKey, sudo, prefix: opts.hostPrefix ?? "k8s-", log, image: st.image };
    const base = opts.basePort ?? 0;
    st.hosts = await Promise.all(Array.from({ length: n }, (_, i) => buildHost(ctx, i + 1, base ? base + i + 1 : 0)));
    save(st);
    return st;
  } catch (e) {
    if (!process.env.K8SBM_LAB_KEEP_FAILED) await down(lab).catch(() => undefined);
    throw e;
  }
}

/** Removes lab `lab` completely; fine to call when it is partly or not at all there. */
export async function down(lab: string): Promise<void> {
  checkLabName(lab);
  const dir = stateDirOf(lab);
  const pids: number[] = [];
  try {
    const st = load(lab);
    pids.push(st.pids.top, st.pids.init);
    for (const h of st.hosts) pids.push(h.pids.init, h.pids.forwarder);
  } catch {
    /* no or unreadable state: the sweeps below still find everything */
  }
  const namespaces = listNetns().filter((ns) => ns.startsWith(nsPrefix(lab)));
  const inLabNetns = new Set(namespaces.flatMap(netnsPids));
  pids.push(...inLabNetns, ...memberPids(lab));
  // recorded PIDs may have been reused: only kill what is still ours
  await killAll(pids.filter((p) => isMember(p, lab) || inLabNetns.has(p)));
  for (const ns of namespaces) run("ip", ["netns", "del", ns], { allowFail: true });
  removeLabCgroups(dir);
  removeTree(dir);
}

// ---------------------------------------------------------------------------------------------
// the Kubernetes image layer

const NODE_IMAGE = path.join(__dirname, "node-image.sh");

/**
 * The layer under every host's root: our .deb packages installed with dpkg over the real root,
 * so dpkg on a host lists them as installed. Made per lab (a few seconds): the real root's
 * package database may have changed since the last lab. It lives on a tmpfs of its own:
 * overlayfs refuses a lower layer inside another lower layer (here "/") of the same filesystem.
 */
function buildImageLayer(stateDir: string, log: (m: string) => void): string {
  log("building the node image (first time: builds kubelet, etcd, containerd from Go modules)");
  const out = execFileSync("bash", [NODE_IMAGE], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 20 }).trim();
  const image = path.join(stateDir, "image");
  const merged = path.join(stateDir, "image.merged");
  for (const d of [image, merged]) fs.mkdirSync(d, { recursive: true, mode: 0o755 });
  run("mount", ["-t", "tmpfs", "-o", "mode=0755,size=4g", "k8sbm-lab-image", image]);
  fs.mkdirSync(path.join(image, "upper"), { mode: 0o755 });
  fs.mkdirSync(path.join(image, ".work"), { mode: 0o700 });
  const debs = fs.readdirSync(path.join(out, "debs")).map((f) => path.join(out, "debs", f));
  run("unshare", ["-m", "--propagation", "private", "/bin/sh", "-ec",
    'm=$3; mount -t overlay overlay -o "lowerdir=/,upperdir=$1,workdir=$2" "$m"; shift 3; chroot "$m" dpkg -i "$@" >/dev/null',
    "sh", path.join(image, "upper"), path.join(image, ".work"), merged, ...debs]);
  removeTree(path.join(image, ".work"));
  fs.rmdirSync(merged);
  return path.join(image, "upper");
}

/** The per-host cgroup roots the lab kubelets made (see node-image/kubelet-supervise). */
function removeLabCgroups(stateDir: string): void {
  const hostsDir = path.join(stateDir, "hosts");
  if (!fs.existsSync(hostsDir) || !fs.existsSync("/sys/fs/cgroup")) return;
  for (const h of fs.readdirSync(hostsDir)) {
    const idFile = path.join(hostsDir, h, "upper/etc/machine-id");
    if (!fs.existsSync(idFile)) continue;
    const root = `k8sbm-lab-${fs.readFileSync(idFile, "utf8").trim().slice(0, 12)}`;
    for (const c of fs.readdirSync("/sys/fs/cgroup")) {
      const top = path.join("/sys/fs/cgroup", c, root);
      if (fs.existsSync(top)) run("find", [top, "-depth", "-type", "d", "-exec", "rmdir", "{}", "+"], { allowFail: true });
    }
  }
}

/** Rebuilds one host from scratch (fresh disk and NEW host keys), keeping its addresses and port. */
export async function recreateHost(lab: string, host: string, opts: { log?: (m: string) => void } = {}): Promise<LabHost> {
  const st = load(lab);
  const old = hostOf(st, host);
  const inNetns = new Set(netnsPids(old.netns));
  await killAll([old.pids.init, old.pids.forwarder, ...inNetns].filter((p) => isMember(p, lab) || inNetns.has(p)));
  run("ip", ["netns", "del", old.netns], { allowFail: true });
  // the switch-side veth ends vanish with the namespace (asynchronously)
  await waitFor(`${host}'s old links to go`, 10_000, () =>
    run("ip", ["-n", st.switchNetns, "-o", "link", "show"], { allowFail: true }).match(new RegExp(`: h${old.index}w\\d@`)) ? undefined : true,
  );
  removeTree(old.dir);
  const ctx: Ctx = {
    lab,
    stateDir: st.stateDir,
    labInit: st.pids.init,
    publicKey: st.publicKey + "\n",
    sudo: st.sudoUser !== null,
    prefix: old.name.slice(0, old.name.length - String(old.index).length),
    log: opts.log ?? (() => undefined),
    image: st.image,
  };
  const fresh = await buildHost(ctx, old.index, old.ssh.port);
  st.hosts = st.hosts.map((h) => (h.name === host ? fresh : h));
  save(st);
  return fresh;
}

export interface HostExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

/**
 * Runs `sh -c cmd` inside a lab host's namespaces (mount/UTS/net/PID and its root), from the
 * root namespace, without SSH. Rejects on non-zero exit unless allowFail. Daemons started
 * here must not keep stdout/stderr open (redirect them).
 */
export function hostExec(
  lab: string | LabState,
  host: string,
  cmd: string,
  opts: { stdin?: string | Buffer; allowFail?: boolean; timeoutMs?: number } = {},
): Promise<HostExecResult> {
  const st = typeof lab === "string" ? load(lab) : lab;
  const h = hostOf(st, host);
  return new Promise((resolve, reject) => {
    const c = spawn("nsenter", ["-t", String(h.pids.init), "-m", "-u", "-n", "-p", "-r", "-w", "--", "/bin/sh", "-c", cmd], {
      env: labEnv(st.name),
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout!.on("data", (d: Buffer) => out.push(d));
    c.stderr!.on("data", (d: Buffer) => err.push(d));
    const timer = setTimeout(() => c.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    c.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    c.on("close", (code, sig) => {
      clearTimeout(timer);
      const r = { stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), code: code ?? (sig ? 128 : 1) };
      if (r.code !== 0 && !opts.allowFail) reject(new Error(`${host} (lab ${st.name}): ${JSON.stringify(cmd)} exited ${r.code}: ${r.stderr.trim()}`));
      else resolve(r);
    });
    // a command that exits without reading stdin closes the pipe first: that is not an error
    c.stdin!.on("error", () => undefined);
    c.stdin!.end(opts.stdin ?? "");
  });
}

export async function stopSshd(lab: string | LabState, host: string): Promise<void> {
  await hostExec(lab, host, "/usr/local/sbin/k8sbm-lab-sshd stop");
}

export async function startSshd(lab: string | LabState, host: string): Promise<void> {
  await hostExec(lab, host, "/usr/local/sbin/k8sbm-lab-sshd start");
}

/** Labs that have state under the state root. */
export function list(): string[] {
  try {
    return fs.readdirSync(stateRoot()).filter((d) => fs.existsSync(path.join(stateRoot(), d, "hosts.json")));
  } catch {
    return [];
  }
}
