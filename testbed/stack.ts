// Driving the testbed stack with the real CLI, for the end-to-end tests and the benchmark: a private
// file backend, a copy of Pulumi.testbed.yaml (passed with --config-file) holding this testbed's client
// key and recorded host keys.
import { spawn, spawnSync, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import type { TestbedState } from ".";
import { parseStackConfig } from "../model/parse";
import { SECRET_KEYS } from "../model/schema";
import type { ClusterSpec } from "../model/model";

export const ROOT = path.resolve(__dirname, "..");

export interface RunResult {
  code: number;
  out: string;
  seconds: number;
}

export class TestbedStack {
  readonly work = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-stack-"));
  readonly configFile = path.join(this.work, "testbed.yaml");
  /** a stack name of our own: `stack init` writes Pulumi.<stack>.yaml into the project, which we move out */
  readonly name = `testbed-${process.pid}-${path.basename(this.work).slice(-6)}`;
  /** the checkout whose scripts/pulumi and program run (the benchmark compares two) */
  projectDir = ROOT;

  /** @param config the stack config; default: Pulumi.testbed.yaml as committed */
  constructor(
    config?: Record<string, unknown>,
    readonly env: Record<string, string> = {},
  ) {
    fs.mkdirSync(path.join(this.work, "backend"));
    if (config) fs.writeFileSync(this.configFile, YAML.stringify({ config }));
    else fs.copyFileSync(path.join(ROOT, "Pulumi.testbed.yaml"), this.configFile);
  }

  run(args: string[], opts: { allowFail?: boolean; input?: string; env?: Record<string, string> } = {}): RunResult {
    // `stack` subcommands take no --config-file; the others read our copy.
    const extra =
      args[0] === "stack"
        ? args[1] === "init"
          ? []
          : ["--stack", this.name]
        : ["--stack", this.name, "--config-file", this.configFile, "--non-interactive"];
    const t0 = process.hrtime.bigint();
    const r = spawnSync(path.join(this.projectDir, "scripts/pulumi"), [...args, ...extra], {
      cwd: this.projectDir,
      env: { ...this.cliEnv(), ...opts.env },
      encoding: "utf8",
      input: opts.input,
      timeout: 20 * 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const out = `${r.stdout}\n${r.stderr}`;
    if (r.status !== 0 && !opts.allowFail) throw new Error(`pulumi ${args.join(" ")} exited ${r.status}:\n${out.slice(-6000)}`);
    return { code: r.status ?? 1, out, seconds };
  }

  /**
   * Create the stack and give it this lab's keys. hostKeys false: the lab hosts are not the
   * stack's nodes (the libvirt test's hypervisor), so their host keys are not set on nodes[].
   */
  init(lab: TestbedState, vrrpPassword: string, opts: { hostKeys?: boolean } = {}): void {
    this.run(["stack", "init", this.name]);
    // Keep the project tree clean: the new stack's file (its encryption salt) joins our copy.
    const created = path.join(this.projectDir, `Pulumi.${this.name}.yaml`);
    const salt = YAML.parse(fs.readFileSync(created, "utf8"))?.encryptionsalt as string | undefined;
    fs.rmSync(created);
    if (salt) fs.appendFileSync(this.configFile, `encryptionsalt: ${salt}\n`);
    if (opts.hostKeys !== false) lab.hosts.forEach((h, i) => this.run(["config", "set", "--path", `nodes[${i}].ssh.hostKey`, h.hostKey]));
    this.run(["config", "set", "--secret", "sshPrivateKey"], { input: fs.readFileSync(lab.privateKeyPath, "utf8") });
    this.run(["config", "set", "--secret", "vrrpPassword", vrrpPassword]);
  }

  /**
   * Edits the stack's config file in place, as an operator edits Pulumi.<stack>.yaml: `fn` gets
   * the keys without the project's namespace (`c.cilium.values`); secrets and the encryption salt
   * are kept. Returns the file as it was, to put back with `restoreConfig`.
   */
  editConfig(fn: (c: Record<string, any>) => void): string {
    const saved = fs.readFileSync(this.configFile, "utf8");
    const doc = YAML.parse(saved) as { config: Record<string, unknown> };
    const ns = "k8s-baremetal:";
    const c = Object.fromEntries(Object.entries(doc.config).map(([k, v]) => [k.startsWith(ns) ? k.slice(ns.length) : k, v]));
    fn(c);
    doc.config = Object.fromEntries(Object.entries(c).map(([k, v]) => [k.includes(":") ? k : `${ns}${k}`, v]));
    fs.writeFileSync(this.configFile, YAML.stringify(doc));
    return saved;
  }

  restoreConfig(saved: string): void {
    fs.writeFileSync(this.configFile, saved);
  }

  /** The stack's config as the program sees it (secrets assumed set). */
  spec(): ClusterSpec {
    const raw = YAML.parse(fs.readFileSync(this.configFile, "utf8")).config as Record<string, unknown>;
    const cfg = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.replace(/^k8s-baremetal:/, ""), v]));
    // every secret the stack has set counts as present (their values are ciphertext here)
    const secrets = new Set(SECRET_KEYS.filter((k) => k in cfg));
    const plain = Object.fromEntries(Object.entries(cfg).filter(([k]) => !(SECRET_KEYS as readonly string[]).includes(k)));
    return parseStackConfig("k8s-baremetal", plain, secrets, Object.keys(cfg));
  }

  /** The CLI's environment: this stack's file backend and passphrase. */
  cliEnv(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      PULUMI_BACKEND_URL: `file://${this.work}/backend`,
      PULUMI_CONFIG_PASSPHRASE: "testbed-passphrase",
      PULUMI_CONFIG_PASSPHRASE_FILE: "",
      ...this.env,
    };
  }

  /** A run of `run`, started in the background in its own process group (to kill it whole). */
  start(args: string[]): { child: ChildProcess; done: Promise<RunResult> } {
    const t0 = process.hrtime.bigint();
    const child = spawn(
      path.join(this.projectDir, "scripts/pulumi"),
      [...args, "--stack", this.name, "--config-file", this.configFile, "--non-interactive"],
      { cwd: this.projectDir, env: this.cliEnv(), detached: true, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    const done = new Promise<RunResult>((resolve) =>
      child.on("close", (code, signal) =>
        resolve({ code: code ?? (signal ? 128 : 1), out, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }),
      ),
    );
    return { child, done };
  }

  /** `pulumi cancel` (with the file backend: removes the stack's lock); it takes no --config-file. */
  cancel(): RunResult {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(path.join(this.projectDir, "scripts/pulumi"), ["cancel", "--yes", "--stack", this.name, "--non-interactive"], {
      cwd: this.projectDir,
      env: this.cliEnv(),
      encoding: "utf8",
      timeout: 5 * 60_000,
    });
    return { code: r.status ?? 1, out: `${r.stdout}\n${r.stderr}`, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
  }

  /** The file backend's lock files for this stack. */
  lockFiles(): string[] {
    const root = path.join(this.work, "backend", ".pulumi", "locks");
    if (!fs.existsSync(root)) return [];
    return (fs.readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith(".json")).map((f) => path.join(root, f));
  }

  /** The state, as `stack export` prints it. */
  state(): { deployment?: Record<string, unknown> } {
    return JSON.parse(this.run(["stack", "export"]).out.split("\n\n")[0].trim() || "{}") as { deployment?: Record<string, unknown> };
  }

  remove(): void {
    fs.rmSync(this.work, { recursive: true, force: true });
  }
}

/** Polls `probe` every 200 ms until it returns a value. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The processes of a process group (a killed run's CLI, language host, program, provider). */
export const groupPids = (pgid: number): number[] =>
  spawnSync("pgrep", ["-g", String(pgid)], { encoding: "utf8" })
    .stdout.split("\n")
    .filter(Boolean)
    .map(Number);

/** ids of the resources a `preview --diff` would update */
/**
 * Puts a testbed stack's nodes behind a jump host (ssh.jumpHost), as nodes on a NAT network or
 * behind a bastion: the first host is the bastion, reached directly; the others at their wan0
 * address (where their sshd listens), which only lab hosts can reach. For editConfig.
 */
export function behindJumpHost(lab: TestbedState): (c: Record<string, any>) => void {
  const [bastion, ...rest] = lab.hosts;
  return (c) => {
    c.ssh = { ...c.ssh, jumpHost: { host: bastion.ssh.host, port: bastion.ssh.port, hostKey: bastion.hostKey } };
    c.nodes[0].ssh = { ...c.nodes[0].ssh, jumpHost: false };
    rest.forEach((h, i) => (c.nodes[i + 1].ssh = { ...c.nodes[i + 1].ssh, host: h.ifaces.wan0.address, port: 22 }));
  };
}

export function updatedIds(out: string): string[] {
  return [...out.matchAll(/^\s*~ pulumi-nodejs:dynamic\/k8sbm:\w+: \(update\)\n\s*\[id=([^\]]+)\]/gm)].map((m) => m[1]);
}

/**
 * Pulumi.testbed.yaml for a testbed on other ports: `hosts` nodes (k8s-1..3 control plane + balancer,
 * the rest workers, as in the seed) and VRRP settings merged over the file's.
 */
export function testbedStackConfig(opts: {
  basePort: number;
  hosts?: number;
  vrrp?: Record<string, unknown>;
  /** more top-level keys (without the namespace), replacing the file's */
  extra?: Record<string, unknown>;
}): Record<string, unknown> {
  const cfg = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.testbed.yaml"), "utf8")).config as Record<string, unknown>;
  const nodes = Array.from({ length: opts.hosts ?? 4 }, (_, i) => ({
    name: `k8s-${i + 1}`,
    roles: i < 3 ? ["control-plane", "balancer"] : ["worker"],
    ssh: { host: "127.0.0.1", port: opts.basePort + i + 1 },
    wan0: { interface: "wan0", address: `10.118.10.${20 + i}/24` },
    wan1: { interface: "wan1", address: `10.118.12.${20 + i}/24` },
  }));
  const extra = Object.fromEntries(Object.entries(opts.extra ?? {}).map(([k, v]) => [`k8s-baremetal:${k}`, v]));
  return {
    ...cfg,
    "k8s-baremetal:vrrp": { ...(cfg["k8s-baremetal:vrrp"] as object), ...opts.vrrp },
    "k8s-baremetal:nodes": nodes,
    ...extra,
  };
}

/**
 * Stack config for a live cluster on `testbed up --kube` hosts. Each key is a stand-in for what a
 * testbed host cannot be (README, "The testbed's stand-ins"):
 * - cluster.allowCgroupV1: this machine's kernel mounts the cgroup v1 controllers, shared by all hosts;
 * - containerd.restrictOomScoreAdj: this machine lets no process lower its OOM score, not even root;
 * - packages.kubernetesRepository false: the node image has the Kubernetes packages installed (the
 *   repository path runs in test/e2e/rehearse.test.ts, from a signed repository a lab host serves).
 */
export const LIVE_CLUSTER = {
  layers: { kubernetes: true, cilium: false, addons: false },
  cluster: { allowCgroupV1: true },
  containerd: { restrictOomScoreAdj: true },
  packages: { kubernetesRepository: false },
};

/**
 * LIVE_CLUSTER with cilium, installed from `chartDir` (the chart of the cilium module the lab's
 * images are built from: testbed/cilium-image.sh; users keep the chart repository). The values
 * beyond the seed's are the testbed's stand-ins (README, "The testbed's stand-ins"):
 * - envoy and the L7 proxy off: cilium-envoy is C++, with no Go module to build its image from;
 * - cgroup.hostRoot the host's own cgroup2 group, not mounted by cilium: every testbed host shares
 *   the machine's cgroup2 root, where each host's socket load balancer would answer for all hosts
 *   (testbed/host.ts gives each host a group and shows it at /run/cilium/cgroupv2; kind nodes get
 *   a cgroup namespace, and cilium's kind setup sets the same two keys);
 * - apiAccess ssh-tunnel: the VIP lives in the lab's network namespaces, not routable from here;
 * - the agent's capabilities without SYS_RESOURCE: this machine's bounding set lacks it (runc:
 *   "unable to apply caps: operation not permitted"); on kernels >= 5.11 BPF memory is charged to
 *   the memory cgroup, so the agent does not need it to raise RLIMIT_MEMLOCK.
 */
export function liveCilium(chartDir: string): Record<string, unknown> {
  return {
    ...LIVE_CLUSTER,
    layers: { kubernetes: true, cilium: true, addons: false },
    cilium: {
      repository: "",
      chart: chartDir,
      apiAccess: "ssh-tunnel",
      values: {
        envoy: { enabled: false },
        l7Proxy: false,
        cgroup: { autoMount: { enabled: false }, hostRoot: "/run/cilium/cgroupv2" },
        securityContext: {
          capabilities: {
            ciliumAgent: [
              "CHOWN",
              "KILL",
              "NET_ADMIN",
              "NET_RAW",
              "IPC_LOCK",
              "SYS_MODULE",
              "SYS_ADMIN",
              "DAC_OVERRIDE",
              "FOWNER",
              "SETGID",
              "SETUID",
              "SYSLOG",
            ],
            cleanCiliumState: ["NET_ADMIN", "SYS_MODULE", "SYS_ADMIN"],
          },
        },
      },
    },
  };
}

/**
 * The stack's nodes for a live cluster on these lab hosts, their recorded host keys pinned: the
 * seed's roles (k8s-1..3 control plane + balancer, the rest workers).
 */
export function seedNodes(lab: TestbedState): Record<string, unknown>[] {
  return lab.hosts.map((h, i) => ({
    name: h.name,
    roles: i < 3 ? ["control-plane", "balancer"] : ["worker"],
    ssh: { host: "127.0.0.1", port: h.ssh.port, hostKey: h.hostKey },
    wan0: { interface: "wan0", address: h.ifaces.wan0.cidr },
    wan1: { interface: "wan1", address: h.ifaces.wan1.cidr },
  }));
}

/** VRRP's sound defaults (no authentication) with unicast peers. */
export const UNICAST = { authType: "none", unicast: true };
