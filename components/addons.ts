// Add-ons from the seed's follow-up guides (seed §6) and their maintained successors:
// cert-manager with a DNS-01 (RFC2136) ClusterIssuer, the Gateway API through Traefik (cilium's
// own is in components/cilium.ts), Headlamp with an admin account to log in with, and the retired
// Dashboard and ingress-nginx. render/addons.ts plans every value; a disabled add-on is not
// declared, so Pulumi deletes it.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterSpec } from "../model/model";
import { CERT_MANAGER_NAMESPACE, DASHBOARD_NAMESPACE, TSIG_SECRET, planAddons, type ReleasePlan } from "../render/addons";
import { gatewayApiCrds } from "./gateway-api";

export interface AddonsArgs {
  spec: ClusterSpec;
  provider: k8s.Provider;
  /** the stack secret certManagerTsigSecret (config checks require it with an RFC2136 issuer) */
  tsigSecret?: pulumi.Output<string>;
  after: pulumi.Resource[];
}

type Deps = pulumi.Input<pulumi.Input<pulumi.Resource>[]>;

export class Addons extends pulumi.ComponentResource {
  /** `kubectl -n … create token … --duration=…` for the UI's admin account, when there is one */
  readonly uiTokenCommand?: string;

  constructor(name: string, args: AddonsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k8sbm:index:Addons", name, {}, opts);
    const plan = planAddons(args.spec);
    for (const warning of plan.warnings) pulumi.log.warn(warning, this);
    const o = { parent: this, provider: args.provider };
    const release = (id: string, p: ReleasePlan, dependsOn: Deps = args.after) =>
      new k8s.helm.v3.Release(
        id,
        {
          name: p.name,
          chart: p.chart,
          version: p.version,
          namespace: p.namespace,
          createNamespace: true,
          ...(p.repository ? { repositoryOpts: { repo: p.repository } } : {}),
          values: p.values,
          atomic: true,
        },
        { ...o, dependsOn },
      );
    // a ServiceAccount bound to cluster-admin: the seed's "admin account to log in with"
    const clusterAdmin = (id: string, namespace: string, account: string, after: pulumi.Resource) => {
      const sa = new k8s.core.v1.ServiceAccount(id, { metadata: { name: account, namespace } }, { ...o, dependsOn: [after] });
      new k8s.rbac.v1.ClusterRoleBinding(
        id,
        {
          metadata: { name: account },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
          subjects: [{ kind: "ServiceAccount", name: account, namespace }],
        },
        { ...o, dependsOn: [sa] },
      );
    };

    if (plan.certManager) {
      const cm = release(`${name}-cert-manager`, plan.certManager.release);
      const issuer = plan.certManager.issuer;
      if (issuer) {
        if (!args.tsigSecret) throw new Error("the RFC2136 ClusterIssuer needs the stack secret certManagerTsigSecret");
        // stringData from the secret Output (and @pulumi/kubernetes marks stringData secret):
        // the TSIG key stays encrypted in state
        const tsig = new k8s.core.v1.Secret(
          `${name}-tsig`,
          {
            metadata: { name: TSIG_SECRET.name, namespace: CERT_MANAGER_NAMESPACE },
            type: "Opaque",
            stringData: { [TSIG_SECRET.key]: args.tsigSecret },
          },
          { ...o, dependsOn: [cm] },
        );
        // after the release: its CRDs define ClusterIssuer and its webhook validates it
        new k8s.apiextensions.CustomResource(`${name}-cluster-issuer`, issuer, { ...o, dependsOn: [cm, tsig] });
      }
    }

    if (plan.gateway?.traefik) {
      const crds = gatewayApiCrds(`${name}-gateway-api-crds`, plan.gateway.crds, o);
      release(
        `${name}-traefik`,
        plan.gateway.traefik,
        crds.ready.apply((r) => [...args.after, ...r]),
      );
    }

    if (plan.ui) {
      const ui = release(`${name}-headlamp`, plan.ui.release);
      const admin = plan.ui.admin;
      if (admin) {
        clusterAdmin(`${name}-headlamp-admin`, admin.namespace, admin.serviceAccount, ui);
        this.uiTokenCommand = admin.tokenCommand;
      }
    }

    if (plan.dashboard) {
      const dash = release(`${name}-dashboard`, plan.dashboard.release);
      clusterAdmin(`${name}-dashboard-admin`, DASHBOARD_NAMESPACE, plan.dashboard.admin, dash);
    }
    if (plan.ingressNginx) release(`${name}-ingress-nginx`, plan.ingressNginx.release);

    this.registerOutputs(this.uiTokenCommand ? { uiTokenCommand: this.uiTokenCommand } : {});
  }
}
