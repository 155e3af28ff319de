// Composition only: config -> components -> stack outputs. The order is the seed's:
// hosts prepared -> keepalived on the first control plane -> kubeadm init -> other control
// planes join one at a time (keepalived starts on each after its join) -> cilium -> workers
// join -> addons.
import * as pulumi from "@pulumi/pulumi";
import { Addons } from "./components/addons";
import { Cilium } from "./components/cilium";
import { ControlPlane, Workers } from "./components/control-plane";
import { ClusterHost } from "./components/host";
import { LibvirtLab } from "./components/lab";
import { VrrpMesh } from "./components/vrrp";
import { loadConfig } from "./config";
import { expectedHolders, planVrrp } from "./plan/vrrp";

const { spec, secrets } = loadConfig();
const { config } = spec;

const lab = config.lab.enabled ? new LibvirtLab("lab", { spec, secrets }) : undefined;

// layers.hosts false: a stack that only builds the libvirt lab, never connecting to the nodes
// (every later layer needs hosts; spec/checks.ts enforces that).
const hosts: Record<string, ClusterHost> = !config.layers.hosts
  ? {}
  : Object.fromEntries(
      spec.nodes.map((node) => [node.name, new ClusterHost(
          node.name,
          { spec, node, secrets, ...(lab ? { pinnedHostKey: lab.hostKeys[node.name] } : {}) },
          lab ? { dependsOn: [lab.vms[node.name]] } : {},
        ),]),
    );
const connections = Object.fromEntries(Object.entries(hosts).map(([n, h]) => [n, h.connection]));
const prepared = Object.fromEntries(Object.entries(hosts).map(([n, h]) => [n, h.prepared]));

// Keepalived on a control plane other than the first starts only once it has joined.
let membersOf: (name: string) => pulumi.Resource[] = () => [];
let openGates!: () => void;
const membersKnown = new Promise<void>((resolve) => (openGates = resolve));
const first = spec.controlPlanes[0];
const vrrp = !config.layers.hosts ? undefined : new VrrpMesh("vrrp", {
  spec,
  secrets,
  connections,
  prepared,
  startAfter: (node) => (config.layers.kubernetes && node.controlPlane && node !== first ? membersKnown.then(() => membersOf(node.name)) : []),
});

let adminKubeconfig: pulumi.Output<string> | undefined;
let rehearsal: pulumi.Output<string> | undefined;
if (config.layers.kubernetes) {
  const rehearse = config.cluster.rehearse;
  const controlPlane = new ControlPlane("control-plane", {
    spec,
    connections,
    prepared,
    vipReady: first && vrrp?.keepalived[first.name] ? [vrrp.keepalived[first.name]] : [],
    dryRun: rehearse,
  });
  if (rehearse) rehearsal = controlPlane.init.dryRunOutput;
  membersOf = (name) => (controlPlane.members[name] ? [controlPlane.members[name]] : []);
  adminKubeconfig = controlPlane.adminKubeconfig;

  const networkReady: pulumi.Resource[] = Object.values(controlPlane.members);
  if (!rehearse && config.layers.cilium && config.cilium.enabled) {
    const cilium = new Cilium("cilium", { spec, adminKubeconfig, tunnelVia: connections[first.name], after: networkReady });
    networkReady.push(cilium.release);
    if (config.layers.addons)
      new Addons("addons", { spec, provider: cilium.provider, tsigSecret: secrets.certManagerTsigSecret, after: [cilium.release] });
  }
  if (!rehearse) new Workers("workers", { spec, connections, prepared, after: networkReady });
}
openGates();

const holders = expectedHolders(planVrrp(spec));

// Stack outputs. Only what this stack has: an undefined output would warn on every run.
export = {
  controlPlaneEndpoint: spec.controlPlaneEndpoint,
  controlPlaneVip: spec.controlPlaneVip.address,
  externalVips: Object.fromEntries(config.vrrp.external.vips.map((v) => [v, holders.get(v) ?? ""])),
  nodes: Object.fromEntries(
    spec.nodes.map((n) => [n.name, { roles: n.roles, wan0: n.wan0.address, wan1: n.wan1.address, hostKey: hosts[n.name]?.hostKeyFingerprint }]),
  ),
  ...(adminKubeconfig && !config.cluster.rehearse ? { kubeconfig: pulumi.secret(adminKubeconfig) } : {}),
  // `kubeadm init --dry-run` output of a rehearsal (secret: it shows a join token)
  ...(rehearsal ? { kubeadmDryRun: pulumi.secret(rehearsal) } : {}),
};
