// KubeadmInit: bootstraps the cluster on the first control plane (`kubeadm init`), once.
// Its outputs — the admin kubeconfig (secret) and the CA hash — feed the joins and cilium.
// No token or certificate key is kept: joins mint their own right before they run.
import type * as pulumi from "@pulumi/pulumi";
import { q } from "../os/configurer";
import type { Host } from "../ssh/types";
import { diffOf, hostOf, type Connection } from "./common";
import * as k from "./kubeadm-commands";

export interface KubeadmInitInputs {
  connection: Connection;
  nodeName: string;
  /** path of the rendered config on the node (a RemoteFile) and its content, to diff */
  configPath: string;
  config: string;
  untaint: boolean;
  /** rehearse only: `kubeadm init --dry-run`, nothing is changed */
  dryRun: boolean;
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

async function initialized(host: Host): Promise<boolean> {
  return (await host.exec(k.isInitializedCommand, { allowFail: true })).code === 0;
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: KubeadmInitInputs) {
    const host = await hostOf(inputs.connection);
    if (inputs.dryRun) {
      const r = await host.exec(k.initDryRunCommand(inputs.configPath), { timeoutMs: 10 * 60_000 });
      const outs: KubeadmInitOutputs = { ...inputs, adminKubeconfig: "", caCertHash: "", dryRunOutput: r.stdout };
      return { id: `${inputs.nodeName}:kubeadm-init-dry-run`, outs };
    }
    if (!(await initialized(host))) await host.exec(k.initCommand(inputs.configPath), { mutates: true, timeoutMs: 20 * 60_000 });
    await host.exec(k.copyAdminConfCommand, { mutates: true });
    if (inputs.untaint) await host.exec(k.untaintCommand(inputs.nodeName), { mutates: true });
    const outs: KubeadmInitOutputs = { ...inputs, ...(await outputsOf(host)), dryRunOutput: "" };
    return { id: `${inputs.nodeName}:kubeadm-init`, outs };
  },

  async diff(_id, olds: KubeadmInitOutputs, news: KubeadmInitInputs) {
    return diffOf(olds as never, news as never, ["untaint", "config"], ["dryRun", "nodeName"]);
  },

  async read(id, props: KubeadmInitOutputs) {
    if (props.dryRun) return { id, props };
    const host = await hostOf(props.connection);
    if (!(await initialized(host))) return { id, props: { ...props, adminKubeconfig: "", caCertHash: "" } };
    return { id, props: { ...props, ...(await outputsOf(host)) } };
  },

  // A changed ClusterConfiguration is uploaded and the first node's control-plane manifests are
  // regenerated from it (kubeadm's documented way to reconfigure a running cluster).
  async update(_id, _olds: KubeadmInitOutputs, news: KubeadmInitInputs) {
    const host = await hostOf(news.connection);
    if (!(await initialized(host))) await host.exec(k.initCommand(news.configPath), { mutates: true, timeoutMs: 20 * 60_000 });
    else
      await host.exec(
        `kubeadm init phase upload-config kubeadm --config ${q(news.configPath)} && kubeadm init phase control-plane all --config ${q(news.configPath)}`,
        { mutates: true },
      );
    if (news.untaint) await host.exec(k.untaintCommand(news.nodeName), { mutates: true });
    return { outs: { ...news, ...(await outputsOf(host)), dryRunOutput: "" } };
  },

  async delete(_id, props: KubeadmInitOutputs) {
    if (props.dryRun) return;
    await (await hostOf(props.connection)).exec(k.resetCommand, { mutates: true, timeoutMs: 10 * 60_000 });
  },
};
