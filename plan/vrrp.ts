// Who holds which VIP at what priority: the seed's rotation, generalised. Pure.
import type { ClusterSpec, NodeSpec } from "../model/model";

export interface VrrpInstance {
  /** keepalived instance name: "control_plane" or "wan_<index>" as in the seed */
  name: string;
  kind: "control-plane" | "external";
  interface: string;
  routerId: number;
  priority: number;
  /** address as keepalived's virtual_ipaddress takes it: "10.118.12.100/24" or "10.118.11.20" */
  vip: string;
  /** unicast peers: the other nodes running this instance (their wan1 addresses) */
  peers: string[];
}

export interface NodeVrrpPlan {
  node: string;
  /** this node's own wan1 address (unicast source) */
  sourceIp: string;
  instances: VrrpInstance[];
}

/**
 * External VIP j and balancer b (index among balancers, bc of them) meet at rank
 * r = (j - b) mod bc; b backs j when r < ipsPerNode, with priority top - r. For the seed
 * (3 IPs, 3 balancers, 3 per node) this is exactly its `ii = (i + bi) % bc`, `priority = 100 - i`:
 * every IP has one top holder, and the fallbacks follow in rotation.
 */
export function externalRanks(
  vipCount: number,
  balancerCount: number,
  ipsPerNode: number,
): { vip: number; balancer: number; rank: number }[] {
  const out: { vip: number; balancer: number; rank: number }[] = [];
  for (let b = 0; b < balancerCount; b++)
    for (let j = 0; j < vipCount; j++) {
      const rank = (((j - b) % balancerCount) + balancerCount) % balancerCount;
      if (rank < ipsPerNode) out.push({ vip: j, balancer: b, rank });
    }
  return out;
}

export function planVrrp(spec: ClusterSpec): NodeVrrpPlan[] {
  const { vrrp } = spec.config;
  const plans = new Map<string, NodeVrrpPlan>();
  const planFor = (n: NodeSpec): NodeVrrpPlan => {
    let p = plans.get(n.name);
    if (!p) plans.set(n.name, (p = { node: n.name, sourceIp: n.wan1.ip, instances: [] }));
    return p;
  };

  spec.controlPlanes.forEach((n, i) =>
    planFor(n).instances.push({
      name: "control_plane",
      kind: "control-plane",
      interface: n.wan1.interface,
      routerId: vrrp.controlPlane.routerId,
      // The seed gave every other control plane 99; equal priorities make the failover target
      // a race, so each next control plane gets successionStep less: the order of succession is
      // the config's, with a skew-time gap wide enough to survive a loaded host (schema).
      priority: i === 0 ? vrrp.controlPlane.firstPriority : vrrp.controlPlane.otherPriority - (i - 1) * vrrp.controlPlane.successionStep,
      vip: spec.controlPlaneVip.address,
      peers: spec.controlPlanes.filter((o) => o !== n).map((o) => o.wan1.ip),
    }),
  );

  const vips = vrrp.external.vips;
  const bc = spec.balancers.length;
  const perNode = vrrp.external.ipsPerNode ?? bc;
  const ranks = externalRanks(vips.length, bc, perNode);
  // Seed order on each node: by rank (its loop variable i), so k8s-2 lists wan_1, wan_2, wan_0.
  ranks.sort((a, b) => a.balancer - b.balancer || a.rank - b.rank || a.vip - b.vip);
  for (const { vip, balancer, rank } of ranks) {
    const n = spec.balancers[balancer];
    const holders = ranks.filter((r) => r.vip === vip && r.balancer !== balancer).map((r) => spec.balancers[r.balancer].wan1.ip);
    planFor(n).instances.push({
      name: `wan_${vip}`,
      kind: "external",
      interface: n.wan1.interface,
      routerId: vrrp.external.routerIdBase + vip,
      priority: vrrp.external.topPriority - rank,
      vip: vips[vip],
      peers: holders,
    });
  }
  // Node order as in config.
  return spec.nodes.filter((n) => plans.has(n.name)).map((n) => plans.get(n.name)!);
}

/** The expected holder of every VIP when all nodes are healthy (highest priority wins). */
export function expectedHolders(plans: NodeVrrpPlan[]): Map<string, string> {
  const best = new Map<string, { node: string; priority: number }>();
  for (const p of plans)
    for (const i of p.instances) {
      const cur = best.get(i.vip);
      if (!cur || i.priority > cur.priority) best.set(i.vip, { node: p.node, priority: i.priority });
    }
  return new Map([...best].map(([vip, b]) => [vip, b.node]));
}
