// KubeadmJoin: one node's membership, the first control plane's included (init made it a
// member; after bootstrap it is not special). Join credentials are minted on a live control
// plane right before the join (a token with a short TTL; for a control plane, a fresh
// certificate key with freshly uploaded certs) and deleted right after, so a node added weeks
// later joins the same way and nothing long-lived sits in state. Delete drains the node, resets
// it (a control plane leaves etcd) and deletes it from the API; a node that cannot be reached
// is taken out of etcd and the API without being reset.
import * as YAML from "yaml";
import type * as pulumi from "@pulumi/pulumi";
import { q } from "../os/configurer";
import type { Host } from "../ssh/types";
import { diffOf, hostOf, type Connection } from "./common";
import { etcdMembers, removeMember } from "./etcd-members";
import * as k from "./kubeadm-commands";
import type { InitSystem } from "../../spec/schema";

export interface KubeadmJoinInputs {
  connection: Connection;
  /** the control planes (this node too, if it is one): credentials are minted on one that answers */
  leaders: Connection[];
  nodeName: string;
  controlPlane: boolean;
  untaint: boolean;
  /** JoinConfiguration without credentials; they are filled in at join time */
  joinConfiguration: Record<string, unknown>;
  configPath: string;
  /** run on the node before it leaves: keepalived stops, so the VIPs it holds move first */
  handOver?: string;
  /** the node's init system: how its kubelet is stopped and started around a reset */
  init?: InitSystem;
}

export interface KubeadmJoinOutputs extends KubeadmJoinInputs {
  member: boolean;
}

/** The first control plane (of `leaders`, in order) whose API answers with its admin.conf. */
export async function liveLeader(leaders: Connection[]): Promise<Host | undefined> {
  for (const c of leaders) {
    try {
      const h = await hostOf(c);
      if ((await h.exec(k.isInitializedCommand, { allowFail: true })).code === 0) return h;
    } catch {
      /* unreachable: try the next */
    }
  }
  return undefined;
}

function noLeader(leaders: Connection[], why: string): Error {
  return new Error(`${why}: no control plane answers (tried ${leaders.map((l) => l.name).join(", ") || "none"}; each needs /etc/kubernetes/admin.conf and a ready API)`);
}

async function isMember(leader: Host, node: string): Promise<boolean> {
  return (await leader.exec(k.nodeExistsCommand(node), { allowFail: true })).code === 0;
}

/** The node, or undefined when SSH cannot reach it (a host key mismatch or bad credentials still fail). */
async function reach(c: Connection): Promise<Host | undefined> {
  try {
    return await hostOf(c);
  } catch (e) {
    if ((e as Error).name === "SshConnectionError") return undefined;
    throw e;
  }
}

/** Fill the minted credentials into the JoinConfiguration. Exported for tests. */
export function withCredentials(
  cfg: Record<string, unknown>,
  creds: { token: string; caCertHash: string; certificateKey?: string },
): Record<string, unknown> {
  const c = structuredClone(cfg) as { discovery: { bootstrapToken: Record<string, unknown> }; controlPlane?: Record<string, unknown> };
  c.discovery.bootstrapToken.token = creds.token;
  c.discovery.bootstrapToken.caCertHashes = [creds.caCertHash];
  if (c.controlPlane && creds.certificateKey) c.controlPlane.certificateKey = creds.certificateKey;
  return c as Record<string, unknown>;
}

function advertiseAddress(inputs: KubeadmJoinInputs): string | undefined {
  const cp = inputs.joinConfiguration.controlPlane as { localAPIEndpoint?: { advertiseAddress?: string } } | undefined;
  return cp?.localAPIEndpoint?.advertiseAddress;
}

/**
 * Before a control plane joins: its own leftover etcd member (a join that died after adding it)
 * goes, and every other member must be healthy — a join with a dead member raises the quorum
 * while the margin is already spent.
 */
async function prepareEtcdForJoin(leader: Host, inputs: KubeadmJoinInputs): Promise<void> {
  const ip = advertiseAddress(inputs);
  const members = await etcdMembers(leader);
  for (const m of members.filter((m) => m.name === inputs.nodeName || (ip && m.name === `(unstarted https://${ip}:2380)`)))
    await removeMember(leader, m);
  const sick = members.filter((m) => !m.healthy && m.name !== inputs.nodeName && !(ip && m.name.includes(`https://${ip}:`)));
  if (sick.length)
    throw new Error(
      `refusing to join control plane ${inputs.nodeName}: etcd member(s) ${sick.map((m) => m.name).join(", ")} are unhealthy; ` +
        "repair them, or remove them from `nodes` in the same update so they leave etcd first",
    );
}

async function join(inputs: KubeadmJoinInputs): Promise<void> {
  const self = inputs.nodeName;
  const others = inputs.leaders.filter((l) => l.name !== self);
  const leader = await liveLeader(others);
  if (!leader) {
    // the bootstrap node right after `kubeadm init`: a member while no other control plane is
    if (inputs.controlPlane && (await liveLeader(inputs.leaders.filter((l) => l.name === self)))) return;
    throw noLeader(others, `cannot join ${self}`);
  }
  if (await isMember(leader, self)) {
    if (inputs.controlPlane && inputs.untaint) await leader.exec(k.untaintCommand(self), { mutates: true });
    return;
  }
  const node = await hostOf(inputs.connection);
  // Half-joined (an earlier join died midway): start clean.
  const init = inputs.init ?? "systemd";
  if ((await node.exec(k.localStateCommand)).stdout.trim() === "present") await node.exec(k.resetCommand(init), { mutates: true, timeoutMs: 10 * 60_000 });
  // running, as its package leaves it (a node removed earlier had it stopped)
  await node.exec(k.startKubeletCommand(init), { mutates: true });
  if (inputs.controlPlane) await prepareEtcdForJoin(leader, inputs);
  const token = (await leader.exec(k.tokenCreateCommand(self), { mutates: true })).stdout.trim();
  try {
    const caCertHash = (await leader.exec(k.caCertHashCommand)).stdout.trim();
    let certificateKey: string | undefined;
    if (inputs.controlPlane) {
      certificateKey = (await leader.exec(k.certificateKeyCommand)).stdout.trim();
      await leader.exec(k.uploadCertsCommand(certificateKey), { mutates: true, redactedAs: "kubeadm init phase upload-certs --upload-certs --config <InitConfiguration with the certificate key>" });
    }
    const cfg = YAML.stringify(withCredentials(inputs.joinConfiguration, { token, caCertHash, certificateKey }));
    await node.writeFile(inputs.configPath, cfg, 0o600);
    try {
      await node.exec(k.joinCommand(inputs.configPath), { mutates: true, timeoutMs: 20 * 60_000 });
    } finally {
      await node.exec(`rm -f ${q(inputs.configPath)}`, { mutates: true });
    }
  } finally {
    await leader.exec(k.tokenDeleteCommand(token), { mutates: true, allowFail: true, redactedAs: "kubeadm token delete <token id>" });
    if (inputs.controlPlane) await leader.exec(k.deleteUploadedCertsCommand, { mutates: true, allowFail: true });
  }
  if (inputs.controlPlane) await node.exec(k.copyAdminConfCommand, { mutates: true });
  if (inputs.controlPlane && inputs.untaint) await leader.exec(k.untaintCommand(self), { mutates: true });
}

/**
 * kubeadm's order: drain, reset on the node (a control plane leaves etcd there), delete the
 * Node object. Whether etcd can afford the removal was decided before any node was touched
 * (KubeadmInit checks the whole change of the control-plane set); here the last control plane
 * of a cluster being destroyed is simply reset.
 */
async function leave(props: KubeadmJoinOutputs): Promise<void> {
  const self = props.nodeName;
  const others = props.leaders.filter((l) => l.name !== self);
  const leader = await liveLeader(others);
  const node = await reach(props.connection);
  if (!leader) {
    if (!node) throw noLeader(others, `cannot remove ${self}, which SSH cannot reach either`);
    if (props.controlPlane && (await liveLeader(props.leaders.filter((l) => l.name === self)))) {
      const members = await etcdMembers(node);
      if (members.length > 1)
        throw new Error(
          `refusing to remove ${self}: etcd still has members ${members.map((m) => m.name).join(", ")}, but no other control ` +
            `plane answers (tried ${others.map((l) => l.name).join(", ") || "none"}); bring one back first`,
        );
    }
    // the cluster's last control plane (or a node of a cluster already gone): nothing to tell
    await node.exec(k.resetCommand(props.init ?? "systemd"), { mutates: true, timeoutMs: 10 * 60_000 });
    return;
  }
  const member = await isMember(leader, self);
  if (node) {
    // the API VIP moves before this apiserver stops, not after its health check notices
    if (props.handOver) await node.exec(props.handOver, { mutates: true });
    if (member) await leader.exec(k.drainCommand(self), { mutates: true, timeoutMs: 10 * 60_000 });
    await node.exec(k.resetCommand(props.init ?? "systemd"), { mutates: true, timeoutMs: 10 * 60_000 });
  }
  // An unreachable node cannot leave etcd itself, and `kubeadm reset` only warns when it fails to.
  if (props.controlPlane) for (const m of (await etcdMembers(leader)).filter((m) => m.name === self)) await removeMember(leader, m);
  if (member) await leader.exec(k.deleteNodeCommand(self), { mutates: true });
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: KubeadmJoinInputs) {
    await join(inputs);
    const outs: KubeadmJoinOutputs = { ...inputs, member: true };
    return { id: `${inputs.nodeName}:kubeadm-join`, outs };
  },
  async diff(_id, olds: KubeadmJoinOutputs, news: KubeadmJoinInputs) {
    const d = diffOf(olds as never, news as never, ["untaint", "leaders", "handOver", "init"], ["controlPlane", "nodeName"]);
    // a node that left the cluster (refresh saw member=false) joins again
    return olds.member ? d : { ...d, changes: true };
  },
  async read(id, props: KubeadmJoinOutputs) {
    const leader = await liveLeader(props.leaders);
    if (!leader) throw noLeader(props.leaders, `cannot read ${props.nodeName}'s membership`);
    return { id, props: { ...props, member: await isMember(leader, props.nodeName) } };
  },
  async update(_id, _olds: KubeadmJoinOutputs, news: KubeadmJoinInputs) {
    await join(news);
    return { outs: { ...news, member: true } };
  },
  async delete(_id, props: KubeadmJoinOutputs) {
    await leave(props);
  },
};
