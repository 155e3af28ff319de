// Cluster membership in one place, as named steps: finding a live control plane, the etcd walk
// (members, health, removals), creating the cluster, a node's join and its leave. The
// KubeadmInit and KubeadmJoin providers only decide which of these steps run.
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import { earliestExpiry } from "../../plan/certificates";
import { planMembership, type EtcdMember } from "../../plan/etcd";
import { CA_HASH, joinConfigYaml } from "../../render/kubeadm";
import type { InitSystem } from "../../model/schema";
import { shq } from "../ssh/shell";
import type { Host, SshTarget } from "../ssh/types";
import { hostOf } from "./common";
import * as k from "./kubeadm-commands";
import type { KubeadmJoinInputs } from "./kubeadm-join";
import { buildKubeconfig, parseAdminConf } from "./kubeconfig";

// ---- finding the cluster ----------------------------------------------------------------------

/** The first control plane (in order) whose API answers with its admin.conf. */
export async function liveControlPlane(controlPlanes: SshTarget[]): Promise<Host | undefined> {
  for (const c of controlPlanes) {
    try {
      const h = await hostOf(c);
      if ((await h.exec(k.isInitializedCommand, { allowFail: true })).code === 0) return h;
    } catch {
      /* unreachable: try the next */
    }
  }
  return undefined;
}

export function noLiveControlPlane(tried: SshTarget[], why: string): Error {
  return new Error(
    `${why}: no control plane answers (tried ${tried.map((l) => l.name).join(", ") || "none"}; each needs /etc/kubernetes/admin.conf and a ready API)`,
  );
}

export async function isMember(controlPlane: Host, node: string): Promise<boolean> {
  return (await controlPlane.exec(k.nodeExistsCommand(node), { allowFail: true })).code === 0;
}

/** The node, or undefined when SSH cannot reach it (a host key mismatch or bad credentials still fail). */
async function reach(t: SshTarget): Promise<Host | undefined> {
  try {
    return await hostOf(t);
  } catch (e) {
    if ((e as Error).name === "SshConnectionError") return undefined;
    throw e;
  }
}

const hasLocalState = async (h: Host) => (await h.exec(k.localStateCommand)).stdout.trim() === "present";
const reset = (h: Host, init: InitSystem) => h.exec(k.resetCommand(init), { mutates: true, timeoutMs: 10 * 60_000 });

// ---- etcd ---------------------------------------------------------------------------------------

interface ListedMember {
  ID?: string;
  name?: string;
  peerURLs?: string[];
  clientURLs?: string[];
}

/** Parses the gateway's member list. A member added but never started has no name or client URL yet. */
export function parseMemberList(json: string): Omit<EtcdMember, "healthy">[] {
  let doc: { members?: ListedMember[] };
  try {
    doc = JSON.parse(json) as { members?: ListedMember[] };
  } catch {
    throw new Error(`etcd's member list is not JSON: ${json.slice(0, 200)}`);
  }
  return (doc.members ?? []).map((m) => ({
    id: String(m.ID ?? ""),
    name: m.name || `(unstarted ${m.peerURLs?.[0] ?? m.ID})`,
    clientURL: m.clientURLs?.[0] ?? "",
  }));
}

export function parseHealth(out: string): Map<string, boolean> {
  return new Map(
    out
      .split("\n")
      .map((l) => l.trim().split(" "))
      .filter((p) => p.length === 2)
      .map(([u, s]) => [u, s === "ok"]),
  );
}

/** Members with their health, as seen from `host` (a control plane with a local etcd). */
export async function etcdMembers(host: Host): Promise<EtcdMember[]> {
  const listed = parseMemberList((await host.exec(k.memberListCommand)).stdout);
  const urls = listed.map((m) => m.clientURL).filter(Boolean);
  const health = urls.length ? parseHealth((await host.exec(k.etcdHealthCommand(urls))).stdout) : new Map<string, boolean>();
  return listed.map((m) => ({ ...m, healthy: !!m.clientURL && health.get(m.clientURL) === true }));
}

async function removeMember(host: Host, member: EtcdMember): Promise<void> {
  await host.exec(k.memberRemoveCommand(member.id), { mutates: true });
}

/**
 * The wanted control-plane set checked against the live etcd before any node is touched
 * (planMembership throws when the change would lose quorum); dead members that are not wanted
 * any more leave first.
 */
async function checkControlPlaneChange(controlPlane: Host, wanted: string[]): Promise<void> {
  const plan = planMembership(await etcdMembers(controlPlane), wanted);
  for (const m of plan.removeFirst) await removeMember(controlPlane, m);
}

/**
 * Before a control plane joins: its own leftover etcd member (a join that died after adding it)
 * goes, and every other member must be healthy — a join with a dead member raises the quorum
 * while the margin is already spent.
 */
async function prepareEtcdForJoin(controlPlane: Host, node: string, advertiseAddress: string | undefined): Promise<void> {
  const ip = advertiseAddress;
  const members = await etcdMembers(controlPlane);
  for (const m of members.filter((m) => m.name === node || (ip && m.name === `(unstarted https://${ip}:2380)`)))
    await removeMember(controlPlane, m);
  const sick = members.filter((m) => !m.healthy && m.name !== node && !(ip && m.name.includes(`https://${ip}:`)));
  if (sick.length)
    throw new Error(
      `refusing to join control plane ${node}: etcd member(s) ${sick.map((m) => m.name).join(", ")} are unhealthy; ` +
        "repair them, or remove them from `nodes` in the same update so they leave etcd first",
    );
}

// ---- bootstrap tokens ---------------------------------------------------------------------------

/**
 * This run: the engine runs every resource of one `pulumi up` in one provider process, so a
 * per-process id. Tokens minted in this run carry it (kubeadm-commands' tokenDescription).
 */
export const RUN_ID = randomBytes(6).toString("hex");

/**
 * Deletes the bootstrap tokens the program minted that no longer serve: init's, and those an
 * interrupted earlier run left (a join that died between mint and delete). Only tokens with the
 * program's mark; this run's own (a join in progress on another node) stay. Returns the ids.
 */
export async function sweepTokens(controlPlane: Host, run = RUN_ID): Promise<string[]> {
  const list = async () => k.staleTokenIds(k.parseTokenList((await controlPlane.exec(k.listTokensCommand)).stdout), run);
  const stale = await list();
  if (!stale.length) return stale;
  const r = await controlPlane.exec(k.tokensDeleteCommand(stale), { mutates: true, allowFail: true });
  // joins on other nodes sweep at the same time: a token one of them deleted first is fine
  if (r.code !== 0) {
    const left = (await list()).filter((id) => stale.includes(id));
    if (left.length)
      throw new Error(`${controlPlane.name}: cannot delete stale bootstrap tokens ${left.join(", ")}: ${r.stderr.trim().slice(0, 500)}`);
  }
  return stale;
}

// ---- the cluster --------------------------------------------------------------------------------

/** A snapshot the first control plane is initialised from when there is no cluster (files on this machine). */
export interface RestoreSource {
  snapshot: string;
  pki: string;
  sha256: string;
  pkiSha256: string;
  /** the first control plane's etcd peer address (its wan1 address, as kubeadm's etcd manifest has it) */
  advertiseAddress: string;
}

export interface ClusterArgs {
  /** the first control plane: where `kubeadm init` runs if there is no cluster yet */
  first: SshTarget;
  /** every control plane, in config order */
  controlPlanes: SshTarget[];
  configPath: string;
  init: InitSystem;
  untaint: boolean;
  restore?: RestoreSource | null;
}

/** A local file whose content must still be what preview checked. */
function readChecked(file: string, sha256: string): Buffer {
  const data = fs.readFileSync(file);
  const sum = createHash("sha256").update(data).digest("hex");
  if (sum !== sha256) throw new Error(`${file} changed since preview (sha256 ${sum}, expected ${sha256}): not restoring from it`);
  return data;
}

/** The snapshot and the CAs uploaded, etcd's data restored from them on the node (before `kubeadm init`). */
async function restoreEtcd(host: Host, a: ClusterArgs, r: RestoreSource): Promise<void> {
  await host.writeFile(k.RESTORE_PKI, readChecked(r.pki, r.pkiSha256), 0o600);
  await host.writeFile(k.RESTORE_SNAPSHOT, readChecked(r.snapshot, r.sha256), 0o600);
  await host.exec(k.restoreEtcdCommand(a.configPath, a.first.name, r.advertiseAddress), { mutates: true, timeoutMs: 10 * 60_000 });
}

/** The first node, if it answers; else any control plane that does. */
export function clusterControlPlane(a: Pick<ClusterArgs, "first" | "controlPlanes">): Promise<Host | undefined> {
  return liveControlPlane([a.first, ...a.controlPlanes.filter((c) => c.name !== a.first.name)]);
}

/**
 * No control plane answers. `kubeadm init` is right only when every one of them was reached and
 * none has any cluster state: a cluster that is merely unreachable must not get a twin.
 */
async function assertNoCluster(a: ClusterArgs): Promise<void> {
  for (const c of a.controlPlanes) {
    const h = await hostOf(c); // throws when unreachable: that is not "no cluster"
    if (c.name !== a.first.name && (await hasLocalState(h)))
      throw new Error(
        `no control plane's API answers, but ${c.name} has cluster state (/etc/kubernetes): refusing to \`kubeadm init\` a ` +
          `second cluster on ${a.first.name}; bring the existing control planes back or reset them`,
      );
  }
}

/**
 * `kubeadm init` on the first control plane (from a snapshot when restoring); the bootstrap token
 * it leaves goes at once.
 */
async function initCluster(a: ClusterArgs): Promise<Host> {
  const host = await hostOf(a.first);
  if (await hasLocalState(host)) await reset(host, a.init);
  if (a.restore) await restoreEtcd(host, a, a.restore);
  await host.exec(k.startKubeletCommand(a.init), { mutates: true });
  await host.exec(k.initCommand(a.configPath, !!a.restore), { mutates: true, timeoutMs: 20 * 60_000 });
  await host.exec(k.copyAdminConfCommand, { mutates: true });
  await sweepTokens(host);
  await host.exec(k.deleteUploadedCertsCommand, { mutates: true });
  if (a.untaint) await host.exec(k.untaintCommand(a.first.name), { mutates: true });
  return host;
}

/**
 * The live cluster, its control-plane change checked against etcd and the program's stale
 * bootstrap tokens swept; or a new one.
 */
export async function ensureCluster(a: ClusterArgs): Promise<Host> {
  return (await ensureClusterMade(a)).host;
}

/** ensureCluster, and whether it made the cluster (`kubeadm init`, from a snapshot or not) just now. */
export async function ensureClusterMade(a: ClusterArgs): Promise<{ host: Host; made: boolean }> {
  const live = await clusterControlPlane(a);
  if (live) {
    await checkControlPlaneChange(
      live,
      a.controlPlanes.map((c) => c.name),
    );
    await sweepTokens(live);
    return { host: live, made: false };
  }
  await assertNoCluster(a);
  return { host: await initCluster(a), made: true };
}

/** A changed configuration is uploaded from the first control plane; the members follow (applySettings). */
export async function reconfigure(first: SshTarget, configPath: string): Promise<void> {
  await (await hostOf(first)).exec(k.reconfigureCommand(configPath), { mutates: true });
}

/**
 * The admin kubeconfig rebuilt from the CA, client certificate and key parsed out of the control
 * plane's admin.conf (anything else in that file is refused, see kubeconfig.ts), pointed at
 * `server` (the control-plane endpoint; state written before it was an input has none: then the
 * file's own server, which the parser accepts only as https://<host>:<port>).
 */
export async function adminKubeconfigOf(controlPlane: Host, server?: string): Promise<{ adminKubeconfig: string; caCertHash: string }> {
  const text = ((await controlPlane.readFile(k.ADMIN_CONF)) ?? Buffer.alloc(0)).toString("utf8");
  const creds = parseAdminConf(text, controlPlane.name, k.ADMIN_CONF);
  const adminKubeconfig = buildKubeconfig(creds, server || creds.server);
  const caCertHash = (await controlPlane.exec(k.caCertHashCommand)).stdout.trim();
  if (!CA_HASH.test(caCertHash)) throw new Error(`${controlPlane.name}: the CA certificate hash is not sha256:<64 hex digits>`);
  return { adminKubeconfig, caCertHash };
}

export async function untaint(controlPlane: Host, node: string): Promise<void> {
  await controlPlane.exec(k.untaintCommand(node), { mutates: true });
}

// ---- one node -----------------------------------------------------------------------------------

/** A node's membership as KubeadmJoin declares it, the node as `node`. */
export type NodeMembership = Omit<
  KubeadmJoinInputs,
  | "connection"
  | "nodeName"
  | "generation"
  | "renewCertificatesBeforeDays"
  | "vip"
  | "vipHandOver"
  | "kubernetesVersion"
  | "upgradePackages"
  | "upgradeWorkersAtOnce"
> & { node: SshTarget };

/**
 * Credentials minted on a live control plane right before the join (a token with a short TTL;
 * for a control plane a fresh certificate key with freshly uploaded certs), written into the
 * join file, used, and deleted right after — whatever happens in between.
 */
/** Fresh control-plane certificates uploaded under `certificateKey`, which travels on stdin only. */
export async function uploadCerts(controlPlane: Host, certificateKey: string): Promise<void> {
  if (!/^[0-9a-f]{64}$/.test(certificateKey))
    throw new Error(`${controlPlane.name}: kubeadm printed a certificate key that is not 64 hex digits`);
  await controlPlane.exec(k.uploadCertsCommand, {
    stdin: `${certificateKey}\n`,
    mutates: true,
    redactedAs: "kubeadm init phase upload-certs --upload-certs --config <InitConfiguration with the certificate key>",
  });
}

async function joinWithFreshCredentials(controlPlane: Host, node: Host, m: NodeMembership): Promise<void> {
  const self = m.node.name;
  const token = (await controlPlane.exec(k.tokenCreateCommand(self, RUN_ID), { mutates: true })).stdout.trim();
  try {
    const caCertHash = (await controlPlane.exec(k.caCertHashCommand)).stdout.trim();
    let certificateKey: string | undefined;
    if (m.controlPlane) {
      certificateKey = (await controlPlane.exec(k.certificateKeyCommand)).stdout.trim();
      await uploadCerts(controlPlane, certificateKey);
    }
    await node.writeFile(m.configPath, joinConfigYaml(m.joinConfiguration, { token, caCertHash, certificateKey }), 0o600);
    try {
      await node.exec(k.joinCommand(m.configPath), { mutates: true, timeoutMs: 20 * 60_000 });
    } finally {
      await node.exec(`rm -f ${shq(m.configPath)}`, { mutates: true });
    }
  } finally {
    await controlPlane.exec(k.tokenDeleteCommand(token), { mutates: true, allowFail: true, redactedAs: "kubeadm token delete <token id>" });
    if (m.controlPlane) await controlPlane.exec(k.deleteUploadedCertsCommand, { mutates: true, allowFail: true });
  }
}

/** The node is a member afterwards: joined, or found joined already (then nothing runs on it). */
export async function join(m: NodeMembership): Promise<void> {
  const self = m.node.name;
  const others = m.controlPlanes.filter((c) => c.name !== self);
  const cp = await liveControlPlane(others);
  if (!cp) {
    // the bootstrap node right after `kubeadm init`: a member while no other control plane is
    if (m.controlPlane && (await liveControlPlane(m.controlPlanes.filter((c) => c.name === self)))) return;
    throw noLiveControlPlane(others, `cannot join ${self}`);
  }
  if (await isMember(cp, self)) {
    const reached = await reach(m.node);
    // a Node object with a kubelet behind it; one SSH cannot reach is left to its own resource
    if (!reached || (await hasLocalState(reached))) {
      if (m.controlPlane && m.untaint) await untaint(cp, self);
      return;
    }
    // A Node object with nothing behind it (a restored snapshot's, or a node reset by hand):
    // kubeadm refuses to join over a Ready one, so it goes, and the node joins afresh.
    await cp.exec(k.deleteNodeCommand(self), { mutates: true });
  }
  const node = await hostOf(m.node);
  // Half-joined (an earlier join died midway): start clean.
  if (await hasLocalState(node)) await reset(node, m.init);
  // running, as its package leaves it (a node removed earlier had it stopped)
  await node.exec(k.startKubeletCommand(m.init), { mutates: true });
  if (m.controlPlane) await prepareEtcdForJoin(cp, self, m.joinConfiguration.controlPlane?.localAPIEndpoint.advertiseAddress);
  // what an interrupted run left goes before this join mints its own
  await sweepTokens(cp);
  await joinWithFreshCredentials(cp, node, m);
  if (m.controlPlane) await node.exec(k.copyAdminConfCommand, { mutates: true });
  if (m.controlPlane && m.untaint) await untaint(cp, self);
}

/**
 * kubeadm's order: drain, reset on the node (a control plane leaves etcd there), delete the
 * Node object. Whether etcd can afford the removal was decided before any node was touched
 * (ensureCluster checks the whole change of the control-plane set); here the last control plane
 * of a cluster being destroyed is simply reset. A node SSH cannot reach is taken out of etcd and
 * the API without being reset.
 */
export async function leave(m: NodeMembership): Promise<void> {
  const self = m.node.name;
  const others = m.controlPlanes.filter((c) => c.name !== self);
  const cp = await liveControlPlane(others);
  const node = await reach(m.node);
  if (!cp) {
    if (!node) throw noLiveControlPlane(others, `cannot remove ${self}, which SSH cannot reach either`);
    if (m.controlPlane && (await liveControlPlane(m.controlPlanes.filter((c) => c.name === self)))) {
      const members = await etcdMembers(node);
      if (members.length > 1)
        throw new Error(
          `refusing to remove ${self}: etcd still has members ${members.map((x) => x.name).join(", ")}, but no other control ` +
            `plane answers (tried ${others.map((c) => c.name).join(", ") || "none"}); bring one back first`,
        );
    }
    // the cluster's last control plane (or a node of a cluster already gone): nothing to tell
    await reset(node, m.init);
    return;
  }
  const member = await isMember(cp, self);
  if (node) {
    // the API VIP moves before this apiserver stops, not after its health check notices
    if (m.handOver) await node.exec(m.handOver, { mutates: true });
    if (member) await cp.exec(k.drainCommand(self), { mutates: true, timeoutMs: 10 * 60_000 });
    await reset(node, m.init);
  }
  // An unreachable node cannot leave etcd itself, and `kubeadm reset` only warns when it fails to.
  if (m.controlPlane) for (const x of (await etcdMembers(cp)).filter((x) => x.name === self)) await removeMember(cp, x);
  if (member) await cp.exec(k.deleteNodeCommand(self), { mutates: true });
}

/**
 * A joined member takes the cluster's changed settings (uploaded by the cluster's reconfigure):
 * a control plane rewrites its static pod manifests (kubeadm restarts only those that changed and
 * waits for them), then the kubelet gets the cluster's KubeletConfiguration and restarts.
 */
export async function applySettings(m: NodeMembership, what: { kubelet: boolean; controlPlane: boolean }): Promise<void> {
  const node = await hostOf(m.node);
  if (m.controlPlane && what.controlPlane) await node.exec(k.controlPlaneSettingsCommand, { mutates: true, timeoutMs: 10 * 60_000 });
  if (what.kubelet) await node.exec(k.kubeletSettingsCommand(m.init), { mutates: true, timeoutMs: 5 * 60_000 });
}

// ---- certificates -------------------------------------------------------------------------------

/** How a control plane's keepalived is stopped and started again: its VIP moves off while its apiserver restarts. */
export interface VipHandOver {
  stop: string;
  start: string;
}

/** This control plane's earliest kubeadm certificate expiry (ISO). */
export async function certificateExpiry(h: Host): Promise<string> {
  return earliestExpiry((await h.exec(k.certExpirationCommand)).stdout);
}

/** A new admin.conf (client certificate only: nothing restarts); root's kubeconfig follows. */
export async function renewAdminConf(h: Host): Promise<void> {
  await h.exec(k.renewAdminConfCommand, { mutates: true });
  await h.exec(k.copyAdminConfCommand, { mutates: true });
}

const RESTART_TIMEOUT_MS = 5 * 60_000;

/** After its containers were stopped: a new apiserver container, the API ready and the local etcd healthy. */
async function waitRestarted(h: Host, apiserverBefore: string, why: string): Promise<void> {
  const deadline = Date.now() + RESTART_TIMEOUT_MS;
  for (;;) {
    const id = (await h.exec(k.staticPodContainerCommand("kube-apiserver"), { allowFail: true })).stdout.trim();
    if (id && id !== apiserverBefore) {
      const ready = (await h.exec(k.isInitializedCommand, { allowFail: true })).code === 0;
      const etcd = parseHealth((await h.exec(k.etcdHealthCommand([k.LOCAL_ETCD]), { allowFail: true })).stdout).get(k.LOCAL_ETCD);
      if (ready && etcd) return;
    }
    if (Date.now() > deadline)
      throw new Error(`${h.name}: the control plane did not come back within ${RESTART_TIMEOUT_MS / 1000} s after ${why}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * Restarts static pods so they load new certificates. The VIP's holder hands it over first (its
 * keepalived stops, so the VIP moves at once rather than after the health check notices) and
 * takes part again once its API is back. The control planes' memberships are a chain in the
 * graph, so they restart one at a time.
 */
async function restartLoading(h: Host, pods: readonly string[], why: string, vip: string, handOver: VipHandOver | null): Promise<void> {
  await withVipHandedOver(h, vip, handOver, async () => {
    const before = (await h.exec(k.staticPodContainerCommand("kube-apiserver"))).stdout.trim();
    await h.exec(k.restartPodsCommand(pods), { mutates: true });
    await waitRestarted(h, before, why);
  });
}

/** Runs `step` with this control plane's keepalived stopped when it holds the API VIP (so the VIP moves before its apiserver restarts), started again after. */
export async function withVipHandedOver<T>(h: Host, vip: string, handOver: VipHandOver | null, step: () => Promise<T>): Promise<T> {
  const holds = !!handOver && !!vip && (await h.exec(k.holdsAddressCommand(vip), { allowFail: true })).code === 0;
  if (holds) await h.exec(handOver!.stop, { mutates: true });
  try {
    return await step();
  } finally {
    if (holds) await h.exec(handOver!.start, { mutates: true });
  }
}

/**
 * `kubeadm certs renew all` on this control plane, its static pods restarted to load them. etcd
 * must be healthy first: the restart takes this member down for a moment. Returns the new
 * earliest expiry.
 */
export async function renewCertificates(node: SshTarget, vip: string, handOver: VipHandOver | null): Promise<string> {
  const h = await hostOf(node);
  const sick = (await etcdMembers(h)).filter((m) => !m.healthy);
  if (sick.length)
    throw new Error(
      `not renewing ${node.name}'s certificates: etcd members ${sick.map((m) => m.name).join(", ")} are unhealthy, and a restart would take one more down`,
    );
  await h.exec(k.renewCertsCommand, { mutates: true, timeoutMs: RESTART_TIMEOUT_MS });
  await restartLoading(h, k.CONTROL_PLANE_PODS, "its certificates were renewed", vip, handOver);
  await h.exec(k.copyAdminConfCommand, { mutates: true });
  return certificateExpiry(h);
}

/**
 * A new serving certificate with the cluster's current certSANs on this control plane (the
 * cluster resource uploaded them), loaded by restarting its apiserver (etcd stays up).
 */
export async function reissueServingCert(node: SshTarget, nodeName: string, vip: string, handOver: VipHandOver | null): Promise<void> {
  const h = await hostOf(node);
  await h.exec(k.reissueServingCertCommand(nodeName), { mutates: true, timeoutMs: RESTART_TIMEOUT_MS });
  await restartLoading(h, ["kube-apiserver"], "its serving certificate was reissued", vip, handOver);
}
