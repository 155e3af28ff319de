// KubeadmInit: the cluster. Created once by `kubeadm init` on the first control plane; after
// that it is bound to no node: it reads its outputs — the admin kubeconfig (secret) and the CA
// hash — from whichever control plane answers, and when the set of control planes changes it
// checks, on the live etcd, that the whole change keeps quorum before any node is touched
// (the joins and removals that follow are the nodes' own KubeadmJoin resources).
// No token or certificate key is kept: joins mint their own right before they run.
import type { InitSystem } from "../../model/schema";
import { randomBytes } from "crypto";
import type { SshTarget } from "../ssh/types";
import { renewalDue } from "../../plan/certificates";
import { initRefusals, noUpgradePath } from "../../plan/day2";
import { clusterVersion, initPreflightIgnores, type KubePackages } from "../../plan/upgrade";
import { upgradeBlockers, upgradeCluster } from "./upgrade";
import { clientCertificateExpiry } from "./kubeconfig";
import { changed, diffOf, hostOf, type Provider } from "./common";
import * as k from "./kubeadm-commands";
import * as membership from "./membership";

export interface KubeadmInitInputs {
  /** the first control plane: where `kubeadm init` runs if there is no cluster yet */
  connection: SshTarget;
  nodeName: string;
  /** every control plane, in config order */
  controlPlanes: SshTarget[];
  /** path of the rendered config on the node (a RemoteFile) and its content, to diff */
  configPath: string;
  config: string;
  untaint: boolean;
  /** rehearse only: `kubeadm init --dry-run`, nothing is changed */
  dryRun: boolean;
  /** the first node's init system (to restart its kubelet after clearing leftovers) */
  init: InitSystem;
  /** the API endpoint the exported kubeconfig names: https://<control-plane VIP>:<port> */
  server: string;
  /** when there is no cluster, initialise it from this snapshot (etcdBackup.restoreFrom) */
  restore: membership.RestoreSource | null;
  /** the stack's admin kubeconfig is renewed when its certificate expires within this many days */
  renewCertificatesBeforeDays: number;
  /** the first control plane's Kubernetes packages pinned to the version (null: the program does not pin them, so it does not upgrade) */
  upgradePackages: KubePackages | null;
  /** the API VIP, and how the first control plane's keepalived lets it go while its apiserver restarts */
  vip: string;
  vipHandOver: membership.VipHandOver | null;
}

export interface KubeadmInitOutputs extends KubeadmInitInputs {
  adminKubeconfig: string;
  caCertHash: string;
  dryRunOutput: string;
  /**
   * Minted each time `kubeadm init` makes the cluster (the first time, or again from a snapshot).
   * Every membership follows it, so a cluster made anew has its nodes join again. (etcd's own
   * cluster ID cannot tell: a restore onto the same first node gives the same one.)
   */
  generation: string;
}

/**
 * State written before the names settled: `leaders` for the control planes, `init` optional;
 * `server` is missing in state written before the kubeconfig was rebuilt from parsed parts.
 */
type Recorded = Omit<
  KubeadmInitOutputs,
  "controlPlanes" | "init" | "server" | "restore" | "generation" | "renewCertificatesBeforeDays" | "upgradePackages" | "vip" | "vipHandOver"
> & {
  upgradePackages?: KubePackages | null;
  vip?: string;
  vipHandOver?: membership.VipHandOver | null;
  controlPlanes?: SshTarget[];
  leaders?: SshTarget[];
  init?: InitSystem;
  server?: string;
  restore?: membership.RestoreSource | null;
  generation?: string;
  renewCertificatesBeforeDays?: number;
};
export const upgradeState = (s: Recorded): KubeadmInitOutputs => {
  const { leaders, ...rest } = s;
  return {
    ...rest,
    controlPlanes: s.controlPlanes ?? leaders ?? [],
    init: s.init ?? "systemd",
    server: s.server ?? "",
    restore: s.restore ?? null,
    generation: s.generation ?? "",
    renewCertificatesBeforeDays: s.renewCertificatesBeforeDays ?? 30,
    upgradePackages: s.upgradePackages ?? null,
    vip: s.vip ?? "",
    vipHandOver: s.vipHandOver ?? null,
  };
};

/** The version the change moves the cluster to ("" when it does not move): only from a live cluster, not a rehearsal. */
function upgradeTo(olds: Partial<KubeadmInitInputs>, news: KubeadmInitInputs): string {
  if (olds.config === undefined || olds.dryRun !== false || news.dryRun) return "";
  const [from, to] = [clusterVersion(olds.config), clusterVersion(news.config)];
  return from && to && from !== to ? to : "";
}

const clusterArgs = (i: KubeadmInitInputs): membership.ClusterArgs => ({
  first: i.connection,
  controlPlanes: i.controlPlanes,
  configPath: i.configPath,
  init: i.init,
  untaint: i.untaint,
  restore: i.restore,
});

/** The kubeconfig's client certificate expires within the window (one from a rehearsal has none). */
function adminDue(kubeconfig: string, beforeDays: number): boolean {
  const at = kubeconfig ? clientCertificateExpiry(kubeconfig) : "";
  return at !== "" && renewalDue({ admin: at }, beforeDays).length > 0;
}

const newGeneration = () => randomBytes(8).toString("hex");

export const provider: Provider<KubeadmInitInputs, KubeadmInitOutputs> = {
  // refused at preview: changes a live cluster cannot take (plan/day2.ts)
  // and an upgrade is refused while the cluster is not healthy (checked live)
  async check(olds, news) {
    const failures = initRefusals(olds, news);
    const to = upgradeTo(olds, news);
    if (!failures.length && to) {
      if (!news.upgradePackages)
        failures.push({ property: "config", reason: `cluster.kubernetesVersion: ${noUpgradePath(news.nodeName)}` });
      else {
        const blockers = await upgradeBlockers(news.controlPlanes);
        if (blockers.length)
          failures.push({
            property: "config",
            reason: `cluster.kubernetesVersion: not upgrading to ${to} now: ${blockers.join("; ")}. Bring them back (or remove the node from nodes) and run again`,
          });
      }
    }
    return failures.length ? { inputs: news, failures } : { inputs: news };
  },

  async create(inputs) {
    if (inputs.dryRun) {
      const host = await hostOf(inputs.connection);
      const r = await host.exec(k.initDryRunCommand(inputs.configPath), { timeoutMs: 10 * 60_000 });
      return {
        id: `${inputs.nodeName}:kubeadm-init-dry-run`,
        outs: { ...inputs, adminKubeconfig: "", caCertHash: "", dryRunOutput: r.stdout, generation: "" },
      };
    }
    const cp = await membership.ensureCluster(clusterArgs(inputs));
    return {
      id: `${inputs.nodeName}:kubeadm-init`,
      outs: { ...inputs, ...(await membership.adminKubeconfigOf(cp, inputs.server)), dryRunOutput: "", generation: newGeneration() },
    };
  },

  async diff(_id, olds, news) {
    const o = upgradeState(olds);
    // old state without `server`: not a change by itself (the next update records it)
    const before = o.server === "" ? { ...o, server: news.server } : o;
    const d = diffOf(before as never, news as never, ["untaint", "config", "controlPlanes", "nodeName", "server", "restore"], ["dryRun"]);
    // the admin kubeconfig's certificate due: an update renews it (preview shows the update alone)
    return !news.dryRun && adminDue(o.adminKubeconfig, news.renewCertificatesBeforeDays) ? { ...d, changes: true } : d;
  },

  async read(id, props) {
    if (props.dryRun) return { id, props };
    const state = upgradeState(props);
    const cp = await membership.clusterControlPlane(clusterArgs(state));
    if (!cp) return { id, props: { ...props, adminKubeconfig: "", caCertHash: "" } };
    return { id, props: { ...props, ...(await membership.adminKubeconfigOf(cp, state.server)) } };
  },

  async update(_id, olds, news) {
    if (news.dryRun) return { outs: { ...upgradeState(olds), ...news } };
    const { host: cp, made } = await membership.ensureClusterMade(clusterArgs(news));
    const to = made ? "" : upgradeTo(olds, news);
    if (to)
      await upgradeCluster({
        first: news.connection,
        controlPlanes: news.controlPlanes,
        version: to,
        packages: news.upgradePackages!,
        ignorePreflightErrors: initPreflightIgnores(news.config),
        vip: news.vip,
        vipHandOver: news.vipHandOver,
      });
    if (changed(olds as never, news as never, ["config"]).length) await membership.reconfigure(news.connection, news.configPath);
    if (news.untaint) await membership.untaint(cp, news.nodeName);
    const generation = made ? newGeneration() : upgradeState(olds).generation;
    let admin = await membership.adminKubeconfigOf(cp, news.server);
    if (adminDue(admin.adminKubeconfig, news.renewCertificatesBeforeDays)) {
      await membership.renewAdminConf(cp);
      admin = await membership.adminKubeconfigOf(cp, news.server);
    }
    return { outs: { ...news, ...admin, dryRunOutput: "", generation } };
  },

  // The nodes leave through their own KubeadmJoin resources (deleted first, as they depend on
  // this one); the last control plane is reset there. Nothing is left to undo here.
  async delete() {},
};
