// Helm values for the cilium chart (SPEC §5): the seed's cilium 1.8 flags in today's keys. Pure.
import YAML from "yaml";
import type { ClusterSpec } from "../model/model";
import { gatewayOnCilium } from "./addons";
import { HASH_HEADER, deepMerge, sortKeysDeep } from "./common";

/** The chart values derived from the seed, before the stack's `cilium.values` overrides. */
export function seedCiliumValues(spec: ClusterSpec): Record<string, unknown> {
  const c = spec.config.cluster;
  // the seed's CILIUM_IF: the interface the cluster runs on (wan1)
  const dev = spec.controlPlanes[0]?.wan1.interface ?? spec.nodes[0].wan1.interface;
  return {
    // 1.8 global.kubeProxyReplacement=strict -> true (strict/partial/probe were removed in 1.14)
    kubeProxyReplacement: true,
    // 1.8 global.k8sServiceHost / k8sServicePort: the control-plane VIP (no kube-proxy to reach the service IP)
    k8sServiceHost: spec.controlPlaneVip.ip,
    k8sServicePort: c.apiServerPort,
    // 1.8 global.tunnel=disabled -> routingMode native
    routingMode: "native",
    // 1.8 global.nativeRoutingCIDR -> ipv4NativeRoutingCIDR
    ipv4NativeRoutingCIDR: c.podSubnet,
    // 1.8 global.autoDirectNodeRoutes=true (same key)
    autoDirectNodeRoutes: true,
    bpf: {
      // 1.8 global.bpfMasquerade=false -> bpf.masquerade (iptables masquerading, as in the seed)
      masquerade: false,
    },
    // 1.8 global.masquerade=true -> enableIPv4Masquerade
    enableIPv4Masquerade: true,
    // 1.8 global.devices=wan1 -> devices (a list today)
    devices: [dev],
    loadBalancer: {
      // 1.8 global.nodePort.mode=dsr -> loadBalancer.mode
      mode: "dsr",
    },
    nodePort: {
      // 1.8 global.nodePort.enabled=true (same key)
      enabled: true,
      // 1.8 global.nodePort.directRoutingDevice=wan1 (same key); 1.7's nodePort.device
      directRoutingDevice: dev,
    },
    externalIPs: {
      // 1.8 global.externalIPs.enabled=true (same key)
      enabled: true,
    },
    socketLB: {
      // 1.8 global.hostServices.enabled=true -> socketLB.enabled (socket-level load balancing)
      enabled: true,
    },
    // not in the seed: a value changed in stack config reaches the agents and the operator on
    // `up` (the chart restarts them on a changed config map); left false, they keep the old
    // configuration until something else restarts them
    rollOutCiliumPods: true,
    operator: { rollOutPods: true },
    ipam: {
      // cluster-pool IPAM from the pod subnet, a /24 per node as the seed describes (10.244.XX.*)
      mode: "cluster-pool",
      operator: { clusterPoolIPv4PodCIDRList: [c.podSubnet], clusterPoolIPv4MaskSize: 24 },
    },
  };
}

/**
 * Not in the seed: cilium as the Gateway API implementation (addons.gateway.implementation
 * cilium). It needs kubeProxyReplacement, which the seed values already turn on.
 */
export function ciliumGatewayValues(spec: ClusterSpec): Record<string, unknown> {
  return gatewayOnCilium(spec.config) ? { gatewayAPI: { enabled: true } } : {};
}

/** The values for the Helm release: seed mapping and add-on needs, deep-merged with `cilium.values` (overrides win). */
export function ciliumValues(spec: ClusterSpec): Record<string, unknown> {
  return sortKeysDeep(deepMerge(deepMerge(seedCiliumValues(spec), ciliumGatewayValues(spec)), spec.config.cilium.values));
}

/** The same values as a values.yaml text (for goldens and `helm template -f`). */
export function ciliumValuesYaml(spec: ClusterSpec): string {
  return `${HASH_HEADER}\n` + YAML.stringify(ciliumValues(spec), { lineWidth: 0, version: "1.1" });
}
