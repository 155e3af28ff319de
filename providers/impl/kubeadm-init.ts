// KubeadmInit: the cluster. Created once by `kubeadm init` on the first control plane; after
// that it is bound to no node: it reads its outputs — the admin kubeconfig (secret) and the CA
// hash — from whichever control plane answers, and when the set of control planes changes it
// checks, on the live etcd, that the whole change keeps quorum before any node is touched
// (the joins and removals that follow are the nodes' own KubeadmJoin resources).
// No token or certificate key is kept: joins mint their own right before they run.
import type * as pulumi from "@pulumi/pulumi";
import { planMembership } from "../../plan/etcd";
import { q } from "../os/configurer";
import type { Host } from "../ssh/types";
import { changed, diffOf, hostOf, type Connection } from "./common";
import { etcdMembers, removeMember } from "./etcd-members";
import * as k from "./kubeadm-commands";
import type { InitSystem } from "../../spec/schema";
import { liveLeader } from "./kubeadm-join";

export interface KubeadmInitInputs {
  /** the first control plane: where `kubeadm init` runs if there is no cluster yet */
  connection: Connection;
  nodeName: string;
  /** every control plane, in config order */
  leaders: Connection[];
  /** path of the rendered config on the node (a RemoteFile) and its content, to diff */
  configPath: string;
  config: string;
  untaint: boolean;
  /** rehearse only: `kubeadm init --dry-run`, nothing is changed */
  dryRun: boolean;
  /** the first node's init system (to restart its kubelet after clearing leftovers) */
  init?: InitSystem;
}

export interface KubeadmInitOutputs extends KubeadmInitInputs {
  adminKubeconfig: string;
  caCertHash: string;
  dryRunOutput: string;
}

async function outputsOf(host: Host): Promise<{ adminKubeconfig: string; caCertHash: string }> {
  const adminKubeconfig = ((await host.readFile(k.ADMIN_CONF)) ?? Buffer.alloc(0)).toString("utf8");
  const caCertHash = (await host.exec(k.caCertHashCommand)).stdout.trim();
  return { adminKubeconfig, caCertHash };
}

/** The first node, if it answers; else any control plane that does. */
async function leaderOf(inputs: KubeadmInitInputs): Promise<Host | undefined> {
  return liveLeader([inputs.connection, ...inputs.leaders.filter((l) => l.name !== inputs.nodeName)]);
}

/**
 * No control plane answers. `kubeadm init` is right only when every one of them was reached and
 * none has any cluster state: a cluster that is merely unreachable must not get a twin.
 */
async function assertNoCluster(inputs: KubeadmInitInputs): Promise<void> {
  for (const c of inputs.leaders) {
    const h = await hostOf(c); // throws when unreachable: that is not "no cluster"
    if ((await h.exec(k.localStateCommand)).stdout.trim() === "present" && c.name !== inputs.nodeName)
      throw new Error(
        `no control plane's API answers, but ${c.name} has cluster state (/etc/kubernetes): refusing to \`kubeadm init\` a ` +
          `second cluster on ${inputs.nodeName}; bring the existing control planes back or reset them`,
      );
  }
}

/** Checks the live etcd against the wanted control planes; drops dead members that are not wanted. */
async function reconcileMembership(leader: Host, inputs: KubeadmInitInputs): Promise<void> {
  const plan = planMembership(await etcdMembers(leader), inputs.leaders.map((l) => l.name));
  for (const m of plan.removeFirst) await removeMember(leader, m);
}

async function ensureCluster(inputs: KubeadmInitInputs): Promise<Host> {
  const leader = await leaderOf(inputs);
  if (leader) {
    await reconcileMembership(leader, inputs);
    return leader;
  }
  await assertNoCluster(inputs);
  const host = await hostOf(inputs.connection);
  const init = inputs.init ?? "systemd";
  if ((await host.exec(k.localStateCommand)).stdout.trim() === "present") await host.exec(k.resetCommand(init), { mutates: true, timeoutMs: 10 * 60_000 });
  await host.exec(k.startKubeletCommand(init), { mutates: true });
  await host.exec(k.initCommand(inputs.configPath), { mutates: true, timeoutMs: 20 * 60_000 });
  await host.exec(k.copyAdminConfCommand, { mutates: true });
  await host.exec(`${k.deleteAllTokensCommand} && ${k.deleteUploadedCertsCommand}`, { mutates: true });
  if (inputs.untaint) await host.exec(k.untaintCommand(inputs.nodeName), { mutates: true });
  return host;
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: KubeadmInitInputs) {
    if (inputs.dryRun) {
      const host = await hostOf(inputs.connection);
      const r = await host.exec(k.initDryRunCommand(inputs.configPath), { timeoutMs: 10 * 60_000 });
      const outs: KubeadmInitOutputs = { ...inputs, adminKubeconfig: "", caCertHash: "", dryRunOutput: r.stdout };
      return { id: `${inputs.nodeName}:kubeadm-init-dry-run`, outs };
    }
    const leader = await ensureCluster(inputs);
    const outs: KubeadmInitOutputs = { ...inputs, ...(await outputsOf(leader)), dryRunOutput: "" };
    return { id: `${inputs.nodeName}:kubeadm-init`, outs };
  },

  async diff(_id, olds: KubeadmInitOutputs, news: KubeadmInitInputs) {
    return diffOf(olds as never, news as never, ["untaint", "config", "leaders", "nodeName"], ["dryRun"]);
  },

  async read(id, props: KubeadmInitOutputs) {
    if (props.dryRun) return { id, props };
    const leader = await leaderOf(props);
    if (!leader) return { id, props: { ...props, adminKubeconfig: "", caCertHash: "" } };
    return { id, props: { ...props, ...(await outputsOf(leader)) } };
  },

  // A changed ClusterConfiguration is uploaded and the first node's control-plane manifests are
  // regenerated from it (kubeadm's documented way to reconfigure a running cluster).
  async update(_id, olds: KubeadmInitOutputs, news: KubeadmInitInputs) {
    if (news.dryRun) return { outs: { ...olds, ...news } };
    const leader = await ensureCluster(news);
    if (changed(olds as never, news as never, ["config"]).length) {
      const host = await hostOf(news.connection);
      await host.exec(
        `kubeadm init phase upload-config kubeadm --config ${q(news.configPath)} && kubeadm init phase control-plane all --config ${q(news.configPath)}`,
        { mutates: true },
      );
    }
    if (news.untaint) await leader.exec(k.untaintCommand(news.nodeName), { mutates: true });
    return { outs: { ...news, ...(await outputsOf(leader)), dryRunOutput: "" } };
  },

  // The nodes leave through their own KubeadmJoin resources (deleted first, as they depend on
  // this one); the last control plane is reset there. Nothing is left to undo here.
  async delete() {},
};
