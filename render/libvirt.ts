// The libvirt lab (SPEC §1): network and domain XML, cloud-init NoCloud seed files. Pure.
import YAML from "yaml";
import type { ClusterSpec, NodeSpec } from "../model/model";
import { formatIPv4, parseAddressWithPrefix } from "../model/ip";
import { HEADER, HASH_HEADER, compareAddresses, sortKeysDeep, xmlEscape } from "./common";

const XML_HEADER = `<!-- ${HEADER} -->`;

export interface DhcpHost {
  mac: string;
  name: string;
  ip: string;
}

export interface NetworkDef {
  name: string;
  /** host bridge device (at most 15 characters) */
  bridge: string;
  /** the host's address on the network with prefix: "10.118.10.1/24" */
  gateway: string;
  dhcp?: { start: string; end: string; hosts: DhcpHost[] };
}

function netmask(prefix: number): string {
  return formatIPv4(prefix === 0 ? 0 : (0xffffffff - (2 ** (32 - prefix) - 1)) >>> 0);
}

/** A bridge name from the network name: "virbr-" + name, cut to Linux's 15 characters. */
export function bridgeName(network: string): string {
  return `virbr-${network}`.slice(0, 15);
}

export function networkXml(net: NetworkDef): string {
  const gw = parseAddressWithPrefix(net.gateway);
  if (!gw) throw new Error(`network ${net.name}: gateway must be an address with prefix, got ${net.gateway}`);
  if (net.bridge.length > 15) throw new Error(`network ${net.name}: bridge name ${net.bridge} is longer than 15 characters`);
  const lines = [
    XML_HEADER,
    "<network>",
    `  <name>${xmlEscape(net.name)}</name>`,
    '  <forward mode="nat"/>',
    `  <bridge name="${xmlEscape(net.bridge)}" stp="on" delay="0"/>`,
  ];
  const ip = `  <ip address="${formatIPv4(gw.address)}" netmask="${netmask(gw.prefix)}"`;
  if (!net.dhcp) lines.push(`${ip}/>`);
  else {
    lines.push(`${ip}>`, "    <dhcp>", `      <range start="${net.dhcp.start}" end="${net.dhcp.end}"/>`);
    for (const h of [...net.dhcp.hosts].sort((a, b) => compareAddresses(a.ip, b.ip)))
      lines.push(`      <host mac="${xmlEscape(h.mac)}" name="${xmlEscape(h.name)}" ip="${h.ip}"/>`);
    lines.push("    </dhcp>", "  </ip>");
  }
  lines.push("</network>");
  return lines.join("\n") + "\n";
}

/** The seed's wan0 network: NAT, DHCP .128-.254, one static host entry per VM. */
export function labWan0Network(spec: ClusterSpec): NetworkDef {
  const n = spec.config.lab.networks.wan0;
  return {
    name: n.name,
    bridge: bridgeName(n.name),
    gateway: n.gateway,
    dhcp: {
      start: n.dhcpStart,
      end: n.dhcpEnd,
      hosts: spec.nodes.map((node) => ({ mac: node.wan0.mac!, name: node.name, ip: node.wan0.ip })),
    },
  };
}

/** The seed's "shadow" network (models Hetzner's vSwitch): NAT, no DHCP; the nodes' wan1 sit on it. */
export function labShadowNetwork(spec: ClusterSpec): NetworkDef {
  const n = spec.config.lab.networks.shadow;
  return { name: n.name, bridge: bridgeName(n.name), gateway: n.gateway };
}

export interface DomainDef {
  name: string;
  memoryMiB: number;
  vcpus: number;
  /** "kvm" on real hypervisors, "qemu" (TCG) where KVM does not work */
  type: "kvm" | "qemu";
  /** qcow2 volume holding the root disk */
  diskPath: string;
  /** cloud-init NoCloud seed image (volume label "cidata") */
  seedIsoPath: string;
  /** serial console log file: type "file", not "pty" (pty fails inside the lab's namespaces) */
  consoleLogPath: string;
  nics: { mac: string; network: string }[];
  /** direct kernel boot (paths on the hypervisor) instead of the disk's boot loader */
  directBoot?: { kernel: string; initrd?: string; cmdline?: string };
}

export function domainXml(d: DomainDef): string {
  const e = xmlEscape;
  return (
    [
      XML_HEADER,
      `<domain type="${d.type}">`,
      `  <name>${e(d.name)}</name>`,
      `  <memory unit="MiB">${d.memoryMiB}</memory>`,
      `  <currentMemory unit="MiB">${d.memoryMiB}</currentMemory>`,
      `  <vcpu placement="static">${d.vcpus}</vcpu>`,
      "  <os>",
      '    <type arch="x86_64">hvm</type>',
      ...(d.directBoot
        ? [
            `    <kernel>${e(d.directBoot.kernel)}</kernel>`,
            ...(d.directBoot.initrd ? [`    <initrd>${e(d.directBoot.initrd)}</initrd>`] : []),
            ...(d.directBoot.cmdline !== undefined ? [`    <cmdline>${e(d.directBoot.cmdline)}</cmdline>`] : []),
          ]
        : []),
      '    <boot dev="hd"/>',
      "  </os>",
      "  <features>",
      "    <acpi/>",
      "    <apic/>",
      "  </features>",
      // host-passthrough needs KVM; TCG emulates its default CPU model
      ...(d.type === "kvm" ? ['  <cpu mode="host-passthrough"/>'] : []),
      '  <clock offset="utc"/>',
      "  <on_poweroff>destroy</on_poweroff>",
      "  <on_reboot>restart</on_reboot>",
      "  <on_crash>destroy</on_crash>",
      "  <devices>",
      '    <disk type="file" device="disk">',
      '      <driver name="qemu" type="qcow2"/>',
      `      <source file="${e(d.diskPath)}"/>`,
      '      <target dev="vda" bus="virtio"/>',
      "    </disk>",
      // the seed as a read-only virtio disk, not a SATA cdrom: distributions' cloud kernels (Debian's
      // linux-image-cloud-amd64) have no AHCI driver, and cloud-init finds "cidata" on any disk
      '    <disk type="file" device="disk">',
      '      <driver name="qemu" type="raw"/>',
      `      <source file="${e(d.seedIsoPath)}"/>`,
      '      <target dev="vdb" bus="virtio"/>',
      "      <readonly/>",
      "    </disk>",
      ...d.nics.flatMap((n) => [
        '    <interface type="network">',
        `      <mac address="${e(n.mac)}"/>`,
        `      <source network="${e(n.network)}"/>`,
        '      <model type="virtio"/>',
        "    </interface>",
      ]),
      '    <serial type="file">',
      `      <source path="${e(d.consoleLogPath)}"/>`,
      '      <target port="0"/>',
      "    </serial>",
      '    <rng model="virtio">',
      '      <backend model="random">/dev/urandom</backend>',
      "    </rng>",
      "  </devices>",
      "</domain>",
    ].join("\n") + "\n"
  );
}

/** A lab VM for a node: the seed's 3 GiB / two virtio NICs with fixed MACs on wan0 and shadow. */
export function labDomain(
  spec: ClusterSpec,
  node: NodeSpec,
  paths: { diskPath: string; seedIsoPath: string; consoleLogPath: string },
): DomainDef {
  const lab = spec.config.lab;
  return {
    name: node.name,
    memoryMiB: lab.vm.memoryMiB,
    vcpus: lab.vm.vcpus,
    type: lab.domainType,
    ...paths,
    ...(lab.kernel ? { directBoot: { kernel: lab.kernel, initrd: lab.initrd, cmdline: lab.cmdline } } : {}),
    nics: [
      { mac: node.wan0.mac!, network: lab.networks.wan0.name },
      { mac: node.wan1.mac!, network: lab.networks.shadow.name },
    ],
  };
}

export interface HostKeyPair {
  /** OpenSSH private key (PEM "-----BEGIN OPENSSH PRIVATE KEY-----") */
  privateKey: string;
  /** "ssh-ed25519 AAAA…" */
  publicKey: string;
}

// cloud-init reads YAML 1.1 (PyYAML): emitting as 1.1 quotes what 1.1 would misread, e.g. a MAC
// like 52:54:00:12:34:56 (a base-60 integer there) or "on"/"off".
function yamlText(first: string[], body: Record<string, unknown>): string {
  return first.join("\n") + "\n" + YAML.stringify(sortKeysDeep(body), { lineWidth: 0, version: "1.1" });
}

/**
 * cloud-init user-data: hostname, root login by key, and a pinned ed25519 host key (generated
 * by the program) so the host key is known before first boot — no trust-on-first-use.
 */
export function cloudInitUserData(node: NodeSpec, opts: { authorizedKeys: string[]; hostKey: HostKeyPair }): string {
  if (!opts.hostKey.publicKey.startsWith("ssh-ed25519 ")) throw new Error("hostKey.publicKey must be an ssh-ed25519 public key line");
  return yamlText(["#cloud-config", HASH_HEADER], {
    hostname: node.name,
    preserve_hostname: false,
    // /etc/hosts is managed by host preparation (hostname -> wan1 address)
    manage_etc_hosts: false,
    // the program logs in as root by key (disable_root would prefix the keys with a refusal)
    disable_root: false,
    ssh_pwauth: false,
    ssh_authorized_keys: [...opts.authorizedKeys],
    // remove image host keys, install only the pinned one, generate no others
    ssh_deletekeys: true,
    ssh_genkeytypes: [],
    ssh_keys: {
      ed25519_private: opts.hostKey.privateKey.replace(/\n*$/, "\n"),
      ed25519_public: opts.hostKey.publicKey.trim(),
    },
  });
}

/** cloud-init meta-data. Changing instance-id makes cloud-init run again on next boot. */
export function cloudInitMetaData(node: NodeSpec, instanceId = node.name): string {
  return yamlText([HASH_HEADER], { "instance-id": instanceId, "local-hostname": node.name });
}

/**
 * cloud-init network-config (v2): NICs matched by MAC and renamed wan0/wan1 (the seed's
 * permanent names), static addresses, default route and DNS via the lab's wan0 gateway.
 */
export function cloudInitNetworkConfig(node: NodeSpec, opts: { gateway: string; nameservers: string[] }): string {
  if (opts.nameservers.length > 2) throw new Error("at most 2 nameservers: libc reads 3 and Kubernetes adds one");
  const nic = (n: NodeSpec["wan0"], extra: Record<string, unknown> = {}) => ({
    match: { macaddress: n.mac },
    "set-name": n.interface,
    dhcp4: false,
    dhcp6: false,
    addresses: [n.address],
    ...extra,
  });
  return yamlText([HASH_HEADER], {
    version: 2,
    ethernets: {
      [node.wan0.interface]: nic(node.wan0, {
        // gateway4, not a route: every renderer writes it natively (ifupdown's `gateway`), while
        // cloud-init's ifupdown renderer turns routes into `route add` from net-tools, absent
        // from minimal images, and cloud-init 22.4 (Debian 12) rejects netplan's `to: default`
        gateway4: opts.gateway,
        nameservers: { addresses: [...opts.nameservers] },
      }),
      [node.wan1.interface]: nic(node.wan1),
    },
  });
}

/** network-config for a lab node: gateway and DNS = the wan0 network's host address (libvirt's dnsmasq). */
export function labNetworkConfig(spec: ClusterSpec, node: NodeSpec): string {
  const gw = spec.config.lab.networks.wan0.gateway.split("/")[0];
  return cloudInitNetworkConfig(node, { gateway: gw, nameservers: [gw] });
}
