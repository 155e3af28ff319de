// LibvirtLab: the seed's rehearsal environment (seed §1) — the wan0 and shadow NAT networks and
// one VM per node with the seed's MACs, memory and disk, booted with a cloud-init seed that
// carries our SSH key and a host key generated here, so the VMs are reachable and pinned with
// no manual step.
import * as pulumi from "@pulumi/pulumi";
import type { Secrets } from "../config";
import { LibvirtDomain, LibvirtHypervisor, LibvirtImage, LibvirtNetwork, LibvirtVolume, SshKeyPair } from "../providers/resources";
import { baseVolumeName } from "../providers/libvirt/image-download";
import { isImageUrl } from "../model/checks";
import * as lv from "../render/libvirt";
import type { ClusterSpec } from "../model/model";

export interface LibvirtLabArgs {
  spec: ClusterSpec;
  secrets: Secrets;
}

/** The OpenSSH public key line of a private key (what cloud-init authorizes). */
export function publicKeyOf(privateKey: string): string {
  const { utils } = require("ssh2") as typeof import("ssh2");
  const parsed = utils.parseKey(privateKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key instanceof Error) throw new Error(`sshPrivateKey: ${key.message}`);
  return `${key.type} ${key.getPublicSSH().toString("base64")}`;
}

export class LibvirtLab extends pulumi.ComponentResource {
  /** per node: the running VM */
  readonly vms: Record<string, LibvirtDomain> = {};
  /** per node: the host key injected at first boot (pin it) */
  readonly hostKeys: Record<string, pulumi.Output<string>> = {};

  constructor(name: string, args: LibvirtLabArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k8sbm:index:LibvirtLab", name, {}, opts);
    const { spec, secrets } = args;
    const lab = spec.config.lab;
    // checked at preview, before anything is made on the hypervisor
    const hypervisor = new LibvirtHypervisor(
      `${name}-hypervisor`,
      { uri: lab.uri, pool: lab.pool, domainType: lab.domainType },
      { parent: this },
    );
    const p = { parent: this, dependsOn: [hypervisor] };
    const networks = [lv.labWan0Network(spec), lv.labShadowNetwork(spec)].map(
      (net) => new LibvirtNetwork(`${name}-net-${net.name}`, { uri: lab.uri, name: net.name, xml: lv.networkXml(net) }, p),
    );
    const authorized = secrets.sshPrivateKey.apply(publicKeyOf);
    // A URL is downloaded and verified once, then the disks are overlays on its pool volume.
    const baseImage: pulumi.Input<string | undefined> =
      lab.baseImage && isImageUrl(lab.baseImage)
        ? new LibvirtImage(
            `${name}-base-image`,
            {
              uri: lab.uri,
              pool: lab.pool,
              name: baseVolumeName(lab.baseImageChecksum!),
              url: lab.baseImage,
              checksum: lab.baseImageChecksum!,
            },
            p,
          ).path
        : lab.baseImage;

    for (const node of spec.nodes) {
      const hostKey = new SshKeyPair(`${node.name}-host-key`, { comment: `root@${node.name}` }, p);
      this.hostKeys[node.name] = hostKey.publicKey;
      const disk = new LibvirtVolume(
        `${node.name}-disk`,
        { uri: lab.uri, pool: lab.pool, name: `${node.name}.qcow2`, capacityGiB: lab.vm.diskGiB, baseImage },
        p,
      );
      const cloudInit = pulumi.all([authorized, hostKey.publicKey, hostKey.privateKey]).apply(([key, pub, priv]) => ({
        userData: lv.cloudInitUserData(node, { authorizedKeys: [key], hostKey: { publicKey: pub, privateKey: priv } }),
        metaData: lv.cloudInitMetaData(node),
        networkConfig: lv.labNetworkConfig(spec, node),
      }));
      const seed = new LibvirtVolume(`${node.name}-seed`, { uri: lab.uri, pool: lab.pool, name: `${node.name}-seed.iso`, cloudInit }, p);
      const xml = pulumi
        .all([disk.path, seed.path])
        .apply(([diskPath, seedIsoPath]) =>
          lv.domainXml(
            lv.labDomain(spec, node, { diskPath, seedIsoPath, consoleLogPath: `/var/log/libvirt/qemu/${node.name}-console.log` }),
          ),
        );
      this.vms[node.name] = new LibvirtDomain(
        `${node.name}-vm`,
        { uri: lab.uri, name: node.name, xml, running: true },
        { parent: this, dependsOn: [hypervisor, ...networks] },
      );
    }
    this.registerOutputs({ hostKeys: this.hostKeys });
  }
}
