// The Gateway API CRDs (sigs.k8s.io/gateway-api's standard-install.yaml), which Traefik and
// cilium need before they start: the Addons component declares them for Traefik, the Cilium
// component for cilium's own implementation.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { GatewayApiCrdsPlan } from "../render/addons";

export interface GatewayApiCrds {
  file: k8s.yaml.ConfigFile;
  /** the CRD resources, for dependsOn (a ConfigFile declares them once its file is read) */
  ready: pulumi.Output<pulumi.Resource[]>;
}

export function gatewayApiCrds(name: string, plan: GatewayApiCrdsPlan, opts: pulumi.ComponentResourceOptions): GatewayApiCrds {
  const file = new k8s.yaml.ConfigFile(
    name,
    {
      file: plan.source,
      // keep: disabling the gateway leaves the CRDs, since deleting one deletes every object of its kind
      transformations: plan.keep
        ? [
            (_obj: unknown, o: pulumi.CustomResourceOptions) => {
              o.retainOnDelete = true;
            },
          ]
        : [],
    },
    opts,
  );
  return { file, ready: file.resources.apply((m) => Object.values(m) as pulumi.Resource[]) };
}
