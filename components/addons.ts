// Addons from the seed's follow-up guides (seed §6): the dashboard with an admin account,
// cert-manager with Let's Encrypt ClusterIssuers solving DNS-01 over RFC2136, ingress-nginx.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterSpec } from "../model/model";

export interface AddonsArgs {
  spec: ClusterSpec;
  provider: k8s.Provider;
  tsigSecret?: pulumi.Output<string>;
  after: pulumi.Resource[];
}

const LETSENCRYPT = {
  "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
  "letsencrypt-production": "https://acme-v02.api.letsencrypt.org/directory",
};

export class Addons extends pulumi.ComponentResource {
  constructor(name: string, args: AddonsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k8sbm:index:Addons", name, {}, opts);
    const a = args.spec.config.addons;
    const o = { parent: this, provider: args.provider, dependsOn: args.after };
    const release = (id: string, chart: string, repo: string, version: string, namespace: string, values: Record<string, unknown> = {}) =>
      new k8s.helm.v3.Release(
        id,
        { name: chart, chart, version, namespace, createNamespace: true, repositoryOpts: { repo }, values, atomic: true },
        o,
      );

    if (a.dashboard.enabled) {
      const dash = release(
        `${name}-dashboard`,
        "kubernetes-dashboard",
        "https://kubernetes.github.io/dashboard/",
        a.dashboard.version,
        "kubernetes-dashboard",
      );
      const sa = new k8s.core.v1.ServiceAccount(
        `${name}-dashboard-admin`,
        { metadata: { name: "dashboard-admin", namespace: "kubernetes-dashboard" } },
        { ...o, dependsOn: [dash] },
      );
      new k8s.rbac.v1.ClusterRoleBinding(
        `${name}-dashboard-admin`,
        {
          metadata: { name: "dashboard-admin" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
          subjects: [{ kind: "ServiceAccount", name: "dashboard-admin", namespace: "kubernetes-dashboard" }],
        },
        { ...o, dependsOn: [sa] },
      );
    }

    if (a.certManager.enabled) {
      const cm = release(`${name}-cert-manager`, "cert-manager", "https://charts.jetstack.io", a.certManager.version, "cert-manager", {
        crds: { enabled: true },
      });
      const rfc = a.certManager.rfc2136;
      const deps: pulumi.Resource[] = [cm];
      if (rfc && args.tsigSecret)
        deps.push(
          new k8s.core.v1.Secret(
            `${name}-tsig`,
            { metadata: { name: "rfc2136-tsig", namespace: "cert-manager" }, stringData: { "tsig-secret-key": args.tsigSecret } },
            { ...o, dependsOn: [cm] },
          ),
        );
      for (const [issuer, server] of Object.entries(LETSENCRYPT))
        new k8s.apiextensions.CustomResource(
          `${name}-${issuer}`,
          {
            apiVersion: "cert-manager.io/v1",
            kind: "ClusterIssuer",
            metadata: { name: issuer },
            spec: {
              acme: {
                server,
                email: a.certManager.email,
                privateKeySecretRef: { name: `${issuer}-account` },
                solvers: rfc
                  ? [
                      {
                        dns01: {
                          rfc2136: {
                            nameserver: rfc.nameserver,
                            tsigKeyName: rfc.tsigKeyName,
                            tsigAlgorithm: rfc.tsigAlgorithm,
                            tsigSecretSecretRef: { name: "rfc2136-tsig", key: "tsig-secret-key" },
                          },
                        },
                      },
                    ]
                  : [{ http01: { ingress: { ingressClassName: "nginx" } } }],
              },
            },
          },
          { ...o, dependsOn: deps },
        );
    }

    if (a.ingressNginx.enabled)
      release(
        `${name}-ingress-nginx`,
        "ingress-nginx",
        "https://kubernetes.github.io/ingress-nginx",
        a.ingressNginx.version,
        "ingress-nginx",
      );
    this.registerOutputs({});
  }
}
