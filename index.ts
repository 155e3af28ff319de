// Composition only, in the seed's order: config -> one line per rollout step -> stack outputs.
import * as pulumi from "@pulumi/pulumi";
import { CONTROL_PLANE, ControlPlane, WORKERS, Workers } from "./components/control-plane";
import { EtcdBackup } from "./components/etcd-backup";
import { ClusterHost } from "./components/host";
import { LibvirtLab } from "./components/lab";
import { VrrpMesh } from "./components/vrrp";
import { loadConfig } from "./config";
import { clientCertificateExpiry } from "./providers/impl/kubeconfig";
import type { KubeadmJoin } from "./providers/resources";
import { expectedHolders, planVrrp } from "./plan/vrrp";

// cilium and the add-ons bring @pulumi/kubernetes (about a second to load): only when used
const cilium = () => require("./components/cilium") as typeof import("./components/cilium");
const addons = () => require("./components/addons") as typeof import("./components/addons");

const { spec, secrets, restore } = loadConfig();
const { config } = spec;
const { layers } = config;
const first = spec.controlPlanes[0];
const rehearse = config.cluster.rehearse;
const kubernetes = layers.hosts && layers.kubernetes;

// 0. the seed's libvirt lab (dev stack): NAT networks and one VM per node
const lab = config.lab.enabled ? new LibvirtLab("lab", { spec, secrets }) : undefined;

// 1. every node prepared: pinned SSH identity, packages, kernel settings, files, containerd
//    (layers.hosts false: a stack that only builds the lab; model/checks.ts requires hosts for the rest)
const hosts = !layers.hosts
  ? {}
  : Object.fromEntries(
      spec.nodes.map((node) => [
        node.name,
        new ClusterHost(
          node.name,
          { spec, node, secrets, ...(lab ? { pinnedHostKey: lab.hostKeys[node.name] } : {}) },
          lab ? { dependsOn: [lab.vms[node.name]] } : {},
        ),
      ]),
    );

// 2. VRRP configuration: keepalived.conf and the apiserver check on balancers, policy routing everywhere
const vrrp = layers.hosts ? new VrrpMesh("vrrp", { spec, secrets, hosts }) : undefined;

// 3. keepalived on the first control plane: the API VIP answers before the cluster needs it
const firstVip = first && vrrp?.start(first);

// 4. the cluster: `kubeadm init` on the first control plane (or its --dry-run rehearsal)
const cluster = kubernetes
  ? new ControlPlane(CONTROL_PLANE, { spec, hosts, after: firstVip ? [firstVip] : [], dryRun: rehearse, restore })
  : undefined;

// 5. control planes join one at a time; keepalived starts on each after its join
const members: Record<string, KubeadmJoin> = {};
for (const node of spec.controlPlanes) {
  const member = cluster && !rehearse ? (members[node.name] = cluster.join(node)) : undefined;
  if (node !== first) vrrp?.start(node, member ? [member] : []);
}
for (const node of spec.nodes.filter((n) => !n.controlPlane)) vrrp?.start(node); // balancers

const live = cluster && !rehearse ? cluster : undefined;

// 5b. etcd snapshots on schedule on every control plane, and on demand to this machine
const etcdBackup = live && config.etcdBackup.enabled ? new EtcdBackup("etcd-backup", { spec, hosts, members }) : undefined;

// 6. the network: cilium replaces kube-proxy
const network =
  live && layers.cilium && config.cilium.enabled
    ? new (cilium().Cilium)("cilium", {
        spec,
        adminKubeconfig: live.adminKubeconfig,
        tunnelVia: hosts[first.name].connection,
        after: live.members,
      })
    : undefined;

// 7. workers join once the network is up
if (live)
  new Workers(WORKERS, {
    spec,
    hosts,
    after: network ? [...live.members, network.release] : live.members,
    generation: live.init.generation,
  });

// 8. add-ons: cert-manager and its issuer, the Gateway API, the web UI (render/addons.ts)
const addonsComponent =
  network && layers.addons
    ? new (addons().Addons)("addons", {
        spec,
        provider: network.provider,
        tsigSecret: secrets.certManagerTsigSecret,
        after: [network.release],
      })
    : undefined;

const holders = expectedHolders(planVrrp(spec));

// Stack outputs. Only what this stack has: an undefined output would warn on every run.
export = {
  controlPlaneEndpoint: spec.controlPlaneEndpoint,
  controlPlaneVip: spec.controlPlaneVip.address,
  externalVips: Object.fromEntries(config.vrrp.external.vips.map((v) => [v, holders.get(v) ?? ""])),
  nodes: Object.fromEntries(
    spec.nodes.map((n) => [
      n.name,
      { roles: n.roles, wan0: n.wan0.address, wan1: n.wan1.address, hostKey: hosts[n.name]?.hostKeyFingerprint },
    ]),
  ),
  ...(live ? { kubeconfig: pulumi.secret(live.adminKubeconfig) } : {}),
  // when kubeadm's certificates expire: each control plane's earliest, and the admin kubeconfig's
  ...(live
    ? {
        certificates: {
          controlPlanes: pulumi.all(Object.fromEntries(Object.entries(members).map(([n, m]) => [n, m.certificateExpiry]))),
          adminKubeconfig: pulumi.unsecret(live.adminKubeconfig.apply(clientCertificateExpiry)),
          renewBeforeDays: config.certificates.renewBeforeDays,
        },
      }
    : {}),
  // the last on-demand etcd snapshot copied here (etcdBackup.snapshotNow)
  ...(etcdBackup?.snapshot
    ? {
        etcdSnapshot: {
          file: etcdBackup.snapshot.file,
          sha256: etcdBackup.snapshot.sha256,
          revision: etcdBackup.snapshot.revision,
          node: etcdBackup.snapshot.node,
        },
      }
    : {}),
  // a command printing a short-lived token for the web UI's admin account (no token in state)
  ...(addonsComponent?.uiTokenCommand ? { uiTokenCommand: addonsComponent.uiTokenCommand } : {}),
  // `kubeadm init --dry-run` output of a rehearsal (secret: it shows a join token)
  ...(cluster && rehearse ? { kubeadmDryRun: pulumi.secret(cluster.init.dryRunOutput) } : {}),
};
