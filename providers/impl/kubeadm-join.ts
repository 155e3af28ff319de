// KubeadmJoin: one node's membership, the first control plane's included (init made it a
// member; after bootstrap it is not special). The steps — join with credentials minted right
// before and deleted right after, leave by drain, reset and delete — are in ./membership.
import type { JoinConfiguration } from "../../render/kubeadm";
import type { InitSystem } from "../../model/schema";
import type { SshTarget } from "../ssh/types";
import { joinRefusals, settingsChanges } from "../../plan/day2";
import { diffOf, type Provider } from "./common";
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
}

export interface KubeadmJoinOutputs extends KubeadmJoinInputs {
  member: boolean;
}

/**
 * State written before the names settled: `leaders` for the control planes, some fields optional
 * (`settings` "" in state written before members took the cluster's settings).
 */
type Recorded = Omit<KubeadmJoinOutputs, "controlPlanes" | "init" | "handOver" | "settings"> & {
  controlPlanes?: SshTarget[];
  leaders?: SshTarget[];
  init?: InitSystem;
  handOver?: string;
  settings?: string;
};
export const upgradeState = (s: Recorded): KubeadmJoinOutputs => {
  const { leaders, ...rest } = s;
  return {
    ...rest,
    controlPlanes: s.controlPlanes ?? leaders ?? [],
    init: s.init ?? "systemd",
    handOver: s.handOver ?? "",
    settings: s.settings ?? "",
  };
};

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
    return { id: `${inputs.nodeName}:kubeadm-join`, outs: { ...inputs, member: true } };
  },
  async diff(_id, olds, news) {
    // state written before members recorded their settings shows a change once: the update
    // records them (and applies nothing), so later changes of the settings can roll out
    const d = diffOf(
      upgradeState(olds) as never,
      news as never,
      ["untaint", "controlPlanes", "handOver", "init", "settings"],
      ["controlPlane", "nodeName"],
    );
    // a node that left the cluster (refresh saw member=false) joins again
    return olds.member ? d : { ...d, changes: true };
  },
  async read(id, props) {
    const { controlPlanes, nodeName } = upgradeState(props);
    const cp = await membership.liveControlPlane(controlPlanes);
    if (!cp) throw membership.noLiveControlPlane(controlPlanes, `cannot read ${nodeName}'s membership`);
    return { id, props: { ...props, member: await membership.isMember(cp, nodeName) } };
  },
  async update(_id, olds, news) {
    const before = upgradeState(olds);
    await membership.join(membershipOf(news));
    // a member that stayed one takes the cluster's changed settings (a rejoin downloads them)
    if (before.member && before.settings !== "" && before.settings !== news.settings)
      await membership.applySettings(membershipOf(news), settingsChanges(before.settings, news.settings));
    return { outs: { ...news, member: true } };
  },
  async delete(_id, props) {
    await membership.leave(membershipOf(upgradeState(props)));
  },
};
