// ControlPlane: the cluster (`kubeadm init` on the first control plane once its VIP is up),
// then each control plane's membership through `join`, one at a time (seed §4). The first
// node's membership is a KubeadmJoin like the others' (init made it a member), so removing it
// later is a plain removal and the cluster moves on to the next node. Workers join in Workers,
// after the network.
import * as pulumi from "@pulumi/pulumi";
import type { RestoreFiles } from "../config";
import type { ClusterSpec, NodeSpec } from "../model/model";
import { serviceCommands } from "../providers/os/configurer";
import { KubeadmInit, KubeadmJoin, RemoteFile } from "../providers/resources";
import { memberSettings } from "../plan/day2";
import { clusterVersion, kubePackagesOf } from "../plan/upgrade";
import * as kubeadm from "../render/kubeadm";
import type { PreparedNode } from "./host";

export interface ControlPlaneArgs {
  spec: ClusterSpec;
  hosts: Record<string, PreparedNode>;
  /** what must be up before init: the first control plane's keepalived (the API VIP) */
  after: pulumi.Resource[];
  /** rehearse with `kubeadm init --dry-run` instead of creating the cluster */
  dryRun?: boolean;
  /** with no cluster, initialise it from this snapshot (etcdBackup.restoreFrom) */
  restore?: RestoreFiles;
}

/** Stops keepalived on a node that runs it, so its VIPs move before it leaves the cluster. */
function handOverCommand(spec: ClusterSpec, node: NodeSpec): string {
  if (!spec.config.layers.keepalived || !(node.controlPlane || node.balancer)) return "";
  const svc = serviceCommands(node.init);
  return `if ${svc.isRunning("keepalived")}; then ${svc.stop("keepalived")}; fi`;
}

/** How a control plane's keepalived lets the API VIP go during a certificate renewal, and takes part again. */
function vipHandOver(spec: ClusterSpec, node: NodeSpec): { stop: string; start: string } | null {
  if (!spec.config.layers.keepalived || !node.controlPlane) return null;
  const svc = serviceCommands(node.init);
  return { stop: svc.stop("keepalived"), start: svc.start("keepalived") };
}

/** The names index.ts gives the two components a node's membership lives under. */
export const CONTROL_PLANE = "control-plane";
export const WORKERS = "workers";

/**
 * The URN the node's membership would have in its other role. As an alias it makes a role change
 * an update of one resource, which KubeadmJoin's check refuses at preview — not a join in the new
 * role and a leave (reset) of the old one, run in that order on the same node.
 */
function otherRole(node: NodeSpec): pulumi.Alias {
  const parent = node.controlPlane
    ? pulumi.createUrn(WORKERS, "k8sbm:index:Workers")
    : pulumi.createUrn(CONTROL_PLANE, "k8sbm:index:ControlPlane");
  return { parent };
}

/** A node's KubeadmJoin inputs. */
export function joinArgs(spec: ClusterSpec, node: NodeSpec, hosts: Record<string, PreparedNode>, generation: pulumi.Input<string>) {
  return {
    generation,
    handOver: handOverCommand(spec, node),
    init: node.init,
    connection: hosts[node.name].connection,
    controlPlanes: pulumi.output(spec.controlPlanes.map((c) => hosts[c.name].connection)),
    nodeName: node.name,
    controlPlane: node.controlPlane,
    untaint: spec.config.cluster.untaintControlPlane,
    joinConfiguration: kubeadm.joinConfiguration(spec, node),
    configPath: kubeadm.KUBEADM_JOIN_PATH,
    settings: memberSettings(kubeadm.kubeadmInitConfig(spec, spec.controlPlanes[0]), node.controlPlane, spec.config.cluster.certSANs),
    renewCertificatesBeforeDays: spec.config.certificates.renewBeforeDays,
    vip: spec.controlPlaneVip.ip,
    vipHandOver: vipHandOver(spec, node),
    kubernetesVersion: clusterVersion(kubeadm.kubeadmInitConfig(spec, spec.controlPlanes[0])),
    upgradePackages: kubePackagesOf(spec.config, node.os),
    upgradeWorkersAtOnce: spec.config.cluster.upgradeWorkersAtOnce,
  };
}

export class ControlPlane extends pulumi.ComponentResource {
  readonly adminKubeconfig: pulumi.Output<string>;
  readonly init: KubeadmInit;
  /** init, then every control plane's membership so far: each join waits for the one before */
  readonly members: pulumi.Resource[];

  constructor(
    name: string,
    private readonly args: ControlPlaneArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("k8sbm:index:ControlPlane", name, {}, opts);
    const { spec, hosts } = args;
    const first = spec.controlPlanes[0];
    const config = kubeadm.kubeadmInitConfig(spec, first);
    const configFile = new RemoteFile(
      `${first.name}-kubeadm-init-config`,
      { connection: hosts[first.name].connection, path: kubeadm.KUBEADM_INIT_PATH, content: config, mode: "0600" },
      { parent: this, dependsOn: hosts[first.name].prepared },
    );
    // Named for the cluster, not a node: it outlives its first node. (Stacks made before had it
    // named after the first node.)
    this.init = new KubeadmInit(
      "kubeadm-init",
      {
        connection: hosts[first.name].connection,
        nodeName: first.name,
        init: first.init,
        controlPlanes: pulumi.output(spec.controlPlanes.map((c) => hosts[c.name].connection)),
        configPath: kubeadm.KUBEADM_INIT_PATH,
        config,
        untaint: spec.config.cluster.untaintControlPlane,
        dryRun: args.dryRun ?? false,
        server: `https://${spec.controlPlaneEndpoint}`,
        restore: args.restore ? { ...args.restore, advertiseAddress: first.wan1.ip } : null,
        renewCertificatesBeforeDays: spec.config.certificates.renewBeforeDays,
        upgradePackages: kubePackagesOf(spec.config, first.os),
        vip: spec.controlPlaneVip.ip,
        vipHandOver: vipHandOver(spec, first),
      },
      { parent: this, dependsOn: [configFile, ...args.after], aliases: [{ name: `${first.name}-kubeadm-init` }] },
    );
    this.adminKubeconfig = pulumi.secret(this.init.adminKubeconfig);
    this.members = [this.init];
    this.registerOutputs({ adminKubeconfig: this.adminKubeconfig });
  }

  /** `node` joins as a control plane, after the previous member (etcd grows by one each step). */
  join(node: NodeSpec): KubeadmJoin {
    const { spec, hosts } = this.args;
    const member = new KubeadmJoin(`${node.name}-kubeadm-join`, joinArgs(spec, node, hosts, this.init.generation), {
      parent: this,
      dependsOn: [this.members[this.members.length - 1], ...hosts[node.name].prepared],
      aliases: [otherRole(node)],
    });
    this.members.push(member);
    return member;
  }
}

export interface WorkersArgs {
  spec: ClusterSpec;
  hosts: Record<string, PreparedNode>;
  /** the network must be up before workers join (seed §5) */
  after: pulumi.Resource[];
  /** the cluster's generation (ControlPlane's init): a cluster made anew has them join again */
  generation: pulumi.Input<string>;
}

export class Workers extends pulumi.ComponentResource {
  readonly members: Record<string, KubeadmJoin> = {};
  constructor(name: string, args: WorkersArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k8sbm:index:Workers", name, {}, opts);
    for (const node of args.spec.workers)
      this.members[node.name] = new KubeadmJoin(`${node.name}-kubeadm-join`, joinArgs(args.spec, node, args.hosts, args.generation), {
        parent: this,
        dependsOn: [...args.after, ...args.hosts[node.name].prepared],
        aliases: [otherRole(node)],
      });
    this.registerOutputs({});
  }
}
