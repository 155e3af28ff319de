// The validated, resolved cluster model every plan and component works from.
import { parseAddressWithPrefix, formatCidr, networkOf, hostPart } from "./ip";
import type { InitSystem, NodeConfig, OsFamily, Role, StackConfig } from "./schema";

export interface NicSpec {
  interface: string;
  /** "10.118.12.20" */
  ip: string;
  prefix: number;
  /** "10.118.12.20/24" */
  address: string;
  /** "10.118.12.0/24" */
  subnet: string;
  mac?: string;
}

export interface SshEndpoint {
  host: string;
  port: number;
  user: string;
  /** pinned OpenSSH host key line; absent = recorded on first connect, enforced after */
  hostKey?: string;
  /** the bastion this node is reached through (ssh.jumpHost or the node's own) */
  jump?: JumpEndpoint;
}

export interface JumpEndpoint {
  /** "jump host <host>[:<port>]", for messages */
  name: string;
  host: string;
  port: number;
  user: string;
  hostKey: string;
}

export interface NodeSpec {
  name: string;
  roles: Role[];
  controlPlane: boolean;
  balancer: boolean;
  ssh: SshEndpoint;
  wan0: NicSpec;
  wan1: NicSpec;
  os: OsFamily;
  init: InitSystem;
}

export interface ClusterSpec {
  config: StackConfig;
  nodes: NodeSpec[];
  /** control-plane nodes in config order; the first bootstraps the cluster */
  controlPlanes: NodeSpec[];
  balancers: NodeSpec[];
  /** nodes that are not control planes (they join after cilium) */
  workers: NodeSpec[];
  /** "10.118.12.100:6443" */
  controlPlaneEndpoint: string;
  controlPlaneVip: NicSpec;
}

export const DEFAULT_INIT: Record<OsFamily, InitSystem> = { gentoo: "openrc", debian: "systemd", ubuntu: "systemd" };

export function nic(iface: string, addressWithPrefix: string, mac?: string): NicSpec {
  const p = parseAddressWithPrefix(addressWithPrefix)!;
  return {
    interface: iface,
    ip: hostPart(addressWithPrefix),
    prefix: p.prefix,
    address: addressWithPrefix,
    subnet: formatCidr(networkOf(p.address, p.prefix)),
    ...(mac ? { mac } : {}),
  };
}

function jumpOf(n: NodeConfig, c: StackConfig): { jump?: JumpEndpoint } {
  const j = n.ssh.jumpHost === false ? undefined : (n.ssh.jumpHost ?? c.ssh.jumpHost);
  if (!j) return {};
  const name = `jump host ${j.host}${j.port === 22 ? "" : `:${j.port}`}`;
  return { jump: { name, host: j.host, port: j.port, user: j.user ?? c.ssh.user, hostKey: j.hostKey! } };
}

function resolveNode(n: NodeConfig, c: StackConfig): NodeSpec {
  const os = n.os ?? c.os.family;
  return {
    name: n.name,
    roles: n.roles,
    controlPlane: n.roles.includes("control-plane"),
    balancer: n.roles.includes("balancer"),
    ssh: {
      host: n.ssh.host ?? hostPart(n.wan0.address),
      port: n.ssh.port ?? c.ssh.port,
      user: n.ssh.user ?? c.ssh.user,
      ...(n.ssh.hostKey ? { hostKey: n.ssh.hostKey } : {}),
      ...jumpOf(n, c),
    },
    wan0: nic(n.wan0.interface, n.wan0.address, n.wan0.mac),
    wan1: nic(n.wan1.interface, n.wan1.address, n.wan1.mac),
    os,
    init: n.init ?? c.os.init ?? DEFAULT_INIT[os],
  };
}

export function resolveCluster(c: StackConfig): ClusterSpec {
  const nodes = c.nodes.map((n) => resolveNode(n, c));
  const controlPlanes = nodes.filter((n) => n.controlPlane);
  const vipIface = controlPlanes[0]?.wan1.interface ?? "wan1";
  const controlPlaneVip = nic(vipIface, c.vrrp.controlPlane.vip);
  return {
    config: c,
    nodes,
    controlPlanes,
    balancers: nodes.filter((n) => n.balancer),
    workers: nodes.filter((n) => !n.controlPlane),
    controlPlaneEndpoint: `${controlPlaneVip.ip}:${c.cluster.apiServerPort}`,
    controlPlaneVip,
  };
}
