// Cilium: the CNI and kube-proxy replacement, as a Helm release (seed §5), installed once the
// first control plane is up and before workers join; with addons.gateway.implementation cilium,
// also the Gateway API implementation (its CRDs first). The Kubernetes provider is built from the
// admin kubeconfig output (direct, or through an SSH tunnel via the first control plane).
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { SshTarget } from "../providers/ssh/types";
import { gatewayOnCilium, planGatewayApiCrds } from "../render/addons";
import { ciliumValues } from "../render/cilium";
import type { ClusterSpec } from "../model/model";
import { gatewayApiCrds } from "./gateway-api";
import { defaultTunnelPort, kubeconfigViaTunnel, openApiTunnel } from "./tunnel";

export interface CiliumArgs {
  spec: ClusterSpec;
  adminKubeconfig: pulumi.Output<string>;
  /** the first control plane: the tunnel's way in */
  tunnelVia: pulumi.Input<SshTarget>;
  after: pulumi.Resource[];
}

export function kubernetesProvider(name: string, args: Omit<CiliumArgs, "after">, parent: pulumi.Resource): k8s.Provider {
  const { spec } = args;
  const kubeconfig =
    spec.config.cilium.apiAccess === "ssh-tunnel"
      ? pulumi.all([args.adminKubeconfig, pulumi.output(args.tunnelVia)]).apply(async ([kc, via]) => {
          const port = spec.config.cilium.tunnelPort ?? defaultTunnelPort(pulumi.getProject(), pulumi.getStack());
          const t = await openApiTunnel(via, { host: spec.controlPlaneVip.ip, port: spec.config.cluster.apiServerPort }, port);
          return kubeconfigViaTunnel(kc, t.port, spec.controlPlaneVip.ip);
        })
      : args.adminKubeconfig;
  return new k8s.Provider(name, { kubeconfig: pulumi.secret(kubeconfig) }, { parent });
}

export class Cilium extends pulumi.ComponentResource {
  readonly release: k8s.helm.v3.Release;
  readonly provider: k8s.Provider;

  constructor(name: string, args: CiliumArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k8sbm:index:Cilium", name, {}, opts);
    const c = args.spec.config.cilium;
    this.provider = kubernetesProvider(`${name}-k8s`, args, this);
    // cilium as the Gateway API implementation: its operator looks for the CRDs when it starts
    const crds = gatewayOnCilium(args.spec.config)
      ? gatewayApiCrds(`${name}-gateway-api-crds`, planGatewayApiCrds(args.spec.config.addons), { parent: this, provider: this.provider })
      : undefined;
    this.release = new k8s.helm.v3.Release(
      name,
      {
        name: "cilium",
        chart: c.chart,
        version: c.version,
        namespace: "kube-system",
        ...(c.repository ? { repositoryOpts: { repo: c.repository } } : {}),
        values: ciliumValues(args.spec),
        atomic: true,
        timeout: 900,
      },
      { parent: this, provider: this.provider, dependsOn: crds ? crds.ready.apply((r) => [...args.after, ...r]) : args.after },
    );
    this.registerOutputs({ status: this.release.status });
  }
}
