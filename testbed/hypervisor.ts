// A lab host as a libvirt hypervisor: a REAL libvirtd (and virtlogd) in its namespaces, so the
// bridges, dnsmasq and NAT rules of the networks it makes never touch the machine's network.
// The program reaches it over SSH with its recorded host key pinned (qemu+libssh://…?known_hosts=).
import * as fs from "fs";
import { hostExec } from "./exec";
import { until } from "./stack";
import type { TestbedState } from "./state";

export const IMAGES = "/var/lib/libvirt/images";

/** Starts virtlogd + libvirtd in the lab host `name` (tini reaps their children) and the default pool. */
export async function startHypervisor(lab: TestbedState, name: string): Promise<void> {
  const h = lab.hosts.find((x) => x.name === name)!;
  const hv = (cmd: string) => hostExec(lab, name, cmd);
  // libvirt refuses a network whose subnet is already routed in its namespace: keep the lab's
  // own wan0 address (sshd listens there) as a /32 so the seed's 10.118.10.0/24 is free.
  await hv(`ip addr del ${h.ifaces.wan0.cidr} dev wan0 && ip addr add ${h.ifaces.wan0.address}/32 dev wan0`);
  // libvirt's private /dev for each qemu (mount namespace) cannot be populated inside the lab
  // host ("Could not open '/dev/urandom'" for the virtio rng): qemu uses the host's /dev.
  await hv("echo 'namespaces = []' >> /etc/libvirt/qemu.conf");
  // A hypervisor without KVM, whatever this machine offers (some machines of this kind have a
  // working /dev/kvm): the lab host's /dev stops sharing mounts with the machine's, and an empty
  // file hides the device from libvirt and qemu there. The VMs run under TCG either way.
  await hv("mount --make-private /dev && if [ -e /dev/kvm ]; then : > /run/no-kvm && mount --bind /run/no-kvm /dev/kvm; fi");
  await hv(
    "mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/images && virtlogd -d </dev/null >/dev/null 2>&1 && libvirtd -d </dev/null >/dev/null 2>&1",
  );
  await until(`libvirtd to answer in ${name}`, 30_000, async () =>
    (await hostExec(lab, name, "virsh -c qemu:///system version", { allowFail: true })).code === 0 ? true : undefined,
  );
  await hv(
    `virsh -c qemu:///system pool-define-as default dir --target ${IMAGES} && virsh -c qemu:///system pool-start default && virsh -c qemu:///system pool-autostart default`,
  );
}

/** A known_hosts file pinning the hypervisor's host key at its forwarded address. */
export function writeKnownHosts(lab: TestbedState, file: string, hostKey = lab.hosts[0].hostKey): void {
  const h = lab.hosts[0];
  fs.writeFileSync(file, `[${h.ssh.host}]:${h.ssh.port} ${hostKey}\n`, { mode: 0o600 });
}

/** lab.uri for the hypervisor (the lab's first host), its host key checked against `knownHostsFile` */
export const hypervisorUri = (lab: TestbedState, knownHostsFile: string) =>
  `qemu+libssh://root@${lab.hosts[0].ssh.host}:${lab.hosts[0].ssh.port}/system?keyfile=${lab.privateKeyPath}&known_hosts=${knownHostsFile}`;
