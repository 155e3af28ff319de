import { XMLParser, XMLValidator } from "fast-xml-parser";
import YAML from "yaml";
import {
  cloudInitMetaData,
  cloudInitNetworkConfig,
  cloudInitUserData,
  domainXml,
  labDomain,
  labNetworkConfig,
  labShadowNetwork,
  labWan0Network,
  networkXml,
} from "../../render/libvirt";
import { ownedParts, withUuidOf } from "../../providers/libvirt/virsh";
import { devSpec } from "../fixtures/dev";
import { TEST_AUTHORIZED_KEY, TEST_HOST_KEY } from "../fixtures/keys";

const spec = devSpec();
const [k1] = spec.nodes;
const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  isArray: (name) => ["host", "disk", "interface"].includes(name),
});
const parseXml = (text: string): any => {
  expect(XMLValidator.validate(text)).toBe(true);
  return xml.parse(text);
};
const paths = {
  diskPath: "/var/lib/libvirt/images/k8s-1.qcow2",
  seedIsoPath: "/var/lib/libvirt/images/k8s-1-seed.iso",
  consoleLogPath: "/var/log/k8s-1.log",
};

describe("libvirt networks", () => {
  test("wan0: NAT, 10.118.10.1/24, DHCP .128-.254, one static host per VM", () => {
    const n = parseXml(networkXml(labWan0Network(spec))).network;
    expect(n.name).toBe("wan0");
    expect(n.forward["@mode"]).toBe("nat");
    expect(n.bridge["@name"]).toBe("virbr-wan0");
    expect([n.ip["@address"], n.ip["@netmask"]]).toEqual(["10.118.10.1", "255.255.255.0"]);
    expect([n.ip.dhcp.range["@start"], n.ip.dhcp.range["@end"]]).toEqual(["10.118.10.128", "10.118.10.254"]);
    expect(n.ip.dhcp.host.map((h: any) => [h["@mac"], h["@name"], h["@ip"]])).toEqual([
      ["52:54:00:12:34:56", "k8s-1", "10.118.10.20"],
      ["52:54:00:12:34:57", "k8s-2", "10.118.10.21"],
      ["52:54:00:12:34:58", "k8s-3", "10.118.10.22"],
      ["52:54:00:12:34:59", "k8s-4", "10.118.10.23"],
    ]);
  });

  test("shadow: NAT, 10.118.11.1/24, no DHCP", () => {
    const n = parseXml(networkXml(labShadowNetwork(spec))).network;
    expect(n.name).toBe("shadow");
    expect(n.forward["@mode"]).toBe("nat");
    expect([n.ip["@address"], n.ip["@netmask"]]).toEqual(["10.118.11.1", "255.255.255.0"]);
    expect(n.ip.dhcp).toBeUndefined();
  });

  test("names are escaped; bridge names over 15 characters are refused", () => {
    const t = networkXml({ name: 'a&b"<x>', bridge: "br0", gateway: "10.0.0.1/8" });
    expect(parseXml(t).network.name).toBe('a&b"<x>');
    expect(() => networkXml({ name: "n", bridge: "a-very-long-bridge", gateway: "10.0.0.1/8" })).toThrow(/15/);
  });
});

describe("libvirt domain", () => {
  test("the seed's VM: 3 GiB, virtio qcow2 vda, the seed a read-only virtio disk, two virtio NICs with fixed MACs, file serial", () => {
    const text = domainXml(labDomain(spec, k1, paths));
    const d = parseXml(text).domain;
    expect(d["@type"]).toBe("kvm");
    expect(d.name).toBe("k8s-1");
    expect(d.memory).toEqual({ "#text": 3072, "@unit": "MiB" });
    expect(d.vcpu["#text"]).toBe(2);
    expect(d.os.type["#text"]).toBe("hvm");
    const [disk, seed] = d.devices.disk;
    expect([disk["@device"], disk.driver["@type"], disk.source["@file"], disk.target["@dev"], disk.target["@bus"]]).toEqual([
      "disk",
      "qcow2",
      paths.diskPath,
      "vda",
      "virtio",
    ]);
    // a cloud kernel without AHCI (Debian's) still sees it
    expect([seed["@device"], seed.driver["@type"], seed.source["@file"], seed.target["@bus"], "readonly" in seed]).toEqual([
      "disk",
      "raw",
      paths.seedIsoPath,
      "virtio",
      true,
    ]);
    expect(d.devices.interface.map((i: any) => [i.mac["@address"], i.source["@network"], i.model["@type"]])).toEqual([
      ["52:54:00:12:34:56", "wan0", "virtio"],
      ["52:54:00:12:35:56", "shadow", "virtio"],
    ]);
    expect(d.devices.serial["@type"]).toBe("file");
    expect(d.devices.serial.source["@path"]).toBe(paths.consoleLogPath);
    expect(text).not.toContain("pty");
    expect(d.cpu["@mode"]).toBe("host-passthrough");
  });

  test("direct kernel boot only when lab.kernel is set", () => {
    expect(domainXml(labDomain(spec, k1, paths))).not.toMatch(/<kernel>|<initrd>|<cmdline>/);
    const lab = { ...spec.config.lab, kernel: "/img/vmlinuz", initrd: "/img/initrd", cmdline: "console=ttyS0 panic=-1" };
    const d = parseXml(domainXml(labDomain({ ...spec, config: { ...spec.config, lab } }, k1, paths))).domain;
    expect([d.os.kernel, d.os.initrd, d.os.cmdline]).toEqual(["/img/vmlinuz", "/img/initrd", "console=ttyS0 panic=-1"]);
  });

  test("type qemu (TCG, the lab): no host-passthrough CPU", () => {
    const d = parseXml(domainXml({ ...labDomain(spec, k1, paths), type: "qemu" })).domain;
    expect(d["@type"]).toBe("qemu");
    expect(d.cpu).toBeUndefined();
  });
});

describe("cloud-init NoCloud seed", () => {
  test("user-data: #cloud-config first, hostname, root keys, the pinned ed25519 host key only", () => {
    const text = cloudInitUserData(k1, { authorizedKeys: [TEST_AUTHORIZED_KEY], hostKey: TEST_HOST_KEY });
    expect(text.split("\n")[0]).toBe("#cloud-config");
    const u = YAML.parse(text, { version: "1.1" });
    expect(u.hostname).toBe("k8s-1");
    expect(u.ssh_authorized_keys).toEqual([TEST_AUTHORIZED_KEY]);
    expect(u.disable_root).toBe(false);
    expect(u.ssh_pwauth).toBe(false);
    expect(u.ssh_genkeytypes).toEqual([]);
    expect(u.ssh_keys).toEqual({ ed25519_private: TEST_HOST_KEY.privateKey + "\n", ed25519_public: TEST_HOST_KEY.publicKey });
  });

  test("user-data refuses a non-ed25519 host key", () => {
    expect(() => cloudInitUserData(k1, { authorizedKeys: [], hostKey: { ...TEST_HOST_KEY, publicKey: "ssh-rsa AAAA" } })).toThrow(
      /ed25519/,
    );
  });

  test("meta-data: instance-id and local-hostname", () => {
    expect(YAML.parse(cloudInitMetaData(k1))).toEqual({ "instance-id": "k8s-1", "local-hostname": "k8s-1" });
    expect(YAML.parse(cloudInitMetaData(k1, "k8s-1-2"))["instance-id"]).toBe("k8s-1-2");
  });

  test("network-config v2: match by MAC (a string even to a YAML 1.1 reader), set-name, static addresses", () => {
    const text = labNetworkConfig(spec, k1);
    const n = YAML.parse(text, { version: "1.1" });
    expect(n.version).toBe(2);
    expect(n.ethernets.wan0).toEqual({
      match: { macaddress: "52:54:00:12:34:56" },
      "set-name": "wan0",
      dhcp4: false,
      dhcp6: false,
      addresses: ["10.118.10.20/24"],
      gateway4: "10.118.10.1",
      nameservers: { addresses: ["10.118.10.1"] },
    });
    expect(n.ethernets.wan1).toEqual({
      match: { macaddress: "52:54:00:12:35:56" },
      "set-name": "wan1",
      dhcp4: false,
      dhcp6: false,
      addresses: ["10.118.12.20/24"],
    });
  });

  test("network-config: at most 2 nameservers", () => {
    expect(() => cloudInitNetworkConfig(k1, { gateway: "10.118.10.1", nameservers: ["1.1.1.1", "8.8.8.8", "9.9.9.9"] })).toThrow(
      /2 nameservers/,
    );
  });
});

describe("ownedParts: what refresh compares with libvirt's own dump", () => {
  /** how libvirt dumps our XML: single quotes, memory in KiB, no comments, uuid/PCI addresses/bridge MAC added */
  const asLibvirtDumps = (ours: string) =>
    ours
      .replace(/<!--.*-->\n/, "")
      .replace(/="([^"]*)"/g, "='$1'")
      .replace(/<memory unit='MiB'>(\d+)<\/memory>/, (_m, n) => `<memory unit='KiB'>${Number(n) * 1024}</memory>`)
      .replace(/<currentMemory unit='MiB'>(\d+)/, (_m, n) => `<currentMemory unit='KiB'>${Number(n) * 1024}`)
      .replace(/(<name>[^<]*<\/name>)/, "$1\n  <uuid>0b5ad8e2-6f4e-4d8e-9a51-3f0f2b1c9d11</uuid>")
      .replace(/(<bridge [^>]*\/>)/, "$1\n  <mac address='52:54:00:a7:24:f4'/>")
      .replace(
        /<model type='virtio'\/>/g,
        "<model type='virtio'/>\n      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>",
      );
  test("a network and a domain as libvirt dumps them compare equal to ours", () => {
    const lab = { ...spec.config.lab, kernel: "/img/vmlinuz", initrd: "/img/initrd", cmdline: "console=ttyS0" };
    const dom = domainXml(labDomain({ ...spec, config: { ...spec.config, lab } }, k1, paths));
    for (const ours of [networkXml(labWan0Network(spec)), networkXml(labShadowNetwork(spec)), dom])
      expect(ownedParts(asLibvirtDumps(ours))).toEqual(ownedParts(ours));
    expect(ownedParts(dom)).toContain('<memory unit="KiB">3145728</memory>');
  });
  test("a changed MAC, memory or kernel shows", () => {
    const dom = domainXml(labDomain(spec, k1, paths));
    expect(ownedParts(dom.replace("52:54:00:12:34:56", "52:54:00:12:34:99"))).not.toEqual(ownedParts(dom));
    expect(ownedParts(dom.replace(">3072</memory>", ">2048</memory>"))).not.toEqual(ownedParts(dom));
    expect(ownedParts(dom.replace("<os>", "<os>\n    <kernel>/x</kernel>"))).not.toEqual(ownedParts(dom));
  });
});

describe("withUuidOf: redefining keeps libvirt's uuid", () => {
  test("the live uuid goes after <name>; a new definition stays as it is", () => {
    const ours = domainXml(labDomain(spec, k1, paths));
    expect(withUuidOf(undefined, ours)).toBe(ours);
    const live = "<domain type='kvm'>\n  <name>k8s-1</name>\n  <uuid>5778cd8d-863f-4be4-9b04-f28ae57bbdba</uuid>\n</domain>";
    const merged = withUuidOf(live, ours);
    expect(merged).toContain("<name>k8s-1</name>\n  <uuid>5778cd8d-863f-4be4-9b04-f28ae57bbdba</uuid>");
    expect(parseXml(merged).domain.uuid).toBe("5778cd8d-863f-4be4-9b04-f28ae57bbdba");
    expect(ownedParts(merged)).toEqual(ownedParts(ours));
  });
});
