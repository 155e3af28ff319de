// Add-ons: their config (each bad value names its key and the fix) and the pure plan of every
// release, manifest and CRD source (render/addons.ts), golden for all successors on.
import { ConfigError, parseStackConfig } from "../../model/parse";
import type { SecretKey } from "../../model/schema";
import {
  GATEWAY_API_VERSIONS,
  addonsPlanYaml,
  certManagerRelease,
  certificate,
  clusterIssuer,
  headlampRelease,
  planAddons,
  planGatewayApiCrds,
  retiredAddonWarnings,
  traefikRelease,
  uiAdmin,
} from "../../render/addons";
import { ciliumValues } from "../../render/cilium";
import { addonSecretKeys, addonsConfig, addonsSpec, successorAddons } from "../fixtures/addons";
import { NAMESPACE, devSecretKeys, devSpec } from "../fixtures/dev";
import { expectGolden } from "./golden";

type Raw = Record<string, any>;

/** The successors' config changed by `fn`. */
const successors = (fn: (a: Raw) => void = () => {}): Raw => {
  const a: Raw = successorAddons();
  fn(a);
  return a;
};

function expectFinding(addons: Raw, key: string, message: RegExp, secrets: ReadonlySet<SecretKey> = addonSecretKeys): void {
  let err: unknown;
  try {
    parseStackConfig(NAMESPACE, addonsConfig(addons), secrets);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as ConfigError).message).toContain(`${NAMESPACE}:${key}: `);
  const f = (err as ConfigError).findings.find((x) => x.key === key);
  expect(f).toBeDefined();
  expect(f!.message).toMatch(message);
}

describe("add-on config", () => {
  test("defaults: upstream charts, Let's Encrypt production, HMAC-SHA512, CRDs kept, everything off", () => {
    const a = devSpec().config.addons;
    expect(a.certManager).toMatchObject({
      enabled: false,
      version: "v1.21.2",
      chart: "cert-manager",
      repository: "https://charts.jetstack.io",
      values: {},
      crds: { keep: true },
      issuer: { enabled: true, name: "letsencrypt", server: "https://acme-v02.api.letsencrypt.org/directory" },
    });
    expect(a.gateway).toMatchObject({
      enabled: false,
      implementation: "traefik",
      version: "41.6.0",
      chart: "traefik",
      repository: "https://traefik.github.io/charts",
      gatewayApiCrds: { keep: true },
    });
    expect(a.ui).toMatchObject({
      enabled: false,
      implementation: "headlamp",
      version: "0.45.0",
      chart: "headlamp",
      repository: "https://kubernetes-sigs.github.io/headlamp/",
      admin: { enabled: true, serviceAccount: "headlamp-admin", tokenDuration: "1h" },
    });
    expect([a.dashboard.enabled, a.ingressNginx.enabled]).toEqual([false, false]);
    expect(addonsSpec().config.addons.certManager.issuer.rfc2136!.tsigAlgorithm).toBe("HMACSHA512");
  });

  test("an http:// ACME server is refused", () => {
    expectFinding(
      successors((a) => (a.certManager.issuer.server = "http://pebble.lab:14000/dir")),
      "addons.certManager.issuer.server",
      /must be an https:\/\/ ACME directory URL/,
    );
  });

  test("the issuer needs an email, naming the way out", () => {
    expectFinding(
      successors((a) => delete a.certManager.issuer.email),
      "addons.certManager.issuer.email",
      /is required .*addons.certManager.issuer.enabled false/,
    );
  });

  test("an email that is not one", () => {
    expectFinding(
      successors((a) => (a.certManager.issuer.email = "admin")),
      "addons.certManager.issuer.email",
      /must be an email address for the ACME account/,
    );
  });

  test("the issuer needs its RFC2136 solver", () => {
    expectFinding(
      successors((a) => delete a.certManager.issuer.rfc2136),
      "addons.certManager.issuer.rfc2136",
      /is required: the issuer solves DNS-01 over RFC2136 — set \{nameserver: host:port, tsigKeyName\}/,
    );
  });

  test("issuer.enabled false: cert-manager alone needs neither", () => {
    const spec = addonsSpec(successors((a) => (a.certManager.issuer = { enabled: false })));
    expect(planAddons(spec).certManager).toEqual({ release: expect.objectContaining({ name: "cert-manager" }) });
  });

  test("the TSIG secret must be a stack secret", () => {
    expectFinding(successors(), "certManagerTsigSecret", /pulumi config set --secret certManagerTsigSecret/, devSecretKeys);
  });

  test("the pre-issue-12 keys name their new place", () => {
    expectFinding(
      successors((a) => (a.certManager.email = "old@example.com")),
      "addons.certManager.email",
      /moved to addons.certManager.issuer.email: pulumi config set --path 'addons.certManager.issuer.email' "old@example.com"/,
    );
    expectFinding(
      successors((a) => (a.certManager.rfc2136 = { nameserver: "ns1:53", tsigKeyName: "k" })),
      "addons.certManager.rfc2136",
      /moved to addons.certManager.issuer.rfc2136/,
    );
  });

  test("only cert-manager's TSIG algorithms", () => {
    expectFinding(
      successors((a) => (a.certManager.issuer.rfc2136.tsigAlgorithm = "HMACSHA384")),
      "addons.certManager.issuer.rfc2136.tsigAlgorithm",
      /HMACMD5.*HMACSHA512/,
    );
  });

  test.each([
    ["issuer.rfc2136.nameserver", (a: Raw) => (a.certManager.issuer.rfc2136.nameserver = "10.118.11.53")],
    ["recursiveNameservers[1]", (a: Raw) => (a.certManager.recursiveNameservers = ["1.1.1.1:53", "9.9.9.9"])],
  ])("nameservers are host:port (%s)", (key, fn) => {
    expectFinding(successors(fn), `addons.certManager.${key}`, /must be host:port like 10.118.11.53:53/);
  });

  test("a port above 65535 is refused", () => {
    expectFinding(
      successors((a) => (a.certManager.issuer.rfc2136.nameserver = "ns1.example.com:99999")),
      "addons.certManager.issuer.rfc2136.nameserver",
      /port above 65535/,
    );
  });

  test("caBundle must be PEM", () => {
    expectFinding(
      successors((a) => (a.certManager.issuer.caBundle = "MIIB...")),
      "addons.certManager.issuer.caBundle",
      /must be PEM certificates/,
    );
  });

  test("the cilium gateway needs cilium", () => {
    const raw = addonsConfig(successors((a) => (a.gateway.implementation = "cilium")));
    raw.cilium = { enabled: false };
    let err: ConfigError | undefined;
    try {
      parseStackConfig(NAMESPACE, raw, addonSecretKeys);
    } catch (e) {
      err = e as ConfigError;
    }
    const f = err?.findings.find((x) => x.key === "addons.gateway.implementation");
    expect(f?.message).toMatch(/set cilium.enabled and layers.cilium true, or addons.gateway.implementation traefik/);
    expect(err!.message).toContain(`${NAMESPACE}:addons.gateway.implementation: `);
  });

  test("Gateway API CRDs over plain http are refused; https and local paths are not", () => {
    expectFinding(
      successors((a) => (a.gateway.gatewayApiCrds = { source: "http://mirror.lab/standard-install.yaml" })),
      "addons.gateway.gatewayApiCrds.source",
      /must be an https:\/\/ URL or a path on this machine/,
    );
    for (const source of ["https://mirror.lab/standard-install.yaml", "./build/gateway-api/standard-install.yaml"])
      expect(planAddons(addonsSpec(successors((a) => (a.gateway.gatewayApiCrds = { source })))).gateway!.crds.source).toBe(source);
  });

  test.each(["certManager", "gateway", "ui", "dashboard", "ingressNginx"])("addons.%s.repository must be https or empty", (k) => {
    expectFinding(
      successors((a) => (a[k] = { ...a[k], repository: "http://charts.example.com" })),
      `addons.${k}.repository`,
      new RegExp(`must be an https:// chart repository \\(or "" for a local chart in addons.${k}.chart\\)`),
    );
  });

  test("a token shorter than the API server allows", () => {
    expectFinding(
      successors((a) => (a.ui.admin = { tokenDuration: "5m" })),
      "addons.ui.admin.tokenDuration",
      /below the 10 minutes .*use 10m or more/,
    );
  });

  test("a typo in a nested add-on key", () => {
    expectFinding(
      successors((a) => (a.ui.admn = {})),
      "addons.ui.admn",
      /is not a known key/,
    );
  });
});

describe("add-on plan", () => {
  const spec = addonsSpec();

  test("all successors on: the whole plan (golden)", () => {
    expectGolden("addons/successors.yaml", addonsPlanYaml(spec));
    expect(addonsPlanYaml(spec)).toBe(addonsPlanYaml(addonsSpec())); // deterministic
  });

  test("cert-manager: CRDs from the chart, kept unless asked; the stack's values win", () => {
    const keep = certManagerRelease(spec.config.addons);
    expect(keep).toEqual({
      name: "cert-manager",
      namespace: "cert-manager",
      chart: "cert-manager",
      version: "v1.21.2",
      repository: "https://charts.jetstack.io",
      values: { crds: { enabled: true, keep: true } },
    });
    const drop = addonsSpec(
      successors((a) => {
        a.certManager.crds = { keep: false };
        a.certManager.values = { crds: { enabled: true }, replicaCount: 2 };
      }),
    );
    expect(certManagerRelease(drop.config.addons).values).toEqual({ crds: { enabled: true, keep: false }, replicaCount: 2 });
  });

  test("split-horizon DNS: the controller checks through the given resolvers only", () => {
    const a = addonsSpec(successors((x) => (x.certManager.recursiveNameservers = ["10.118.11.53:53", "[2001:db8::53]:53"]))).config.addons;
    expect(certManagerRelease(a).values.extraArgs).toEqual([
      "--dns01-recursive-nameservers=10.118.11.53:53,[2001:db8::53]:53",
      "--dns01-recursive-nameservers-only",
    ]);
  });

  test("a local chart: no repository", () => {
    const a = addonsSpec(successors((x) => Object.assign(x.certManager, { repository: "", chart: "./charts/cert-manager-v1.21.2.tgz" })))
      .config.addons;
    const r = certManagerRelease(a);
    expect(r.chart).toBe("./charts/cert-manager-v1.21.2.tgz");
    expect("repository" in r).toBe(false);
  });

  test("the ClusterIssuer: ACME over DNS-01/RFC2136, the TSIG key by reference only", () => {
    expect(clusterIssuer(spec.config.addons)).toEqual({
      apiVersion: "cert-manager.io/v1",
      kind: "ClusterIssuer",
      metadata: { name: "letsencrypt" },
      spec: {
        acme: {
          server: "https://acme-v02.api.letsencrypt.org/directory",
          email: "admin@example.com",
          privateKeySecretRef: { name: "letsencrypt-account" },
          solvers: [
            {
              dns01: {
                rfc2136: {
                  nameserver: "10.118.11.53:53",
                  tsigKeyName: "k8s-baremetal.",
                  tsigAlgorithm: "HMACSHA512",
                  tsigSecretSecretRef: { name: "rfc2136-tsig", key: "tsig-secret-key" },
                },
              },
            },
          ],
        },
      },
    });
  });

  test("a private ACME server: its CA bundle base64 in spec.acme.caBundle", () => {
    const pem = "-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n";
    const a = addonsSpec(
      successors((x) => Object.assign(x.certManager.issuer, { name: "pebble", server: "https://pebble.lab:14000/dir", caBundle: pem })),
    ).config.addons;
    const acme = clusterIssuer(a).spec.acme as Record<string, unknown>;
    expect(acme.server).toBe("https://pebble.lab:14000/dir");
    expect(Buffer.from(acme.caBundle as string, "base64").toString()).toBe(pem);
    expect(acme.privateKeySecretRef).toEqual({ name: "pebble-account" });
  });

  test("a Certificate from the program's issuer", () => {
    expect(certificate(spec.config.addons, { name: "wildcard", namespace: "traefik", dnsNames: ["*.lab.example.com"] })).toEqual({
      apiVersion: "cert-manager.io/v1",
      kind: "Certificate",
      metadata: { name: "wildcard", namespace: "traefik" },
      spec: {
        secretName: "wildcard-tls",
        dnsNames: ["*.lab.example.com"],
        issuerRef: { group: "cert-manager.io", kind: "ClusterIssuer", name: "letsencrypt" },
      },
    });
  });

  test("Gateway API CRDs: the release the implementation supports, from its URL unless a source is given", () => {
    expect(planGatewayApiCrds(spec.config.addons)).toEqual({
      version: GATEWAY_API_VERSIONS.traefik,
      source: `https://github.com/kubernetes-sigs/gateway-api/releases/download/${GATEWAY_API_VERSIONS.traefik}/standard-install.yaml`,
      keep: true,
    });
    const cilium = addonsSpec(successors((a) => (a.gateway.implementation = "cilium"))).config.addons;
    expect(planGatewayApiCrds(cilium).version).toBe(GATEWAY_API_VERSIONS.cilium);
    const pinned = addonsSpec(successors((a) => (a.gateway.gatewayApiCrds = { version: "v1.4.0", keep: false }))).config.addons;
    expect(planGatewayApiCrds(pinned)).toEqual({
      version: "v1.4.0",
      source: "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.4.0/standard-install.yaml",
      keep: false,
    });
  });

  test("Traefik: the Gateway provider on, its service on the external VIPs (no cloud load balancer)", () => {
    expect(traefikRelease(spec).values).toEqual({
      providers: { kubernetesGateway: { enabled: true } },
      service: { spec: { type: "ClusterIP", externalIPs: ["10.118.11.20", "10.118.11.21", "10.118.11.22"] } },
    });
    const own = addonsSpec(successors((a) => (a.gateway.values = { service: { spec: { type: "NodePort" } } })));
    expect((traefikRelease(own).values.service as any).spec).toEqual({
      type: "NodePort",
      externalIPs: ["10.118.11.20", "10.118.11.21", "10.118.11.22"],
    });
  });

  test("cilium's gateway: no Traefik release, the CRDs still planned", () => {
    const g = planAddons(addonsSpec(successors((a) => (a.gateway.implementation = "cilium")))).gateway!;
    expect(g.traefik).toBeUndefined();
    expect(g.crds.version).toBe(GATEWAY_API_VERSIONS.cilium);
  });

  test("Headlamp: no cluster-admin for the pod; the admin logs in with a short-lived token", () => {
    expect(headlampRelease(spec.config.addons)).toMatchObject({
      name: "headlamp",
      namespace: "headlamp",
      values: { clusterRoleBinding: { create: false } },
    });
    expect(uiAdmin(spec.config.addons)).toEqual({
      namespace: "headlamp",
      serviceAccount: "headlamp-admin",
      tokenCommand: "kubectl -n headlamp create token headlamp-admin --duration=1h",
    });
    const own = addonsSpec(successors((a) => (a.ui.admin = { serviceAccount: "ops", tokenDuration: "8h" }))).config.addons;
    expect(uiAdmin(own)!.tokenCommand).toBe("kubectl -n headlamp create token ops --duration=8h");
    expect(uiAdmin(addonsSpec(successors((a) => (a.ui.admin = { enabled: false }))).config.addons)).toBeUndefined();
  });

  test("retired add-ons: a warning naming the retirement and the successor key", () => {
    expect(retiredAddonWarnings(spec.config.addons)).toEqual([]);
    const [dashboard, nginx] = retiredAddonWarnings(
      addonsSpec({ dashboard: { enabled: true }, ingressNginx: { enabled: true } }).config.addons,
    );
    expect(dashboard).toMatch(/^addons.dashboard: the Kubernetes Dashboard was archived in January 2026/);
    expect(dashboard).toMatch(/chart repository is gone.*use addons.ui \(Headlamp\)/);
    expect(nginx).toMatch(/^addons.ingressNginx: ingress-nginx has had no releases or security fixes since March 2026; use addons.gateway/);
    // a local copy of the archived chart is not told it will fail
    const local = addonsSpec({ dashboard: { enabled: true, repository: "", chart: "./charts/kubernetes-dashboard-7.13.0.tgz" } });
    expect(retiredAddonWarnings(local.config.addons)[0]).not.toMatch(/this install fails/);
  });

  test("nothing enabled: an empty plan", () => {
    expect(planAddons(devSpec())).toEqual({ warnings: [] });
  });
});

describe("cilium as the Gateway API implementation", () => {
  test("turns on cilium's gatewayAPI, only then", () => {
    const on = addonsSpec(successors((a) => (a.gateway.implementation = "cilium")));
    expect(ciliumValues(on).gatewayAPI).toEqual({ enabled: true });
    expect(ciliumValues(on).kubeProxyReplacement).toBe(true); // its prerequisite, already the seed's
    expect(ciliumValues(devSpec())).not.toHaveProperty("gatewayAPI");
    expect(ciliumValues(addonsSpec())).not.toHaveProperty("gatewayAPI"); // traefik
    const noAddons = addonsConfig(successors((a) => (a.gateway.implementation = "cilium")));
    noAddons.layers = { addons: false };
    expect(ciliumValues(parseStackConfig(NAMESPACE, noAddons, addonSecretKeys))).not.toHaveProperty("gatewayAPI");
  });

  test("cilium.values still win", () => {
    const raw = addonsConfig(successors((a) => (a.gateway.implementation = "cilium")));
    raw.cilium = { ...raw.cilium, values: { gatewayAPI: { hostNetwork: { enabled: true } } } };
    expect(ciliumValues(parseStackConfig(NAMESPACE, raw, addonSecretKeys)).gatewayAPI).toEqual({
      enabled: true,
      hostNetwork: { enabled: true },
    });
  });
});
