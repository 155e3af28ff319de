// The dev stack for real (issue 15): libvirt VMs booting a real distribution, configured by
// cloud-init, prepared by the program over SSH through the hypervisor as jump host.
// A REAL libvirtd runs in a lab host (testbed/hypervisor.ts); the VMs run under TCG there (no KVM
// in a lab host, see startHypervisor). Their image is Debian built by testbed/vm-image.sh from
// Debian packages: systemd, cloud-init, openssh-server and the cloud kernel, booted directly
// (lab.kernel/initrd). The stack is the dev stack's shape — both seed networks, the seed's MACs
// and addresses — with three nodes (k8s-1..3: control plane + balancer, so VRRP has peers) and
// the Kubernetes layers off.
// Stand-ins, named: the image already holds the packages host preparation installs (the VMs
// reach no mirror here; the rehearse suite runs the program's install path against a signed apt
// repository), and the image is a local path on the hypervisor (the libvirt suite covers a
// downloaded one).
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { describeLibvirt } from "../testbed";
import { down, hostExec, sshTarget, up, type TestbedState } from "../../testbed";
import { hypervisorUri, IMAGES, startHypervisor, writeKnownHosts } from "../../testbed/hypervisor";
import { ROOT, TestbedStack, until } from "../../testbed/stack";
import { closeAll, connect, fingerprint, type Host } from "../../providers/ssh";
import { expectedHolders, planVrrp } from "../../plan/vrrp";
import * as hostRender from "../../render/host";

const LAB = "vms";
const HV = "hv-1";
const NODES = ["k8s-1", "k8s-2", "k8s-3"];
const NETWORKS = ["wan0", "shadow"];
const BASE = `${IMAGES}/k8sbm-debian-base.qcow2`;
const KERNEL = `${IMAGES}/k8sbm-debian-vmlinuz`;
const INITRD = `${IMAGES}/k8sbm-debian-initrd.img`;

let lab: TestbedState;
let stack: TestbedStack;
const timings: Record<string, number> = {};
const hv = (cmd: string, opts: { allowFail?: boolean; timeoutMs?: number } = {}) => hostExec(lab, HV, cmd, opts);
const virshIn = async (args: string) => (await hv(`virsh -q -c qemu:///system ${args}`)).stdout;
const names = (out: string) =>
  out
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0])
    .filter(Boolean);
const wan0Of = (node: string) => `10.118.10.${20 + NODES.indexOf(node)}`;

/** The image testbed/vm-image.sh builds (cached; about 2 min the first time). */
function vmImage(): string {
  return execFileSync("bash", [path.join(ROOT, "testbed/vm-image.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
}

function stackConfig(uri: string): Record<string, unknown> {
  const dev = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")).config as Record<string, any>;
  const h = lab.hosts[0];
  return {
    ...dev,
    "k8s-baremetal:os": { family: "debian", init: "systemd" },
    "k8s-baremetal:nodes": (dev["k8s-baremetal:nodes"] as { name: string }[]).filter((n) => NODES.includes(n.name)),
    "k8s-baremetal:lab": {
      ...dev["k8s-baremetal:lab"],
      uri,
      domainType: "qemu",
      baseImage: BASE,
      kernel: KERNEL,
      initrd: INITRD,
      cmdline: "root=/dev/vda rw console=ttyS0",
      vm: { memoryMiB: 768, vcpus: 1, diskGiB: 2 },
    },
    // the VMs' addresses are reachable only inside the hypervisor: it is the jump host
    "k8s-baremetal:ssh": { jumpHost: { host: h.ssh.host, port: h.ssh.port, hostKey: h.hostKey } },
    "k8s-baremetal:layers": { kubernetes: false, cilium: false, addons: false },
  };
}

/** A session to a VM through the hypervisor, its host key pinned to `hostKey`. */
async function vm(node: string, hostKey: string): Promise<Host> {
  return connect(sshTarget(lab, HV, { name: node, host: wan0Of(node), port: 22, hostKey, retries: 2, via: sshTarget(lab, HV) }));
}
/** The ed25519 host key a VM serves, as seen from the hypervisor (no login). */
const servedKey = async (node: string) =>
  (await hv(`ssh-keyscan -t ed25519 ${wan0Of(node)} 2>/dev/null`)).stdout
    .split("\n")
    .find((l) => l.includes("ssh-ed25519"))!
    .split(" ")
    .slice(1, 3)
    .join(" ");

describeLibvirt("the dev stack's VMs: Debian with cloud-init and systemd, prepared through the hypervisor (TCG)", () => {
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    const image = vmImage();
    // the hypervisor at 10.118.10.10: the VMs hold the seed's .20-.22 behind it
    lab = await up(1, LAB, { basePort: 22200, hostPrefix: "hv-", firstAddress: 10 });
    await startHypervisor(lab, HV);
    // the lab host sees the machine's files through its overlay root
    await hv(`cp ${image}/base.qcow2 ${BASE} && cp ${image}/vmlinuz ${KERNEL} && cp ${image}/initrd.img ${INITRD}`);
    stack = new TestbedStack(undefined);
    const kh = path.join(stack.work, "known_hosts");
    writeKnownHosts(lab, kh);
    fs.writeFileSync(stack.configFile, YAML.stringify({ config: stackConfig(hypervisorUri(lab, kh)) }));
    stack.init(lab, "Vr7pAss1", { hostKeys: false });
  }, 10 * 60_000);

  afterAll(async () => {
    closeAll();
    await down(LAB);
    stack?.remove();
    // eslint-disable-next-line no-console
    if (Object.keys(timings).length) console.log(`dev-stack VMs wall times (s): ${JSON.stringify(timings)}`);
  }, 5 * 60_000);

  test(
    "up boots the VMs, logs in with the host keys it generated and pinned, and prepares them",
    async () => {
      const r = stack.run(["up", "--yes", "--skip-preview"]);
      timings.up = Math.round(r.seconds * 10) / 10;
      const outputs = JSON.parse(stack.run(["stack", "output", "--json"]).out.split("\n\n")[0]) as {
        nodes: Record<string, { hostKey: string }>;
      };
      for (const node of NODES) {
        // the key the VM serves is the one the program generated, put in cloud-init and pinned
        keys[node] = await servedKey(node);
        expect(fingerprint(keys[node])).toBe(outputs.nodes[node].hostKey);
        const log = (await hv(`cat /var/log/libvirt/qemu/${node}-console.log`)).stdout;
        expect(log).toMatch(/Datasource DataSourceNoCloud \[seed=\/dev\/vdb\]/);
      }
      const spec = stack.spec();
      const holders = expectedHolders(planVrrp(spec));
      for (const node of NODES) {
        const s = await vm(node, keys[node]);
        const n = spec.nodes.find((x) => x.name === node)!;
        expect((await s.exec("hostname")).stdout.trim()).toBe(node);
        // boot to sshd, by the VM's own clock (systemd's monotonic timestamp, µs since boot)
        const sshd = (await s.exec("systemctl show -P ActiveEnterTimestampMonotonic ssh.service")).stdout.trim();
        expect(Number(sshd)).toBeGreaterThan(0);
        timings[`${node}BootToSshd`] = Math.round(Number(sshd) / 1e5) / 10;
        // cloud-init: done without errors; the NICs matched by MAC and renamed, the seed's addresses
        expect((await s.exec("cloud-init status --wait --long", { allowFail: true })).stdout).toMatch(/status: done/);
        const addrs = (await s.exec("ip -o -4 addr show")).stdout;
        expect(addrs).toMatch(new RegExp(`\\d+: wan0\\s+inet ${n.wan0.address.replace(/\./g, "\\.")} `));
        expect(addrs).toMatch(new RegExp(`\\d+: wan1\\s+inet ${n.wan1.address.replace(/\./g, "\\.")} `));
        expect((await s.exec("ip route show default")).stdout).toMatch(/default via 10\.118\.10\.1 dev wan0/);
        // host preparation under real systemd
        expect((await s.readFile(hostRender.SYSCTL_PATH))?.toString()).toBe(hostRender.sysctlConf());
        expect((await s.exec("sysctl -n net.ipv4.ip_forward")).stdout.trim()).toBe("1");
        // the node's own line first in /etc/hosts (its name resolves to the wan1 address)
        expect((await s.exec("head -2 /etc/hosts")).stdout).toContain(hostRender.hostsLine(n));
        expect((await s.exec("systemctl is-active keepalived")).stdout.trim()).toBe("active");
        expect((await s.exec("systemctl is-enabled keepalived")).stdout.trim()).toBe("enabled");
        expect((await s.exec("systemctl is-system-running", { allowFail: true })).stdout.trim()).toMatch(/running|degraded/);
      }
      // the VIPs (the control plane's and the external pool) where the plan puts them, each on one
      // node only (VRRP settles within a few advertisement intervals)
      const want = NODES.map((node) =>
        [...holders]
          .filter(([, h]) => h === node)
          .map(([vip]) => vip.split("/")[0])
          .sort(),
      );
      const held = async () =>
        Promise.all(
          NODES.map(async (node) => {
            const have = (await (await vm(node, keys[node])).exec("ip -o -4 addr show")).stdout;
            return [...holders.keys()]
              .map((v) => v.split("/")[0])
              .filter((v) => have.includes(`inet ${v}/`))
              .sort();
          }),
        );
      await until("the VIPs on their planned holders", 60_000, async () =>
        JSON.stringify(await held()) === JSON.stringify(want) ? true : undefined,
      ).catch(() => undefined);
      expect(await held()).toEqual(want);
      // eslint-disable-next-line no-console
      console.log(`VIP holders: ${JSON.stringify(Object.fromEntries(holders))}`);
    },
    15 * 60_000,
  );

  test(
    "a second run changes nothing",
    () => {
      stack.run(["preview", "--expect-no-changes"]);
      stack.run(["preview", "--refresh", "--expect-no-changes"]);
      const r = stack.run(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
      timings.noopUp = Math.round(r.seconds * 10) / 10;
    },
    5 * 60_000,
  );

  test(
    "a rebooted VM comes back as prepared: keepalived enabled, kernel settings and policy routing restored",
    async () => {
      const node = "k8s-2";
      const before = await (
        await vm(node, keys[node])
      ).exec("ip rule show; ip route show table all | grep -v '^local\\|^broadcast\\|fe80\\|ff00' | sort");
      closeAll();
      const t0 = Date.now();
      await virshIn(`reboot ${node}`);
      const s = await until(`${node} to answer SSH after its reboot`, 5 * 60_000, async () => {
        try {
          const c = await vm(node, keys[node]);
          const up_ = await c.exec("cat /proc/uptime");
          return Number(up_.stdout.split(" ")[0]) < (Date.now() - t0) / 1000 + 5 ? c : undefined;
        } catch {
          closeAll();
          return undefined;
        }
      });
      await s.exec("systemctl is-system-running --wait", { allowFail: true, timeoutMs: 120_000 });
      timings.rebootToSsh = Math.round((Date.now() - t0) / 100) / 10;
      expect((await s.exec("sysctl -n net.ipv4.ip_forward")).stdout.trim()).toBe("1");
      expect((await s.exec("systemctl is-active keepalived")).stdout.trim()).toBe("active");
      const after = await until("the policy routing rules and routes after the reboot", 60_000, async () => {
        const now = await s.exec("ip rule show; ip route show table all | grep -v '^local\\|^broadcast\\|fe80\\|ff00' | sort");
        return now.stdout === before.stdout ? now : undefined;
      });
      expect(after.stdout).toBe(before.stdout);
      closeAll();
      stack.run(["preview", "--refresh", "--expect-no-changes"]);
    },
    8 * 60_000,
  );

  test(
    "destroy leaves no VM, volume or network of the stack",
    async () => {
      const r = stack.run(["destroy", "--yes", "--skip-preview"]);
      timings.destroy = Math.round(r.seconds * 10) / 10;
      expect(names(await virshIn("list --all --name"))).toEqual([]);
      const nets = names(await virshIn("net-list --all --name"));
      for (const n of NETWORKS) expect(nets).not.toContain(n);
      const vols = names(await virshIn("vol-list default"));
      expect(vols.filter((v) => NODES.some((n) => v.startsWith(n)))).toEqual([]);
      expect((await hv("ip -o link")).stdout).not.toMatch(/virbr-(wan0|shadow)/);
    },
    5 * 60_000,
  );
});
