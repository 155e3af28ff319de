// KubeadmJoin: one node's membership. Join credentials are minted on a live control plane right
// before the join (a token with a short TTL; for a control plane, a fresh certificate key with
// freshly uploaded certs) and deleted right after, so a node added weeks later joins the same
// way and nothing long-lived sits in state. Delete drains, deletes and resets the node
// (kubeadm reset also takes a control plane out of etcd).
import * as YAML from "yaml";
import type * as pulumi from "@pulumi/pulumi";
import { q } from "../os/configurer";
import type { Host } from "../ssh/types";
import { diffOf, hostOf, type Connection } from "./common";
import * as k from "./kubeadm-commands";

export interface KubeadmJoinInputs {
  connection: Connection;
  /** control planes to mint credentials on, tried in order until one answers */
  leaders: Connection[];
  nodeName: string;
  controlPlane: boolean;
  untaint: boolean;
  /** JoinConfiguration without credentials; they are filled in at join time */
  joinConfiguration: Record<string, unknown>;
  configPath: string;
}

export interface KubeadmJoinOutputs extends KubeadmJoinInputs {
  member: boolean;
}

async function liveLeader(leaders: Connection[]): Promise<Host> {
  const errors: string[] = [];
  for (const c of leaders) {
    try {
      const h = await hostOf(c);
      if ((await h.exec(k.isInitializedCommand, { allowFail: true })).code === 0) return h;
      errors.push(`${c.name}: API not ready`);
    } catch (e) {
      errors.push(`${c.name}: ${(e as Error).message}`);
    }
  }
  throw new Error(`no live control plane to mint join credentials on (${errors.join("; ")})`);
}

async function isMember(leader: Host, node: string): Promise<boolean> {
  return (await leader.exec(k.nodeExistsCommand(node), { allowFail: true })).code === 0;
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

async function join(inputs: KubeadmJoinInputs): Promise<void> {
  const leader = await liveLeader(inputs.leaders);
  if (await isMember(leader, inputs.nodeName)) return;
  const node = await hostOf(inputs.connection);
  // Half-joined (an earlier join died midway): start clean.
  if ((await node.exec(k.localStateCommand)).stdout.trim() === "present") await node.exec(k.resetCommand, { mutates: true });
  const token = (await leader.exec(k.tokenCreateCommand(inputs.nodeName), { mutates: true })).stdout.trim();
  try {
    const caCertHash = (await leader.exec(k.caCertHashCommand)).stdout.trim();
    let certificateKey: string | undefined;
    if (inputs.controlPlane) {
      certificateKey = (await leader.exec(k.certificateKeyCommand)).stdout.trim();
      await leader.exec(k.uploadCertsCommand(certificateKey), { mutates: true, redactedAs: "kubeadm init phase upload-certs --upload-certs --certificate-key <redacted>" });
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
  if (inputs.controlPlane && inputs.untaint) await leader.exec(k.untaintCommand(inputs.nodeName), { mutates: true });
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: KubeadmJoinInputs) {
    await join(inputs);
    const outs: KubeadmJoinOutputs = { ...inputs, member: true };
    return { id: `${inputs.nodeName}:kubeadm-join`, outs };
  },
  async diff(_id, olds: KubeadmJoinOutputs, news: KubeadmJoinInputs) {
    const d = diffOf(olds as never, news as never, ["untaint"], ["controlPlane", "nodeName"]);
    // a node that left the cluster (refresh saw member=false) joins again
    return olds.member ? d : { ...d, changes: true };
  },
  async read(id, props: KubeadmJoinOutputs) {
    const leader = await liveLeader(props.leaders);
    return { id, props: { ...props, member: await isMember(leader, props.nodeName) } };
  },
  async update(_id, _olds: KubeadmJoinOutputs, news: KubeadmJoinInputs) {
    await join(news);
    return { outs: { ...news, member: true } };
  },
  // kubeadm's order: drain, reset on the node (a control plane leaves etcd here), delete the
  // Node object. A stack whose control-plane count would become 2 is refused at preview.
  async delete(_id, props: KubeadmJoinOutputs) {
    const leader = await liveLeader(props.leaders.filter((l) => l.name !== props.nodeName));
    const member = await isMember(leader, props.nodeName);
    if (member) await leader.exec(k.drainCommand(props.nodeName), { mutates: true, timeoutMs: 10 * 60_000 });
    await (await hostOf(props.connection)).exec(k.resetCommand, { mutates: true, timeoutMs: 10 * 60_000 });
    if (member) await leader.exec(k.deleteNodeCommand(props.nodeName), { mutates: true });
  },
};
