// ControlPlane: the cluster (`kubeadm init` on the first control plane once its VIP is up),
// then every control plane's membership, one at a time (seed §4). The first node's membership
// is a KubeadmJoin like the others' (init made it a member), so removing it later is a plain
// removal and the cluster moves on to the next node. Workers join in Workers, after cilium.
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import type { ConnectionArgs } from "../providers/connection";
import { serviceCommands } from "../providers/os/configurer";
import { KubeadmInit, KubeadmJoin, RemoteFile } from "../providers/resources";
import * as kubeadm from "../render/kubeadm";
import type { ClusterSpec, NodeSpec } from "../spec/model";

export interface ControlPlaneArgs {
  spec: ClusterSpec;
  connections: Record<string, pulumi.Input<ConnectionArgs>>;
  prepared: Record<string, pulumi.Resource[]>;
  /** the first control plane's keepalived: the VIP must be up before init */
  vipReady: pulumi.Resource[];
  /** rehearse with `kubeadm init --dry-run` instead of creating the cluster */
  dryRun?: boolean;
}

// Shape-valid stand-ins: the join provider replaces them with credentials minted at join time.
const PLACEHOLDER = { token: "abcdef.0123456789abcdef", caCertHash: `sha256:${"0".repeat(64)}`, certificateKey: "0".repeat(64) };

export function joinConfigurationFor(spec: ClusterSpec, node: NodeSpec): Record<string, unknown> {
  const doc = YAML.parse(kubeadm.kubeadmJoinConfig(spec, node, PLACEHOLDER)) as Record<string, unknown>;
  return doc;
}

/** Stops keepalived on a node that runs it, so its VIPs move before it leaves the cluster. */
function handOverCommand(spec: ClusterSpec, node: NodeSpec): string {
  if (!spec.config.layers.keepalived || !(node.controlPlane || node.balancer)) return "";
  const svc = serviceCommands(node.init);
  return `if ${svc.isRunning("keepalived")}; then ${svc.stop("keepalived")}; fi`;
}

export function joinArgs(spec: ClusterSpec, node: NodeSpec, connections: Record<string, pulumi.Input<ConnectionArgs>>) {
  return {
    handOver: handOverCommand(spec, node),
    init: node.init,
    connection: connections[node.name],
    leaders: spec.controlPlanes.map((c) => connections[c.name]),
    nodeName: node.name,
    controlPlane: node.controlPlane,
    untaint: spec.config.cluster.untaintControlPlane,
    joinConfiguration: joinConfigurationFor(spec, node),
    configPath: kubeadm.KUBEADM_JOIN_PATH,
  };
}

export class ControlPlane extends pulumi.ComponentResource {
  readonly adminKubeconfig: pulumi.Output<string>;
  readonly init: KubeadmInit;
  /** per control-plane node: the resource after which it is a member */
  readonly members: Record<string, pulumi.Resource> = {};

  constructor(name: string, args: ControlPlaneArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k8sbm:index:ControlPlane", name, {}, opts);
    const { spec, connections } = args;
    const first = spec.controlPlanes[0];
    const config = kubeadm.kubeadmInitConfig(spec, first);
    const configFile = new RemoteFile(
      `${first.name}-kubeadm-init-config`,
      { connection: connections[first.name], path: kubeadm.KUBEADM_INIT_PATH, content: config, mode: "0600" },
      { parent: this, dependsOn: args.prepared[first.name] },
    );
    // Named for the cluster, not a node: it outlives its first node. (Stacks made before had it
    // named after the first node.)
    this.init = new KubeadmInit(
      "kubeadm-init",
      {
        connection: connections[first.name],
        nodeName: first.name,
        init: first.init,
        leaders: spec.controlPlanes.map((c) => connections[c.name]),
        configPath: kubeadm.KUBEADM_INIT_PATH,
        config,
        untaint: spec.config.cluster.untaintControlPlane,
        dryRun: args.dryRun ?? false,
      },
      { parent: this, dependsOn: [configFile, ...args.vipReady], aliases: [{ name: `${first.name}-kubeadm-init` }] },
    );
    this.adminKubeconfig = pulumi.secret(this.init.adminKubeconfig);
    this.members[first.name] = this.init;

    // One at a time: each join waits for the previous member (etcd grows by one each step).
    let previous: pulumi.Resource = this.init;
    if (!args.dryRun)
      for (const node of spec.controlPlanes) {
        previous = new KubeadmJoin(`${node.name}-kubeadm-join`, joinArgs(spec, node, connections), {
          parent: this,
          dependsOn: [previous, ...args.prepared[node.name]],
        });
        this.members[node.name] = previous;
      }
    this.registerOutputs({ adminKubeconfig: this.adminKubeconfig });
  }
}

export interface WorkersArgs {
  spec: ClusterSpec;
  connections: Record<string, pulumi.Input<ConnectionArgs>>;
  prepared: Record<string, pulumi.Resource[]>;
  /** the network must be up before workers join (seed §5) */
  after: pulumi.Resource[];
}

export class Workers extends pulumi.ComponentResource {
  readonly members: Record<string, pulumi.Resource> = {};
  constructor(name: string, args: WorkersArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k8sbm:index:Workers", name, {}, opts);
    for (const node of args.spec.workers)
      this.members[node.name] = new KubeadmJoin(`${node.name}-kubeadm-join`, joinArgs(args.spec, node, args.connections), {
        parent: this,
        dependsOn: [...args.after, ...args.prepared[node.name]],
      });
    this.registerOutputs({});
  }
}
