// When kubeadm's certificates are renewed: the earliest expiry read from `kubeadm certs
// check-expiration -o json` (output.kubeadm.k8s.io/v1alpha3, CertificateExpirationInfo), and the
// KubeadmInit diff that proposes a renewal only when one is due.
import { earliestExpiry, renewalDue } from "../../plan/certificates";
import * as initProvider from "../../providers/impl/kubeadm-init";
import * as joinProvider from "../../providers/impl/kubeadm-join";
import { controlPlaneMembership } from "../fixtures/membership";
import { clientCertificateExpiry } from "../../providers/impl/kubeconfig";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const DAY = 24 * 60 * 60 * 1000;

const cert = (name: string, expirationDate: string, extra: Record<string, unknown> = {}) => ({
  name,
  expirationDate,
  residualTime: 1,
  externallyManaged: false,
  missing: false,
  ...extra,
});

// the shape kubeadm v1.36 prints (cmd/kubeadm/app/apis/output/v1alpha3)
const checkExpiration = (certificates: object[]) =>
  JSON.stringify({
    kind: "CertificateExpirationInfo",
    apiVersion: "output.kubeadm.k8s.io/v1alpha3",
    certificates,
    certificateAuthorities: [cert("ca", "2036-11-30T07:00:00Z")],
  });

describe("earliestExpiry", () => {
  test("the earliest of the certificates kubeadm manages, as ISO", () => {
    const json = checkExpiration([
      cert("admin.conf", "2027-12-03T07:10:00Z"),
      cert("apiserver", "2027-12-03T07:09:59Z"),
      cert("etcd-peer", "2027-12-04T00:00:00Z"),
    ]);
    expect(earliestExpiry(json)).toBe("2027-12-03T07:09:59.000Z");
  });
  test("ignores missing and externally managed certificates (super-admin.conf exists only where init ran)", () => {
    const json = checkExpiration([
      cert("super-admin.conf", "0001-01-01T00:00:00Z", { missing: true }),
      cert("front-proxy-client", "2020-01-01T00:00:00Z", { externallyManaged: true }),
      cert("apiserver", "2027-06-01T00:00:00Z"),
    ]);
    expect(earliestExpiry(json)).toBe("2027-06-01T00:00:00.000Z");
  });
  test("fails when kubeadm listed none (the CAs alone do not count: kubeadm does not renew them)", () => {
    expect(() => earliestExpiry(checkExpiration([]))).toThrow(/listed no certificate/);
  });
});

describe("renewalDue", () => {
  const now = Date.parse("2026-12-03T00:00:00Z");
  const at = (days: number) => new Date(now + days * DAY).toISOString();
  test("the control planes whose earliest expiry falls within the window, sorted", () => {
    const expiry = { "k8s-3": at(10), "k8s-1": at(29.9), "k8s-2": at(30.1) };
    expect(renewalDue(expiry, 30, now)).toEqual(["k8s-1", "k8s-3"]);
    expect(renewalDue(expiry, 5, now)).toEqual([]);
    // a window beyond the certificates' lifetime renews on every run
    expect(renewalDue({ "k8s-1": at(365) }, 400, now)).toEqual(["k8s-1"]);
  });
  test("an expired certificate is due; no record is nothing due", () => {
    expect(renewalDue({ "k8s-1": at(-1) }, 1, now)).toEqual(["k8s-1"]);
    expect(renewalDue(undefined, 30, now)).toEqual([]);
    expect(renewalDue({}, 30, now)).toEqual([]);
  });
});

describe("a control plane's KubeadmJoin diff", () => {
  const { member: _m, certificateExpiry: _c, ...inputs } = controlPlaneMembership();
  const state = (certificateExpiry: string, extra: object = {}) => ({ ...inputs, member: true, certificateExpiry, ...extra }) as never;
  const inDays = (d: number) => new Date(Date.now() + d * DAY).toISOString();

  test("no change while its certificates have more than renewBeforeDays left", async () => {
    expect((await joinProvider.provider.diff("id", state(inDays(31)), inputs)).changes).toBe(false);
  });
  test("an update once they are due, never a replacement; a wider window makes the same ones due", async () => {
    const d = await joinProvider.provider.diff("id", state(inDays(29)), inputs);
    expect(d.changes).toBe(true);
    expect(d.replaces ?? []).toEqual([]);
    expect((await joinProvider.provider.diff("id", state(inDays(300)), { ...inputs, renewCertificatesBeforeDays: 400 })).changes).toBe(
      true,
    );
  });
  test("a worker has no kubeadm certificates to renew", async () => {
    const worker = { ...inputs, controlPlane: false, vipHandOver: null };
    expect((await joinProvider.provider.diff("id", { ...(state("") as object), ...worker } as never, worker)).changes).toBe(false);
  });
  test("state from before expiries were recorded shows a change once, for the update to read it", async () => {
    const { certificateExpiry: _, ...old } = state("") as Record<string, unknown>;
    expect((await joinProvider.provider.diff("id", old as never, inputs)).changes).toBe(true);
  });
});

/** A kubeconfig whose client certificate (self-signed by openssl) lasts `days`; its notAfter as openssl prints it. */
function kubeconfigFor(days: number): { kubeconfig: string; notAfter: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-cert-"));
  try {
    const [key, cert] = [path.join(dir, "k"), path.join(dir, "c")];
    const args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", String(days)];
    execFileSync("openssl", [...args, "-subj", "/CN=kubernetes-admin", "-keyout", key, "-out", cert], { stdio: "ignore" });
    const notAfter = execFileSync("openssl", ["x509", "-noout", "-enddate", "-in", cert], { encoding: "utf8" })
      .trim()
      .replace("notAfter=", "");
    const data = fs.readFileSync(cert).toString("base64");
    const kubeconfig = `apiVersion: v1\nkind: Config\nusers:\n- name: kubernetes-admin\n  user:\n    client-certificate-data: ${data}\n    client-key-data: x\n`;
    return { kubeconfig, notAfter };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("clientCertificateExpiry", () => {
  test("the admin kubeconfig's client certificate's notAfter, as openssl reads it", () => {
    const { kubeconfig, notAfter } = kubeconfigFor(42);
    expect(clientCertificateExpiry(kubeconfig)).toBe(new Date(notAfter).toISOString());
    expect(Date.parse(clientCertificateExpiry(kubeconfig)) - Date.now()).toBeGreaterThan(41 * DAY);
    expect(clientCertificateExpiry("apiVersion: v1\nkind: Config\nusers: []\n")).toBe("");
  });
});

describe("KubeadmInit diff: the stack's admin kubeconfig", () => {
  const inputs = {
    connection: { name: "k8s-1" },
    nodeName: "k8s-1",
    controlPlanes: [{ name: "k8s-1" }],
    configPath: "/etc/kubernetes/kubeadm-init.yaml",
    config: "c",
    untaint: true,
    dryRun: false,
    init: "systemd",
    server: "https://10.118.12.100:6443",
    restore: null,
    renewCertificatesBeforeDays: 30,
  } as never as initProvider.KubeadmInitInputs;
  const state = (adminKubeconfig: string) => ({ ...inputs, adminKubeconfig, caCertHash: "", dryRunOutput: "", generation: "g" }) as never;

  test("renewed (an update) once its certificate is within the window", async () => {
    const soon = kubeconfigFor(20).kubeconfig;
    expect((await initProvider.provider.diff("id", state(soon), inputs)).changes).toBe(true);
    expect((await initProvider.provider.diff("id", state(soon), { ...inputs, renewCertificatesBeforeDays: 10 })).changes).toBe(false);
    expect((await initProvider.provider.diff("id", state(kubeconfigFor(365).kubeconfig), inputs)).changes).toBe(false);
  });
  test("a rehearsal's empty kubeconfig is nothing to renew", async () => {
    expect((await initProvider.provider.diff("id", state(""), inputs)).changes).toBe(false);
  });
});
