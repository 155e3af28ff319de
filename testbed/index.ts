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
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { buildHost, type Ctx } from "./host";
import { buildImageLayer, removeLabCgroups } from "./node-image";
import { isMember, killAll, listNetns, memberPids, netnsPids, readPidFile, removeTree, run, testbedEnv, waitFor } from "./processes";
import {
  SEGMENTS,
  SUDO_USER,
  checkTestbedName,
  hostOf,
  load,
  nsPrefix,
  save,
  stateDirOf,
  stateRoot,
  switchNetns,
  type TestbedHost,
  type TestbedState,
  type UpOptions,
} from "./state";
import { ensureTools, which } from "./tools";

export * from "./state";
export { hostExec, startSshd, stopSshd, type HostExecResult } from "./exec";
export { waitForSsh } from "./host";
export { ensureTools } from "./tools";

/** Creates lab `lab` with n hosts (k8s-1..k8s-n). Tears down any leftovers of that lab first. */
export async function up(n: number, lab = "dev", opts: UpOptions = {}): Promise<TestbedState> {
  checkTestbedName(lab);
  if (!Number.isInteger(n) || n < 1 || n > 200) throw new Error(`testbed size must be 1..200, got ${n}`);
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
      [
        "--pid",
        "--fork",
        "--kill-child",
        "--",
        "/bin/sh",
        "-c",
        `read -r p _ < /proc/self/stat; echo "$p" > "$1"; exec ${which("tini")} -s -- sleep infinity`,
        "sh",
        initPidFile,
      ],
      { detached: true, env: testbedEnv(lab), stdio: ["ignore", labLog, labLog] },
    );
    top.unref();
    fs.closeSync(labLog);
    const labInit = await waitFor("the lab init", 10_000, () => readPidFile(initPidFile));

    const st: TestbedState = {
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
    if (opts.kube) st.image = buildImageLayer(stateDir, log, { cilium: opts.cilium, addons: opts.addons, upgrade: opts.upgrade });
    const ctx: Ctx = {
      lab,
      stateDir,
      labInit,
      publicKey,
      sudo,
      prefix: opts.hostPrefix ?? "k8s-",
      firstAddress: opts.firstAddress ?? 20,
      log,
      image: st.image,
    };
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
  checkTestbedName(lab);
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

/** Rebuilds one host from scratch (fresh disk and NEW host keys), keeping its addresses and port. */
export async function recreateHost(lab: string, host: string, opts: { log?: (m: string) => void } = {}): Promise<TestbedHost> {
  const st = load(lab);
  const old = hostOf(st, host);
  const inNetns = new Set(netnsPids(old.netns));
  await killAll([old.pids.init, old.pids.forwarder, ...inNetns].filter((p) => isMember(p, lab) || inNetns.has(p)));
  run("ip", ["netns", "del", old.netns], { allowFail: true });
  // the switch-side veth ends vanish with the namespace (asynchronously)
  await waitFor(`${host}'s old links to go`, 10_000, () =>
    run("ip", ["-n", st.switchNetns, "-o", "link", "show"], { allowFail: true }).match(new RegExp(`: h${old.index}w\\d@`))
      ? undefined
      : true,
  );
  removeTree(old.dir);
  const ctx: Ctx = {
    lab,
    stateDir: st.stateDir,
    labInit: st.pids.init,
    publicKey: st.publicKey + "\n",
    sudo: st.sudoUser !== null,
    prefix: old.name.slice(0, old.name.length - String(old.index).length),
    firstAddress: Number(old.ifaces.wan0.address.split(".")[3]) - old.index + 1,
    log: opts.log ?? (() => undefined),
    image: st.image,
  };
  const fresh = await buildHost(ctx, old.index, old.ssh.port);
  st.hosts = st.hosts.map((h) => (h.name === host ? fresh : h));
  save(st);
  return fresh;
}

export function list(): string[] {
  try {
    return fs.readdirSync(stateRoot()).filter((d) => fs.existsSync(path.join(stateRoot(), d, "hosts.json")));
  } catch {
    return [];
  }
}
