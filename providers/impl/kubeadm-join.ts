// KubeadmJoin: one node's membership, the first control plane's included (init made it a
// member; after bootstrap it is not special). The steps — join with credentials minted right
// before and deleted right after, leave by drain, reset and delete — are in ./membership.
import type { JoinConfiguration } from "../../render/kubeadm";
import type { InitSystem } from "../../model/schema";
import type { SshTarget } from "../ssh/types";
import { renewalDue } from "../../plan/certificates";
import { joinRefusals, noUpgradePath, settingsChanges } from "../../plan/day2";
import { ignoredPreflightErrors, type KubePackages } from "../../plan/upgrade";
import { inBatch, upgradeMember } from "./upgrade";
import { UNKNOWN, diffOf, hostOf, type Provider } from "./common";
import * as membership from "./membership";

export interface KubeadmJoinInputs {
  connection: SshTarget;
  /** the control planes (this node too, if it is one): credentials are minted on one that answers */
  controlPlanes: SshTarget[];
  nodeName: string;
  controlPlane: boolean;
  untaint: boolean;
  /** JoinConfiguration without credentials; they are filled in at join time */
  joinConfiguration: JoinConfiguration;
  configPath: string;
  /** run on the node before it leaves: keepalived stops, so the VIPs it holds move first ("" for none) */
  handOver: string;
  /** the node's init system: how its kubelet is stopped and started around a reset */
  init: InitSystem;
  /** the cluster's settings this member runs with (plan/day2.ts memberSettings): a change rolls out to it */
  settings: string;
  /** the cluster's generation (KubeadmInit): a cluster made anew, e.g. restored from a snapshot, has every node join again */
  generation: string;
  /** a control plane renews its kubeadm certificates when the earliest expires within this many days */
  renewCertificatesBeforeDays: number;
  /** the API VIP, and how this control plane's keepalived lets it go during a renewal (null: none runs here) */
  vip: string;
  vipHandOver: membership.VipHandOver | null;
  /** the cluster's Kubernetes version ("v1.36.3"): a change is this node's share of the rolling upgrade */
  kubernetesVersion: string;
  /** the node's Kubernetes packages pinned to that version (null: not pinned by the program, which then does not upgrade) */
  upgradePackages: KubePackages | null;
  /** workers upgrading at once (cluster.upgradeWorkersAtOnce) */
  upgradeWorkersAtOnce: number;
}

export interface KubeadmJoinOutputs extends KubeadmJoinInputs {
  member: boolean;
  /** a control plane's earliest kubeadm certificate expiry (ISO) as last read; "" on a worker */
  certificateExpiry: string;
}

/**
 * State written before the names settled: `leaders` for the control planes, some fields optional
 * (`settings` "" in state written before members took the cluster's settings).
 */
type Recorded = Omit<
  KubeadmJoinOutputs,
  | "controlPlanes"
  | "init"
  | "handOver"
  | "settings"
  | "generation"
  | "renewCertificatesBeforeDays"
  | "vip"
  | "vipHandOver"
  | "certificateExpiry"
  | "kubernetesVersion"
  | "upgradePackages"
  | "upgradeWorkersAtOnce"
> & {
  kubernetesVersion?: string;
  upgradePackages?: KubePackages | null;
  upgradeWorkersAtOnce?: number;
  controlPlanes?: SshTarget[];
  leaders?: SshTarget[];
  init?: InitSystem;
  handOver?: string;
  settings?: string;
  generation?: string;
  renewCertificatesBeforeDays?: number;
  vip?: string;
  vipHandOver?: membership.VipHandOver | null;
  certificateExpiry?: string;
};
export const upgradeState = (s: Recorded): KubeadmJoinOutputs => {
  const { leaders, ...rest } = s;
  return {
    ...rest,
    controlPlanes: s.controlPlanes ?? leaders ?? [],
    init: s.init ?? "systemd",
    handOver: s.handOver ?? "",
    settings: s.settings ?? "",
    generation: s.generation ?? "",
    renewCertificatesBeforeDays: s.renewCertificatesBeforeDays ?? 30,
    vip: s.vip ?? "",
    vipHandOver: s.vipHandOver ?? null,
    certificateExpiry: s.certificateExpiry ?? "",
    kubernetesVersion: s.kubernetesVersion ?? "",
    upgradePackages: s.upgradePackages ?? null,
    upgradeWorkersAtOnce: s.upgradeWorkersAtOnce ?? 1,
  };
};

/** This node's share of a rolling upgrade, when the recorded version differs (state without one records it only). */
async function upgrade(before: KubeadmJoinOutputs, news: KubeadmJoinInputs): Promise<void> {
  if (!before.member || before.kubernetesVersion === "" || before.kubernetesVersion === news.kubernetesVersion) return;
  if (!news.upgradePackages) throw new Error(`cluster.kubernetesVersion: ${noUpgradePath(news.nodeName)}`);
  const step = () =>
    upgradeMember({
      node: news.connection,
      nodeName: news.nodeName,
      controlPlane: news.controlPlane,
      controlPlanes: news.controlPlanes,
      init: news.init,
      version: news.kubernetesVersion,
      packages: news.upgradePackages!,
      ignorePreflightErrors: ignoredPreflightErrors(news.joinConfiguration.nodeRegistration),
      vip: news.vip,
      vipHandOver: news.vipHandOver,
    });
  // control planes are a chain in the graph (one at a time); workers share a batch
  await (news.controlPlane ? step() : inBatch(news.upgradeWorkersAtOnce, step));
}

/** A control plane's certificate expiry as it is on the node now ("" on a worker). */
async function expiryOf(i: KubeadmJoinInputs): Promise<string> {
  return i.controlPlane ? membership.certificateExpiry(await hostOf(i.connection)) : "";
}

/** A recorded expiry within the renewal window. */
const due = (expiry: string, beforeDays: number) => expiry !== "" && renewalDue({ node: expiry }, beforeDays).length > 0;

const membershipOf = (i: KubeadmJoinInputs): membership.NodeMembership => ({
  node: i.connection,
  controlPlanes: i.controlPlanes,
  controlPlane: i.controlPlane,
  untaint: i.untaint,
  joinConfiguration: i.joinConfiguration,
  configPath: i.configPath,
  handOver: i.handOver,
  init: i.init,
  settings: i.settings,
});

export const provider: Provider<KubeadmJoinInputs, KubeadmJoinOutputs> = {
  // refused at preview: changes a joined node cannot take (plan/day2.ts)
  async check(olds, news) {
    const failures = joinRefusals(olds, news);
    return failures.length ? { inputs: news, failures } : { inputs: news };
  },
  async create(inputs) {
    await membership.join(membershipOf(inputs));
    return { id: `${inputs.nodeName}:kubeadm-join`, outs: { ...inputs, member: true, certificateExpiry: await expiryOf(inputs) } };
  },
  async diff(_id, olds, news) {
    // state written before members recorded their settings shows a change once: the update
    // records them (and applies nothing), so later changes of the settings can roll out
    // The generation is unknown at preview whenever KubeadmInit updates, which mostly keeps it:
    // not a change by itself there (the real value decides at `up`).
    const before = upgradeState(olds);
    const d = diffOf(
      (news.generation === UNKNOWN ? { ...before, generation: news.generation } : before) as never,
      news as never,
      ["untaint", "controlPlanes", "handOver", "init", "settings", "generation", "kubernetesVersion"],
      ["controlPlane", "nodeName"],
    );
    // a node that left the cluster (refresh saw member=false) joins again; a control plane whose
    // certificates are due renews them (a dynamic provider cannot name a property for preview to
    // show: the update appears alone, the stack output `certificates` has the dates)
    // (state written before expiries were recorded shows a change once: the update reads it)
    const unread = news.controlPlane && (olds as Recorded).certificateExpiry === undefined;
    return olds.member && !unread && !due(before.certificateExpiry, news.renewCertificatesBeforeDays) ? d : { ...d, changes: true };
  },
  async read(id, props) {
    const state = upgradeState(props);
    const { controlPlanes, nodeName } = state;
    const cp = await membership.liveControlPlane(controlPlanes);
    if (!cp) throw membership.noLiveControlPlane(controlPlanes, `cannot read ${nodeName}'s membership`);
    const member = await membership.isMember(cp, nodeName);
    // the expiry as the node has it now (an operator may have renewed by hand); kept when the node does not answer
    const certificateExpiry =
      member && state.controlPlane ? await expiryOf(state).catch(() => state.certificateExpiry) : state.certificateExpiry;
    return { id, props: { ...props, member, certificateExpiry } };
  },
  async update(_id, olds, news) {
    const before = upgradeState(olds);
    await membership.join(membershipOf(news));
    await upgrade(before, news);
    // a member that stayed one takes the cluster's changed settings (a rejoin downloads them)
    if (before.member && before.settings !== "" && before.settings !== news.settings) {
      const what = settingsChanges(before.settings, news.settings);
      await membership.applySettings(membershipOf(news), what);
      // new cluster.certSANs: this control plane's serving certificate carries them (a rejoin made a new one)
      if (news.controlPlane && what.servingCertSANs)
        await membership.reissueServingCert(news.connection, news.nodeName, news.vip, news.vipHandOver);
    }
    // decided on the certificates as they are now (a rejoin made new ones; an operator may have renewed)
    let certificateExpiry = await expiryOf(news);
    if (due(certificateExpiry, news.renewCertificatesBeforeDays))
      certificateExpiry = await membership.renewCertificates(news.connection, news.vip, news.vipHandOver);
    return { outs: { ...news, member: true, certificateExpiry } };
  },
  async delete(_id, props) {
    await membership.leave(membershipOf(upgradeState(props)));
  },
};
