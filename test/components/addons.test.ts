// The Addons component (and cilium's Gateway API) under Pulumi's mocks: which resources a config
// declares, in which order, with which options, and that retired add-ons warn. (The engine and a
// live cluster are test/e2e's.)
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import { Addons } from "../../components/addons";
import { Cilium } from "../../components/cilium";
import { addonsSpec, successorAddons } from "../fixtures/addons";

const CRDS = path.join(__dirname, "../fixtures/gateway-api-crds.yaml");
// @pulumi/pulumi's marker of a secret value on the wire: { [SECRET_KEY]: SECRET_SIG, value }
const SECRET_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

interface Declared {
  type: string;
  name: string;
  props: Record<string, any>;
  opts: pulumi.ResourceOptions;
}
const created: { type: string; name: string; inputs: Record<string, any>; provider?: string }[] = [];

beforeAll(() => {
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        created.push({ type: args.type, name: args.name, inputs: args.inputs, provider: args.provider });
        return { id: `${args.name}-id`, state: args.inputs };
      },
      // the only invoke: @pulumi/kubernetes's YAML decoder, behind k8s.yaml.ConfigFile
      call(args) {
        if (args.token !== "kubernetes:yaml:decode") throw new Error(`unexpected invoke ${args.token}`);
        return { result: YAML.parseAllDocuments(args.inputs.text).map((d) => d.toJSON()) };
      },
    },
    "k8s-baremetal",
    "addons",
    false,
  );
});

/** Declare a component with `make`, wait until its tree is registered, return what it declared. */
async function declare(make: (opts: pulumi.ComponentResourceOptions) => pulumi.Resource, expected: number): Promise<Declared[]> {
  const declared: Declared[] = [];
  // a transformation on the component reaches every descendant and sees its final options
  make({
    transformations: [
      (a) => {
        // the component itself passes through here too: keep its children only
        if (!a.type.startsWith("k8sbm:")) declared.push({ type: a.type, name: a.name, props: a.props, opts: a.opts });
        return undefined;
      },
    ],
  });
  for (let i = 0; i < 100 && declared.length < expected; i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 200)); // and nothing more arrives
  return declared;
}

const provider = () => new k8s.Provider(`k8s-${created.length}`, { kubeconfig: "apiVersion: v1\nclusters: []\n" });
const names = (d: Declared[], type: string) => d.filter((x) => x.type === type).map((x) => x.name);
const one = (d: Declared[], name: string, type?: string) => d.find((x) => x.name === name && (!type || x.type === type))!;
const resolve = <T>(o: pulumi.Input<T>): Promise<T> => new Promise((r) => pulumi.output(o).apply((v) => r(v as T)));
/** the names of the resources an option's dependsOn lists */
const dependsOnNames = async (opts: pulumi.ResourceOptions): Promise<string[]> => {
  const deps = (await resolve(opts.dependsOn as pulumi.Input<pulumi.Input<pulumi.Resource>[]>)) ?? [];
  return Promise.all((deps as pulumi.Resource[]).map((r) => resolve(r.urn).then((u) => u.split("::").pop()!)));
};

describe("Addons with every successor on", () => {
  let d: Declared[];
  let addons: Addons;
  const warn = jest.spyOn(pulumi.log, "warn").mockImplementation(async () => {});

  beforeAll(async () => {
    const addonsConfig = successorAddons();
    (addonsConfig.gateway as Record<string, unknown>).gatewayApiCrds = { source: CRDS };
    const spec = addonsSpec(addonsConfig);
    d = await declare(
      (opts) =>
        (addons = new Addons("addons", { spec, provider: provider(), tsigSecret: pulumi.secret("c2VjcmV0LXRzaWc="), after: [] }, opts)),
      11,
    );
  });

  test("the releases: cert-manager, Traefik, Headlamp, from their chart repositories", () => {
    expect(names(d, "kubernetes:helm.sh/v3:Release").sort()).toEqual(["addons-cert-manager", "addons-headlamp", "addons-traefik"]);
    const traefik = one(d, "addons-traefik").props;
    expect(traefik).toMatchObject({
      name: "traefik",
      chart: "traefik",
      version: "41.6.0",
      namespace: "traefik",
      createNamespace: true,
      atomic: true,
      repositoryOpts: { repo: "https://traefik.github.io/charts" },
    });
    expect(traefik.values.providers).toEqual({ kubernetesGateway: { enabled: true } });
  });

  test("the TSIG key reaches its Secret as a secret, and nowhere else", async () => {
    const secret = one(d, "addons-tsig", "kubernetes:core/v1:Secret").props;
    expect(secret.metadata).toEqual({ name: "rfc2136-tsig", namespace: "cert-manager" });
    const sent = created.find((c) => c.name === "addons-tsig")!.inputs.stringData;
    expect(sent[SECRET_KEY]).toBe(SECRET_SIG); // the engine stores it encrypted
    expect(JSON.stringify(sent.value)).toContain("c2VjcmV0LXRzaWc=");
    const elsewhere = created.filter((c) => c.name !== "addons-tsig").map((c) => JSON.stringify(c.inputs));
    expect(elsewhere.join("\n")).not.toContain("c2VjcmV0LXRzaWc=");
  });

  test("the ClusterIssuer after the release and the Secret", async () => {
    const issuer = one(d, "addons-cluster-issuer", "kubernetes:cert-manager.io/v1:ClusterIssuer");
    expect(issuer.props.metadata).toEqual({ name: "letsencrypt" });
    expect(issuer.props.spec.acme.solvers[0].dns01.rfc2136.tsigSecretSecretRef).toEqual({ name: "rfc2136-tsig", key: "tsig-secret-key" });
    expect((await dependsOnNames(issuer.opts)).sort()).toEqual(["addons-cert-manager", "addons-tsig"]);
  });

  test("the Gateway API CRDs from the configured source, kept on disable, before Traefik", async () => {
    const crds = d.filter((x) => x.type === "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition");
    expect(crds.map((c) => c.props.metadata.name).sort()).toEqual([
      "gatewayclasses.gateway.networking.k8s.io",
      "gateways.gateway.networking.k8s.io",
    ]);
    for (const c of crds) expect(c.opts.retainOnDelete).toBe(true);
    expect(one(d, "addons-gateway-api-crds").props).toMatchObject({ file: CRDS });
    expect((await dependsOnNames(one(d, "addons-traefik").opts)).sort()).toEqual(crds.map((c) => c.name).sort());
  });

  test("Headlamp's admin: a ServiceAccount bound to cluster-admin, and the token command", () => {
    const sa = one(d, "addons-headlamp-admin", "kubernetes:core/v1:ServiceAccount").props;
    expect(sa.metadata).toEqual({ name: "headlamp-admin", namespace: "headlamp" });
    const crb = one(d, "addons-headlamp-admin", "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding").props;
    expect(crb.roleRef.name).toBe("cluster-admin");
    expect(crb.subjects).toEqual([{ kind: "ServiceAccount", name: "headlamp-admin", namespace: "headlamp" }]);
    expect(addons.uiTokenCommand).toBe("kubectl -n headlamp create token headlamp-admin --duration=1h");
    // no long-lived token: nothing of type kubernetes.io/service-account-token
    expect(d.filter((x) => x.props?.type === "kubernetes.io/service-account-token")).toEqual([]);
  });

  test("every child is under the component and uses its provider", () => {
    const custom = d.filter((x) => x.type !== "kubernetes:yaml:ConfigFile").map((x) => created.find((c) => c.name === x.name)!);
    for (const c of custom) expect(c.provider).toMatch(/::pulumi:providers:kubernetes::k8s-\d+::/);
    expect(d.map((x) => x.type).sort()).toEqual(
      [
        "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition",
        "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition",
        "kubernetes:cert-manager.io/v1:ClusterIssuer",
        "kubernetes:core/v1:Secret",
        "kubernetes:core/v1:ServiceAccount",
        "kubernetes:helm.sh/v3:Release",
        "kubernetes:helm.sh/v3:Release",
        "kubernetes:helm.sh/v3:Release",
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
        "kubernetes:yaml:ConfigFile",
      ].sort(),
    );
  });

  test("no warning", () => {
    expect(warn).not.toHaveBeenCalled();
  });
});

describe("Addons with the retired ones on", () => {
  let d: Declared[];
  const warn = jest.spyOn(pulumi.log, "warn").mockImplementation(async () => {});

  beforeAll(async () => {
    warn.mockClear();
    const spec = addonsSpec({ dashboard: { enabled: true }, ingressNginx: { enabled: true } });
    d = await declare((opts) => new Addons("retired", { spec, provider: provider(), after: [] }, opts), 4);
  });

  test("they are still installed, the Dashboard with its admin account", () => {
    expect(names(d, "kubernetes:helm.sh/v3:Release").sort()).toEqual(["retired-dashboard", "retired-ingress-nginx"]);
    expect(one(d, "retired-dashboard").props).toMatchObject({
      name: "kubernetes-dashboard",
      namespace: "kubernetes-dashboard",
      repositoryOpts: { repo: "https://kubernetes.github.io/dashboard/" },
    });
    expect(one(d, "retired-dashboard-admin", "kubernetes:core/v1:ServiceAccount").props.metadata).toEqual({
      name: "dashboard-admin",
      namespace: "kubernetes-dashboard",
    });
  });

  test("each warns at preview, naming the retirement and the successor key", () => {
    const messages = warn.mock.calls.map((c) => c[0]);
    expect(messages).toHaveLength(2);
    expect(messages[0]).toMatch(/^addons.dashboard: the Kubernetes Dashboard was archived in January 2026.*use addons.ui/);
    expect(messages[1]).toMatch(
      /^addons.ingressNginx: ingress-nginx has had no releases or security fixes since March 2026; use addons.gateway/,
    );
  });
});

describe("a disabled add-on is not declared (Pulumi deletes it)", () => {
  test("everything off: the component alone", async () => {
    const spec = addonsSpec({});
    const d = await declare((opts) => new Addons("none", { spec, provider: provider(), after: [] }, opts), 0);
    expect(d).toEqual([]);
  });

  test("a local chart: no repositoryOpts", async () => {
    const spec = addonsSpec({ ui: { enabled: true, repository: "", chart: "./charts/headlamp-0.45.0.tgz", admin: { enabled: false } } });
    let addons: Addons | undefined;
    const d = await declare((opts) => (addons = new Addons("local", { spec, provider: provider(), after: [] }, opts)), 1);
    expect(d.map((x) => x.name)).toEqual(["local-headlamp"]);
    expect(d[0].props.chart).toBe("./charts/headlamp-0.45.0.tgz");
    expect(d[0].props.repositoryOpts).toBeUndefined();
    expect(created.find((c) => c.name === "local-headlamp")!.inputs).not.toHaveProperty("repositoryOpts");
    expect(addons!.uiTokenCommand).toBeUndefined();
  });
});

describe("cilium as the Gateway API implementation", () => {
  test("the CRDs before the cilium release, which turns gatewayAPI on", async () => {
    const a = successorAddons();
    (a.gateway as Record<string, unknown>) = { enabled: true, implementation: "cilium", gatewayApiCrds: { source: CRDS, keep: false } };
    const spec = addonsSpec(a);
    spec.config.cilium.apiAccess = "direct"; // no SSH tunnel under mocks
    const d = await declare(
      (opts) =>
        new Cilium(
          "cilium",
          { spec, adminKubeconfig: pulumi.output("apiVersion: v1\nclusters: []\n"), tunnelVia: {} as never, after: [] },
          opts,
        ),
      5,
    );
    const release = one(d, "cilium", "kubernetes:helm.sh/v3:Release");
    expect(release.props.values.gatewayAPI).toEqual({ enabled: true });
    const crds = d.filter((x) => x.type === "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition");
    expect(crds).toHaveLength(2);
    for (const c of crds) expect(c.opts.retainOnDelete).toBeFalsy(); // keep: false
    expect((await dependsOnNames(release.opts)).sort()).toEqual(crds.map((c) => c.name).sort());
  });
});
