// A rolling Kubernetes upgrade, the kubeadm way (kubeadm's "Upgrading kubeadm clusters"): the
// cluster is checked healthy, `kubeadm upgrade apply` runs on the first control plane, then each
// node in turn — control planes one at a time, then workers in batches — takes kubeadm at the new
// version, runs `kubeadm upgrade node`, is drained, gets kubelet and kubectl at the new version,
// restarts its kubelet and is uncordoned once Ready at that version. What is decided here is pure.
import type { OsFamily, StackConfig } from "../model/schema";
import { VERSIONED_PACKAGES, kubernetesRepository, pinnedPackages, usesAptRepository } from "../render/apt";
import { kinds } from "./day2";

/** The Kubernetes packages of one node, as the program pins them to the cluster's version. */
export interface KubePackages {
  os: OsFamily;
  /** installed before `kubeadm upgrade` runs: kubeadm itself */
  kubeadm: string[];
  /** installed while the node is drained: the kubelet (and kubectl) */
  node: string[];
}

/** A node's packages as the upgrade moves them; null where the program does not pin them (no upgrade path). */
export function kubePackagesOf(config: Pick<StackConfig, "packages" | "cluster">, os: OsFamily): KubePackages | null {
  if (!usesAptRepository(os) || !kubernetesRepository(config)) return null;
  const v = config.cluster.kubernetesVersion;
  return { os, kubeadm: pinnedPackages(["kubeadm"], v), node: pinnedPackages(["kubelet", "kubectl"], v) };
}

/** The package names whose version only the cluster's upgrade moves on a member. */
export const UPGRADED_BY_CLUSTER = VERSIONED_PACKAGES;

type Doc = Record<string, unknown>;

/** ClusterConfiguration.kubernetesVersion of a rendered kubeadm config ("v1.36.3"), "" if none. */
export function clusterVersion(config: string): string {
  const v = kinds(config).ClusterConfiguration?.kubernetesVersion;
  return typeof v === "string" ? v : "";
}

/** nodeRegistration.ignorePreflightErrors of a rendered config's Init- or JoinConfiguration: kubeadm upgrade takes the same list. */
export function ignoredPreflightErrors(nodeRegistration: unknown): string[] {
  const list = (nodeRegistration as Doc | undefined)?.ignorePreflightErrors;
  return Array.isArray(list) ? list.map(String) : [];
}

export function initPreflightIgnores(config: string): string[] {
  return ignoredPreflightErrors(kinds(config).InitConfiguration?.nodeRegistration);
}

export interface NodeStatus {
  name: string;
  kubeletVersion: string;
  ready: boolean;
  unschedulable: boolean;
}

/** Lines of "<name> <kubeletVersion> <Ready status> <unschedulable>" (kubeadm-commands' nodeStatusCommand). */
export function parseNodeStatus(out: string): NodeStatus[] {
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 2 && f[0] !== "")
    .map(([name, kubeletVersion, ready, unschedulable]) => ({
      name,
      kubeletVersion,
      ready: ready === "True",
      unschedulable: unschedulable === "true",
    }));
}

/**
 * Why the cluster may not start an upgrade now: a node not Ready (its drain and restart would
 * not be watched by a working kubelet, and kubeadm's own check would stop halfway), an etcd member
 * unhealthy (a control plane's upgrade restarts its member: quorum could go). Empty: go.
 */
export function healthProblems(nodes: NodeStatus[], etcd: { name: string; healthy: boolean }[]): string[] {
  return [
    ...nodes.filter((n) => !n.ready).map((n) => `node ${n.name} is not Ready`),
    ...etcd.filter((m) => !m.healthy).map((m) => `etcd member ${m.name || "(unnamed)"} is unhealthy`),
  ];
}

/** Nodes at `version` (their kubelet reports it), and those not yet. */
export function nodesAt(nodes: NodeStatus[], version: string): { done: string[]; left: string[] } {
  const v = version.startsWith("v") ? version : `v${version}`;
  return {
    done: nodes.filter((n) => n.kubeletVersion === v).map((n) => n.name),
    left: nodes.filter((n) => n.kubeletVersion !== v).map((n) => n.name),
  };
}

/** An annotation on a node the upgrade drained: a resumed upgrade uncordons it, never one an operator cordoned. */
export const DRAINED_ANNOTATION = "k8s-baremetal/drained-for-upgrade";
