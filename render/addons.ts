// The add-ons (seed §6) and their maintained successors, planned from config: each Helm
// release's chart source and values, the ClusterIssuer and Certificate manifests, the Gateway API
// CRDs' source, the UI's admin account. Pure: no Pulumi, no I/O (components/addons.ts creates them).
import YAML from "yaml";
import type { ClusterSpec } from "../model/model";
import type { AddonsConfig, StackConfig } from "../model/schema";
import { deepMerge, sortKeysDeep } from "./common";

export interface ReleasePlan {
  /** the Helm release name (fixed: the chart may be a path) */
  name: string;
  namespace: string;
  chart: string;
  version: string;
  /** absent: `chart` is a directory or .tgz on the machine running pulumi */
  repository?: string;
  values: Record<string, unknown>;
}

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec: Record<string, unknown>;
}

interface ChartSource {
  version: string;
  chart: string;
  repository: string;
  values: Record<string, unknown>;
}

/** A release from a config's chart source; the stack's values deep-merge over ours and win. */
function release(name: string, namespace: string, src: ChartSource, ours: Record<string, unknown>): ReleasePlan {
  return {
    name,
    namespace,
    chart: src.chart,
    version: src.version,
    ...(src.repository ? { repository: src.repository } : {}),
    values: sortKeysDeep(deepMerge(ours, src.values)),
  };
}

// --- cert-manager and its ClusterIssuer -------------------------------------------------------

export const CERT_MANAGER_NAMESPACE = "cert-manager";
/** The TSIG secret, in cert-manager's namespace: where a ClusterIssuer's secrets are read from. */
export const TSIG_SECRET = { name: "rfc2136-tsig", key: "tsig-secret-key" } as const;

export function certManagerRelease(a: AddonsConfig): ReleasePlan {
  const cm = a.certManager;
  const resolvers = cm.recursiveNameservers;
  return release("cert-manager", CERT_MANAGER_NAMESPACE, cm, {
    // keep: the chart annotates its CRDs helm.sh/resource-policy=keep, so an uninstall leaves them
    crds: { enabled: true, keep: cm.crds.keep },
    // split-horizon DNS: check the TXT record where the world sees it, not through the cluster's DNS
    ...(resolvers ? { extraArgs: [`--dns01-recursive-nameservers=${resolvers.join(",")}`, "--dns01-recursive-nameservers-only"] } : {}),
  });
}

/** The ACME ClusterIssuer solving DNS-01 over RFC2136 (the seed's Let's Encrypt issuer). */
export function clusterIssuer(a: AddonsConfig): Manifest {
  const { issuer } = a.certManager;
  const rfc = issuer.rfc2136!;
  return {
    apiVersion: "cert-manager.io/v1",
    kind: "ClusterIssuer",
    metadata: { name: issuer.name },
    spec: {
      acme: {
        server: issuer.server,
        email: issuer.email,
        ...(issuer.caBundle ? { caBundle: Buffer.from(issuer.caBundle).toString("base64") } : {}),
        privateKeySecretRef: { name: `${issuer.name}-account` },
        solvers: [
          {
            dns01: {
              rfc2136: {
                nameserver: rfc.nameserver,
                tsigKeyName: rfc.tsigKeyName,
                tsigAlgorithm: rfc.tsigAlgorithm,
                tsigSecretSecretRef: { name: TSIG_SECRET.name, key: TSIG_SECRET.key },
              },
            },
          },
        ],
      },
    },
  };
}

/** A Certificate from the program's ClusterIssuer (e.g. the wildcard a Gateway's HTTPS listener uses). */
export function certificate(a: AddonsConfig, c: { name: string; namespace: string; dnsNames: string[]; secretName?: string }): Manifest {
  return {
    apiVersion: "cert-manager.io/v1",
    kind: "Certificate",
    metadata: { name: c.name, namespace: c.namespace },
    spec: {
      secretName: c.secretName ?? `${c.name}-tls`,
      dnsNames: c.dnsNames,
      issuerRef: { group: "cert-manager.io", kind: "ClusterIssuer", name: a.certManager.issuer.name },
    },
  };
}

// --- the Gateway API --------------------------------------------------------------------------

/**
 * The gateway-api release each implementation supports: Traefik 3.7 (chart 41.x) asks for v1.5.1
 * (its chart README), cilium 1.19 supports v1.4.
 */
export const GATEWAY_API_VERSIONS = { traefik: "v1.5.1", cilium: "v1.4.1" } as const;
export const TRAEFIK_NAMESPACE = "traefik";

export interface GatewayApiCrdsPlan {
  version: string;
  /** standard-install.yaml: an https:// URL or a path on the machine running pulumi */
  source: string;
  /** disabling the gateway leaves the CRDs (and every Gateway and route) in the cluster */
  keep: boolean;
}

export function planGatewayApiCrds(a: AddonsConfig): GatewayApiCrdsPlan {
  const g = a.gateway;
  const version = g.gatewayApiCrds.version ?? GATEWAY_API_VERSIONS[g.implementation];
  return {
    version,
    source: g.gatewayApiCrds.source ?? `https://github.com/kubernetes-sigs/gateway-api/releases/download/${version}/standard-install.yaml`,
    keep: g.gatewayApiCrds.keep,
  };
}

/** Cilium serves the Gateway API (render/cilium.ts turns it on, components/cilium.ts adds the CRDs). */
export function gatewayOnCilium(c: StackConfig): boolean {
  return c.layers.addons && c.addons.gateway.enabled && c.addons.gateway.implementation === "cilium";
}

/** Traefik as the Gateway API implementation, answering on the external VIPs. */
export function traefikRelease(spec: ClusterSpec): ReleasePlan {
  const vips = spec.config.vrrp.external.vips;
  return release("traefik", TRAEFIK_NAMESPACE, spec.config.addons.gateway, {
    providers: { kubernetesGateway: { enabled: true } },
    // no cloud load balancer here: keepalived holds the external VIPs, cilium (externalIPs.enabled)
    // forwards them to the service; a LoadBalancer service would stay pending and fail the release
    service: { spec: { type: "ClusterIP", ...(vips.length ? { externalIPs: vips } : {}) } },
  });
}

// --- the web UI -------------------------------------------------------------------------------

export const HEADLAMP_NAMESPACE = "headlamp";

export function headlampRelease(a: AddonsConfig): ReleasePlan {
  return release("headlamp", HEADLAMP_NAMESPACE, a.ui, {
    // users log in with their own token; the pod itself needs no cluster-admin (the chart's default)
    clusterRoleBinding: { create: false },
  });
}

export interface AdminAccountPlan {
  namespace: string;
  serviceAccount: string;
  /** prints a short-lived token to log in with: a command in the stack outputs, no secret in state */
  tokenCommand: string;
}

export function uiAdmin(a: AddonsConfig): AdminAccountPlan | undefined {
  const { admin } = a.ui;
  if (!admin.enabled) return undefined;
  return {
    namespace: HEADLAMP_NAMESPACE,
    serviceAccount: admin.serviceAccount,
    tokenCommand: `kubectl -n ${HEADLAMP_NAMESPACE} create token ${admin.serviceAccount} --duration=${admin.tokenDuration}`,
  };
}

// --- retired upstream: selectable, with a warning ----------------------------------------------

export const DASHBOARD_NAMESPACE = "kubernetes-dashboard";
export const DASHBOARD_ADMIN = "dashboard-admin";
const DASHBOARD_REPOSITORY = "https://kubernetes.github.io/dashboard/";

export function dashboardRelease(a: AddonsConfig): ReleasePlan {
  return release("kubernetes-dashboard", DASHBOARD_NAMESPACE, a.dashboard, {});
}

export function ingressNginxRelease(a: AddonsConfig): ReleasePlan {
  return release("ingress-nginx", "ingress-nginx", a.ingressNginx, {});
}

/** One warning per retired add-on that is enabled: what retired it and the key to use instead. */
export function retiredAddonWarnings(a: AddonsConfig): string[] {
  const out: string[] = [];
  if (a.dashboard.enabled)
    out.push(
      "addons.dashboard: the Kubernetes Dashboard was archived in January 2026 (no releases or security fixes) and its chart repository is gone" +
        (a.dashboard.repository === DASHBOARD_REPOSITORY
          ? ', so this install fails unless addons.dashboard.chart is a local copy with addons.dashboard.repository ""'
          : "") +
        "; use addons.ui (Headlamp) and set addons.dashboard.enabled false",
    );
  if (a.ingressNginx.enabled)
    out.push(
      "addons.ingressNginx: ingress-nginx has had no releases or security fixes since March 2026; use addons.gateway (the Gateway API through Traefik or cilium) and set addons.ingressNginx.enabled false",
    );
  return out;
}

// --- everything at once (the golden file shows the whole plan) --------------------------------

export interface AddonsPlan {
  certManager?: { release: ReleasePlan; issuer?: Manifest };
  gateway?: { implementation: "traefik" | "cilium"; crds: GatewayApiCrdsPlan; traefik?: ReleasePlan };
  ui?: { release: ReleasePlan; admin?: AdminAccountPlan };
  dashboard?: { release: ReleasePlan; admin: string };
  ingressNginx?: { release: ReleasePlan };
  warnings: string[];
}

export function planAddons(spec: ClusterSpec): AddonsPlan {
  const a = spec.config.addons;
  const { certManager: cm, gateway: g } = a;
  const admin = uiAdmin(a);
  return {
    ...(cm.enabled ? { certManager: { release: certManagerRelease(a), ...(cm.issuer.enabled ? { issuer: clusterIssuer(a) } : {}) } } : {}),
    ...(g.enabled
      ? {
          gateway: {
            implementation: g.implementation,
            crds: planGatewayApiCrds(a),
            ...(g.implementation === "traefik" ? { traefik: traefikRelease(spec) } : {}),
          },
        }
      : {}),
    ...(a.ui.enabled ? { ui: { release: headlampRelease(a), ...(admin ? { admin } : {}) } } : {}),
    ...(a.dashboard.enabled ? { dashboard: { release: dashboardRelease(a), admin: DASHBOARD_ADMIN } } : {}),
    ...(a.ingressNginx.enabled ? { ingressNginx: { release: ingressNginxRelease(a) } } : {}),
    warnings: retiredAddonWarnings(a),
  };
}

/** The plan as YAML (for goldens and review; nothing writes it to a host). */
export function addonsPlanYaml(spec: ClusterSpec): string {
  return YAML.stringify(planAddons(spec), { lineWidth: 0, version: "1.1" });
}
