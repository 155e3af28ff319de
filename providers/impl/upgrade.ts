// The rolling upgrade's steps on live hosts (the order and the checks: plan/upgrade.ts). The
// cluster's KubeadmInit runs `upgradeCluster` once; every node's KubeadmJoin then runs
// `upgradeMember`, in the graph's order: control planes one at a time, workers after them.
// Every step probes first, so an interrupted upgrade resumes where it stopped on the next `up`.
import type { InitSystem } from "../../model/schema";
import { healthProblems, nodesAt, parseNodeStatus, type KubePackages, type NodeStatus } from "../../plan/upgrade";
import { packageCommands, serviceCommands } from "../os/configurer";
import type { Host, SshTarget } from "../ssh/types";
import { hostOf } from "./common";
import * as k from "./kubeadm-commands";
import { etcdMembers, liveControlPlane, noLiveControlPlane, withVipHandedOver, type VipHandOver } from "./membership";
import { installedOf, missingPackages } from "./packages";

const UPGRADE_TIMEOUT_MS = 20 * 60_000;

const API_WAIT_MS = 2 * 60_000;

/**
 * A kubectl command line on a control plane, retried for a while: a control plane's apiserver
 * restarts when its static pods or its kubelet were upgraded (the new kubelet recreates them),
 * and until it is back it resets connections, or refuses requests (Forbidden) while its
 * authorizer catches up though /readyz already answers.
 */
async function onApi(cp: Host, command: string, mutates = false): Promise<string> {
  const deadline = Date.now() + API_WAIT_MS;
  for (;;) {
    const r = await cp.exec(command, { allowFail: true, mutates });
    if (r.code === 0) return r.stdout;
    if (Date.now() > deadline)
      throw new Error(`${cp.name}: its API did not take a request within ${API_WAIT_MS / 1000} s: ${r.stderr.trim() || `exit ${r.code}`}`);
    await new Promise((res) => setTimeout(res, 2000));
  }
}

export async function nodeStatus(cp: Host): Promise<NodeStatus[]> {
  return parseNodeStatus(await onApi(cp, k.nodeStatusCommand));
}

/** Why the cluster behind `controlPlanes` may not start an upgrade now (empty: it may). */
export async function upgradeBlockers(controlPlanes: SshTarget[]): Promise<string[]> {
  const cp = await liveControlPlane(controlPlanes);
  if (!cp) return [`no control plane answers (tried ${controlPlanes.map((c) => c.name).join(", ")})`];
  return healthProblems(await nodeStatus(cp), await etcdMembers(cp));
}

/** Installs the pinned packages the node does not have at their version yet. */
async function ensurePackages(h: Host, os: KubePackages["os"], specs: string[]): Promise<void> {
  const missing = missingPackages(specs, await installedOf(h, os, specs));
  if (missing.length) await h.exec(packageCommands(os).install(missing), { mutates: true, timeoutMs: 30 * 60_000 });
}

export interface ClusterUpgrade {
  first: SshTarget;
  controlPlanes: SshTarget[];
  version: string;
  packages: KubePackages;
  ignorePreflightErrors: string[];
  vip: string;
  vipHandOver: VipHandOver | null;
}

/**
 * `kubeadm upgrade apply` on the first control plane, with kubeadm at the new version first. The
 * cluster must be healthy (checked at preview too). Skipped when the cluster's stored
 * configuration already names the version (an earlier run applied it).
 */
export async function upgradeCluster(u: ClusterUpgrade): Promise<void> {
  const h = await hostOf(u.first);
  const stored = (await onApi(h, k.storedVersionCommand)).trim();
  if (stored === u.version) return;
  const blockers = await upgradeBlockers(u.controlPlanes);
  if (blockers.length) throw new Error(`not upgrading the cluster to ${u.version}: ${blockers.join("; ")}`);
  await ensurePackages(h, u.packages.os, u.packages.kubeadm);
  await withVipHandedOver(h, u.vip, u.vipHandOver, () =>
    h.exec(k.upgradeApplyCommand(u.version, u.ignorePreflightErrors), { mutates: true, timeoutMs: UPGRADE_TIMEOUT_MS }),
  );
}

export interface MemberUpgrade {
  node: SshTarget;
  nodeName: string;
  controlPlane: boolean;
  controlPlanes: SshTarget[];
  init: InitSystem;
  version: string;
  packages: KubePackages;
  ignorePreflightErrors: string[];
  vip: string;
  vipHandOver: VipHandOver | null;
}

const READY_TIMEOUT_MS = 5 * 60_000;

async function waitReadyAt(cp: Host, node: string, version: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const n = (await nodeStatus(cp)).find((s) => s.name === node);
    if (n?.ready && nodesAt([n], version).done.length) return;
    if (Date.now() > deadline)
      throw new Error(
        `${node}: not Ready at ${version} within ${READY_TIMEOUT_MS / 1000} s after its kubelet restarted (now: ${n ? `${n.kubeletVersion}, ${n.ready ? "Ready" : "NotReady"}` : "no Node object"}); it stays cordoned`,
      );
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/**
 * One node's share: kubeadm at the version, `kubeadm upgrade node` (a control plane's static pods
 * and etcd member move; the API VIP is handed over first), then — drained — kubelet and kubectl at
 * the version and the kubelet restarted; uncordoned once Ready at it. A node the upgrade drained
 * carries an annotation, so a resumed upgrade uncordons it and never a node an operator cordoned.
 */
export async function upgradeMember(u: MemberUpgrade): Promise<void> {
  const h = await hostOf(u.node);
  // kubectl runs on another control plane where one answers: this node's apiserver restarts on the way
  const others = u.controlPlanes.filter((c) => c.name !== u.nodeName);
  const cp =
    (await liveControlPlane(u.controlPlane ? [...others, u.node] : u.controlPlanes)) ??
    (() => {
      throw noLiveControlPlane(u.controlPlanes, `cannot upgrade ${u.nodeName}`);
    })();
  await ensurePackages(h, u.packages.os, u.packages.kubeadm);
  await withVipHandedOver(h, u.controlPlane ? u.vip : "", u.vipHandOver, () =>
    h.exec(k.upgradeNodeCommand(u.ignorePreflightErrors), { mutates: true, timeoutMs: UPGRADE_TIMEOUT_MS }),
  );
  const have = await installedOf(h, u.packages.os, u.packages.node);
  const status = (await nodeStatus(cp)).find((s) => s.name === u.nodeName);
  const moved = u.packages.node.every((s) => have.has(s)) && !!status && nodesAt([status], u.version).done.length > 0;
  if (!moved) {
    await onApi(cp, k.annotateDrainedCommand(u.nodeName, u.version), true);
    await cp.exec(k.drainCommand(u.nodeName), { mutates: true, timeoutMs: 10 * 60_000 });
    await ensurePackages(h, u.packages.os, u.packages.node);
    await h.exec(serviceCommands(u.init).restart("kubelet"), { mutates: true });
    await waitReadyAt(cp, u.nodeName, u.version);
  }
  if ((await onApi(cp, k.drainedAnnotationCommand(u.nodeName))).trim() !== "") await onApi(cp, k.uncordonCommand(u.nodeName), true);
}

/** At most `n` at once (workers' upgrades: cluster.upgradeWorkersAtOnce). One per provider process, as the workers share it. */
let running = 0;
const waiting: (() => void)[] = [];
export async function inBatch<T>(n: number, step: () => Promise<T>): Promise<T> {
  while (running >= Math.max(1, n)) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await step();
  } finally {
    running--;
    waiting.shift()?.();
  }
}
