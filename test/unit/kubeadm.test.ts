import YAML from "yaml";
import { apiServerCertSANs, joinConfigYaml, joinConfiguration, kubeadmInitConfig, kubeadmJoinConfig } from "../../render/kubeadm";
import { parseStackConfig } from "../../model/parse";
import { NAMESPACE, devConfigCopy, devSecretKeys, devSpec } from "../fixtures/dev";
import { TEST_JOIN } from "../fixtures/keys";

type Obj = Record<string, any>;
const docs = (text: string): Obj[] =>
  YAML.parseAllDocuments(text).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS() as Obj;
  });
const byKind = (text: string) => Object.fromEntries(docs(text).map((d) => [d.kind, d]));
const argMap = (list: { name: string; value: string }[]) => Object.fromEntries(list.map((a) => [a.name, a.value]));

const spec = devSpec();
const [k1, k2, , k4] = spec.nodes;
const specWith = (mutate: (c: Obj) => void) => {
  const raw = devConfigCopy();
  mutate(raw);
  return parseStackConfig(NAMESPACE, raw, devSecretKeys);
};

describe("kubeadm init config (v1beta4)", () => {
  const init = byKind(kubeadmInitConfig(spec, k1));

  test("three documents: InitConfiguration, ClusterConfiguration, KubeletConfiguration", () => {
    expect(docs(kubeadmInitConfig(spec, k1)).map((d) => [d.apiVersion, d.kind])).toEqual([
      ["kubeadm.k8s.io/v1beta4", "InitConfiguration"],
      ["kubeadm.k8s.io/v1beta4", "ClusterConfiguration"],
      ["kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"],
    ]);
  });

  test("InitConfiguration: the seed's local endpoint and node registration; kube-proxy skipped", () => {
    const i = init.InitConfiguration;
    expect(i.localAPIEndpoint).toEqual({ advertiseAddress: "10.118.12.20", bindPort: 6443 });
    expect(i.nodeRegistration.name).toBe("k8s-1");
    expect(i.nodeRegistration.criSocket).toBe("unix:///run/containerd/containerd.sock");
    expect(i.nodeRegistration.kubeletExtraArgs).toEqual([{ name: "node-ip", value: "10.118.12.20" }]);
    expect(i.nodeRegistration.taints).toEqual([]);
    expect(i.skipPhases).toEqual(["addon/kube-proxy"]);
    expect(i.timeouts.controlPlaneComponentHealthCheck).toBe("4m0s");
    expect(i.certificateKey).toBeUndefined();
  });

  test("cgroup v1 hosts: the kubelet is told to run there and kubeadm skips SystemVerification", () => {
    expect(init.KubeletConfiguration.failCgroupV1).toBeUndefined();
    expect(init.InitConfiguration.nodeRegistration.ignorePreflightErrors).toBeUndefined();
    const v1 = specWith((c) => (c.cluster = { allowCgroupV1: true, ignorePreflightErrors: ["Swap", "SystemVerification"] }));
    const k = byKind(kubeadmInitConfig(v1, v1.nodes[0]));
    expect(k.KubeletConfiguration.failCgroupV1).toBe(false);
    expect(k.InitConfiguration.nodeRegistration.ignorePreflightErrors).toEqual(["Swap", "SystemVerification"]);
    const join = byKind(kubeadmJoinConfig(v1, v1.nodes[3], { token: TEST_JOIN.token, caCertHash: TEST_JOIN.caCertHash }));
    expect(join.JoinConfiguration.nodeRegistration.ignorePreflightErrors).toEqual(["Swap", "SystemVerification"]);
  });

  test("ClusterConfiguration: VIP endpoint, seed networking, proxy disabled", () => {
    const c = init.ClusterConfiguration;
    expect(c.controlPlaneEndpoint).toBe("10.118.12.100:6443");
    expect(c.kubernetesVersion).toBe(spec.config.cluster.kubernetesVersion);
    expect(c.clusterName).toBe("kubernetes");
    expect(c.networking).toEqual({ podSubnet: "10.244.0.0/16", serviceSubnet: "10.225.100.0/24", dnsDomain: "cluster.local" });
    expect(c.proxy).toEqual({ disabled: true });
  });

  test("certSANs: configured + VIP + control-plane wan1 addresses and names, sorted and unique", () => {
    const sans = init.ClusterConfiguration.apiServer.certSANs;
    expect(sans).toEqual(["10.118.12.20", "10.118.12.21", "10.118.12.22", "10.118.12.100", "127.0.0.1", "k8s-1", "k8s-2", "k8s-3"]);
    const dup = specWith((c) => (c.cluster = { certSANs: ["127.0.0.1", "10.118.12.100", "api.example.com"] }));
    expect(apiServerCertSANs(dup)).toEqual([
      "10.118.12.20",
      "10.118.12.21",
      "10.118.12.22",
      "10.118.12.100",
      "127.0.0.1",
      "api.example.com",
      "k8s-1",
      "k8s-2",
      "k8s-3",
    ]);
  });

  test("extraArgs are v1beta4 lists of {name, value}, strings only", () => {
    const c = init.ClusterConfiguration;
    for (const list of [c.apiServer.extraArgs, c.controllerManager.extraArgs, init.InitConfiguration.nodeRegistration.kubeletExtraArgs]) {
      expect(Array.isArray(list)).toBe(true);
      for (const a of list) {
        expect(Object.keys(a).sort()).toEqual(["name", "value"]);
        expect(typeof a.value).toBe("string");
      }
    }
  });

  test("health timing: seed controller-manager values; toleration seconds replace pod-eviction-timeout", () => {
    const c = init.ClusterConfiguration;
    expect(argMap(c.controllerManager.extraArgs)).toEqual({ "node-monitor-period": "2s", "node-monitor-grace-period": "16s" });
    expect(argMap(c.apiServer.extraArgs)).toEqual({
      "default-not-ready-toleration-seconds": "30",
      "default-unreachable-toleration-seconds": "30",
    });
    expect(kubeadmInitConfig(spec, k1)).toMatch(/# The seed's controller-manager pod-eviction-timeout \(30s\) was removed/);
    expect(JSON.stringify(c)).not.toContain("pod-eviction-timeout");
  });

  test("OIDC extraArgs when configured", () => {
    const s = specWith((c) => (c.cluster = { oidc: { issuerUrl: "https://id.example.com", clientId: "kube" } }));
    const a = argMap(byKind(kubeadmInitConfig(s, s.nodes[0])).ClusterConfiguration.apiServer.extraArgs);
    expect(a).toMatchObject({
      "oidc-issuer-url": "https://id.example.com",
      "oidc-client-id": "kube",
      "oidc-username-claim": "email",
      "oidc-groups-claim": "groups",
    });
  });

  test("KubeletConfiguration: nodeStatusUpdateFrequency; cgroupfs on OpenRC; isolation only when disabled", () => {
    const k = init.KubeletConfiguration;
    expect(k).toEqual({
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      cgroupDriver: "cgroupfs",
      nodeStatusUpdateFrequency: "4s",
    });
    const btrfs = specWith((c) => (c.cluster = { localStorageCapacityIsolation: false }));
    expect(byKind(kubeadmInitConfig(btrfs, btrfs.nodes[0])).KubeletConfiguration.localStorageCapacityIsolation).toBe(false);
  });

  test("cgroupDriver systemd under systemd", () => {
    const s = specWith((c) => (c.os = { family: "debian" }));
    expect(byKind(kubeadmInitConfig(s, s.nodes[0])).KubeletConfiguration.cgroupDriver).toBe("systemd");
  });

  test("config kubelet extra args are kept, node-ip is always the wan1 address", () => {
    const s = specWith((c) => (c.cluster = { kubeletExtraArgs: { "node-ip": "1.2.3.4", "max-pods": "200" } }));
    expect(byKind(kubeadmInitConfig(s, s.nodes[0])).InitConfiguration.nodeRegistration.kubeletExtraArgs).toEqual([
      { name: "max-pods", value: "200" },
      { name: "node-ip", value: "10.118.12.20" },
    ]);
  });

  test("untaintControlPlane false keeps kubeadm's default taint (no taints key)", () => {
    const s = specWith((c) => (c.cluster = { untaintControlPlane: false }));
    expect(byKind(kubeadmInitConfig(s, s.nodes[0])).InitConfiguration.nodeRegistration).not.toHaveProperty("taints");
  });

  test("certificateKey goes into InitConfiguration when given", () => {
    expect(byKind(kubeadmInitConfig(spec, k1, { certificateKey: TEST_JOIN.certificateKey })).InitConfiguration.certificateKey).toBe(
      TEST_JOIN.certificateKey,
    );
    expect(() => kubeadmInitConfig(spec, k1, { certificateKey: "short" })).toThrow(/64 hex/);
  });

  test("init on a worker is refused", () => {
    expect(() => kubeadmInitConfig(spec, k4)).toThrow(/not one/);
  });
});

describe("kubeadm join config (v1beta4)", () => {
  test("control plane: discovery via the VIP, controlPlane block with wan1 address and certificate key", () => {
    const [j] = docs(kubeadmJoinConfig(spec, k2, TEST_JOIN));
    expect([j.apiVersion, j.kind]).toEqual(["kubeadm.k8s.io/v1beta4", "JoinConfiguration"]);
    expect(j.discovery.bootstrapToken).toEqual({
      apiServerEndpoint: "10.118.12.100:6443",
      token: TEST_JOIN.token,
      caCertHashes: [TEST_JOIN.caCertHash],
    });
    expect(j.controlPlane).toEqual({
      localAPIEndpoint: { advertiseAddress: "10.118.12.21", bindPort: 6443 },
      certificateKey: TEST_JOIN.certificateKey,
    });
    expect(j.nodeRegistration).toEqual({
      name: "k8s-2",
      criSocket: "unix:///run/containerd/containerd.sock",
      kubeletExtraArgs: [{ name: "node-ip", value: "10.118.12.21" }],
      taints: [],
    });
  });

  test("worker: no controlPlane block, no certificate key, default taints", () => {
    const [j] = docs(kubeadmJoinConfig(spec, k4, { token: TEST_JOIN.token, caCertHash: TEST_JOIN.caCertHash }));
    expect(j.controlPlane).toBeUndefined();
    expect(j.nodeRegistration.kubeletExtraArgs).toEqual([{ name: "node-ip", value: "10.118.12.23" }]);
    expect(j.nodeRegistration).not.toHaveProperty("taints");
    expect(kubeadmJoinConfig(spec, k4, TEST_JOIN)).not.toContain(TEST_JOIN.certificateKey);
  });

  test("bad credentials fail clearly", () => {
    expect(() => kubeadmJoinConfig(spec, k4, { ...TEST_JOIN, token: "nope" })).toThrow(/token/);
    expect(() => kubeadmJoinConfig(spec, k4, { ...TEST_JOIN, caCertHash: "abc" })).toThrow(/caCertHash/);
    expect(() => kubeadmJoinConfig(spec, k2, { token: TEST_JOIN.token, caCertHash: TEST_JOIN.caCertHash })).toThrow(/certificateKey/);
  });

  test("the object the program records carries no credential; the join serialises it once, with them", () => {
    const doc = joinConfiguration(spec, k2);
    expect(doc.discovery.bootstrapToken).toEqual({ apiServerEndpoint: "10.118.12.100:6443" });
    expect(doc.controlPlane).toEqual({ localAPIEndpoint: { advertiseAddress: "10.118.12.21", bindPort: 6443 } });
    // what state holds survives a JSON round trip and renders the same file as the spec
    expect(joinConfigYaml(JSON.parse(JSON.stringify(doc)), TEST_JOIN)).toBe(kubeadmJoinConfig(spec, k2, TEST_JOIN));
    expect(doc).toEqual(joinConfiguration(spec, k2)); // not mutated
  });
});
