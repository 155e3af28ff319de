// Day-2 guards (plan/day2.ts): changes a live cluster cannot take are refused at preview, naming
// the config key and the way that works; everything else passes. Inputs are the real renders.
import YAML from "yaml";
import { initRefusals, joinRefusals, memberSettings, settingsChanges } from "../../plan/day2";
import { parseStackConfig } from "../../model/parse";
import { joinConfiguration, kubeadmInitConfig } from "../../render/kubeadm";
import { NAMESPACE, devConfigCopy, devSecretKeys, devSpec } from "../fixtures/dev";

type Raw = Record<string, any>;
const specWith = (fn: (c: Raw) => void) => {
  const c = devConfigCopy();
  fn(c);
  return parseStackConfig(NAMESPACE, c, devSecretKeys);
};
const live = devSpec();
const init = (s = live, first = 0) => ({
  config: kubeadmInitConfig(s, s.controlPlanes[first]),
  dryRun: false,
  nodeName: s.controlPlanes[first].name,
});
const join = (s = live, name = "k8s-4") => {
  const node = s.nodes.find((n) => n.name === name)!;
  return { nodeName: name, controlPlane: node.controlPlane, joinConfiguration: joinConfiguration(s, node) };
};
const reasons = (r: { reason: string }[]) => r.map((x) => x.reason).join("\n");

describe("KubeadmInit on a live cluster", () => {
  test("no cluster yet (first up, or only a rehearsal): nothing is refused", () => {
    expect(initRefusals({}, init(specWith((c) => (c.cluster = { podSubnet: "10.250.0.0/16" }))))).toEqual([]);
    expect(initRefusals({ ...init(), dryRun: true }, init(specWith((c) => (c.cluster = { podSubnet: "10.250.0.0/16" }))))).toEqual([]);
  });

  test("an unchanged config, and changes the program carries, pass", () => {
    expect(initRefusals(init(), init())).toEqual([]);
    expect(initRefusals(init(), init(specWith((c) => (c.cluster = { health: { nodeMonitorGracePeriod: "20s" } }))))).toEqual([]);
    // a new first control plane (the old one replaced) brings its own address
    expect(initRefusals(init(), init(live, 1))).toEqual([]);
  });

  test("turning on cluster.rehearse is refused: it would replace the cluster", () => {
    const r = initRefusals(init(), { ...init(), dryRun: true });
    expect(r).toHaveLength(1);
    expect(r[0].property).toBe("dryRun");
    expect(r[0].reason).toMatch(
      /^cluster\.rehearse: this stack already has a cluster \(kubeadm init ran on k8s-1\).*pulumi stack init rehearse/,
    );
  });

  test.each([
    ["cluster.podSubnet", (c: Raw) => (c.cluster = { podSubnet: "10.250.0.0/16" }), /"10.244.0.0\/16" to "10.250.0.0\/16"/],
    ["cluster.serviceSubnet", (c: Raw) => (c.cluster = { serviceSubnet: "10.96.0.0/12" }), /Service/],
    ["cluster.dnsDomain", (c: Raw) => (c.cluster = { dnsDomain: "example.internal" }), /CoreDNS/],
    ["cluster.name", (c: Raw) => (c.cluster = { name: "other" }), /new cluster/],
    ["vrrp.controlPlane.vip / cluster.apiServerPort", (c: Raw) => (c.cluster = { apiServerPort: 7443 }), /:7443/],
  ])("%s cannot change", (key, fn, detail) => {
    const r = initRefusals(init(), init(specWith(fn)));
    expect(r.map((x) => x.property)).toEqual(["config"]);
    expect(r[0].reason.startsWith(`${key} cannot change`)).toBe(true);
    expect(r[0].reason).toMatch(detail);
  });

  test.each([
    ["v1.35.9", /that is a downgrade, which kubeadm does not do.*keep v1\.36\.3/],
    ["v1.36.2", /that is a downgrade/],
    ["v1.38.0", /one minor version at a time \(the version-skew policy\), so v1\.37 comes first/],
    ["v1.40.1", /one minor version at a time/],
  ])("cluster.kubernetesVersion v1.36.3 -> %s says why", (to, detail) => {
    // another minor needs its pause image named (the program knows v1.36's)
    const s = specWith((c) => ((c.cluster = { kubernetesVersion: to }), (c.containerd = { sandboxImage: "registry.k8s.io/pause:3.10" })));
    const r = initRefusals(init(), init(s));
    expect(r).toHaveLength(1);
    expect(r[0].reason).toMatch(
      new RegExp(`^cluster\\.kubernetesVersion cannot change from "v1\\.36\\.3" to "${to.replace(/\./g, "\\.")}"`),
    );
    expect(r[0].reason).toMatch(detail);
  });

  test.each(["v1.36.4", "v1.37.0"])("cluster.kubernetesVersion v1.36.3 -> %s is a rolling upgrade, not refused here", (to) => {
    const s = specWith((c) => ((c.cluster = { kubernetesVersion: to }), (c.containerd = { sandboxImage: "registry.k8s.io/pause:3.10" })));
    expect(initRefusals(init(), init(s))).toEqual([]);
  });

  test("the first control plane's own wan1 address cannot change while it is a member", () => {
    const moved = specWith((c) => (c.nodes[0].wan1.address = "10.118.12.40/24"));
    expect(reasons(initRefusals(init(), init(moved)))).toMatch(
      /^nodes\[\]\.wan1\.address of k8s-1 cannot change from 10\.118\.12\.20 to 10\.118\.12\.40/,
    );
  });
});

describe("KubeadmJoin of a joined node", () => {
  test("no change, a new node, and changes the program carries pass", () => {
    expect(joinRefusals(join(), join())).toEqual([]);
    expect(joinRefusals({}, join())).toEqual([]);
    expect(joinRefusals(join(), join(specWith((c) => (c.cluster = { kubeletExtraArgs: { v: "2" } }))))).toEqual([]);
  });

  test("a worker does not become a control plane in place, nor the reverse: the remove-then-add procedure is named", () => {
    // k8s-3 and k8s-4 swap roles (3 control planes either way)
    const swapped = specWith((c) => ((c.nodes[3].roles = ["control-plane", "balancer"]), (c.nodes[2].roles = ["worker"])));
    const up = joinRefusals(join(), join(swapped));
    expect(up.map((x) => x.property)).toContain("controlPlane");
    expect(reasons(up)).toMatch(/nodes\[\]\.roles of k8s-4: a worker does not become a control plane in place.*Remove k8s-4 from nodes/);
    expect(reasons(joinRefusals(join(live, "k8s-3"), join(swapped, "k8s-3")))).toMatch(/a control plane does not become a worker/);
  });

  test("a version change on a node whose packages the program does not pin is refused, naming the node and the way", () => {
    const pinned = { os: "debian", kubeadm: ["kubeadm=1.37.0-*"], node: ["kubelet=1.37.0-*", "kubectl=1.37.0-*"] };
    const at = (kubernetesVersion: string, upgradePackages: unknown) => ({ ...join(), kubernetesVersion, upgradePackages });
    expect(joinRefusals(at("v1.36.3", pinned), at("v1.37.0", pinned))).toEqual([]);
    // state written before members recorded the version: nothing to compare
    expect(joinRefusals(at("", null), at("v1.37.0", null))).toEqual([]);
    const r = joinRefusals(at("v1.36.3", null), at("v1.37.0", null));
    expect(r.map((x) => x.property)).toEqual(["kubernetesVersion"]);
    expect(r[0].reason).toMatch(
      /^cluster\.kubernetesVersion: k8s-4 takes kubeadm, kubelet and kubectl from packages the program does not pin.*packages\.kubernetesRepository.*kubeadm's procedure/,
    );
  });

  test("a joined node's wan1 address, and the control-plane endpoint, cannot change", () => {
    const moved = specWith((c) => (c.nodes[3].wan1.address = "10.118.12.44/24"));
    expect(reasons(joinRefusals(join(), join(moved)))).toMatch(
      /^nodes\[\]\.wan1\.address of k8s-4 cannot change from 10\.118\.12\.23 to 10\.118\.12\.44/,
    );
    const vip = specWith((c) => (c.vrrp.controlPlane.vip = "10.118.12.101/24"));
    expect(reasons(joinRefusals(join(), join(vip)))).toMatch(
      /vrrp\.controlPlane\.vip \/ cluster\.apiServerPort cannot change from "10\.118\.12\.100:6443" to "10\.118\.12\.101:6443"/,
    );
  });
});

describe("member settings", () => {
  const settings = (s = live, cp = true) => memberSettings(kubeadmInitConfig(s, s.controlPlanes[0]), cp, s.config.cluster.certSANs);

  test("a worker gets the kubelet's; a control plane also the cluster configuration and the configured certSANs, not the rendered ones", () => {
    const worker = YAML.parse(settings(live, false));
    expect(Object.keys(worker)).toEqual(["kubelet"]);
    expect(worker.kubelet.nodeStatusUpdateFrequency).toBe("4s");
    const cp = YAML.parse(settings());
    expect(cp.controlPlane.controllerManager.extraArgs).toContainEqual({ name: "node-monitor-grace-period", value: "16s" });
    expect(cp.controlPlane.apiServer.certSANs).toBeUndefined();
    expect(cp.servingCertSANs).toEqual(["127.0.0.1"]);
  });

  test("a new set of control planes (new certSANs) changes nothing a member applies", () => {
    const replaced = specWith((c) => (c.nodes[0].roles = ["worker"]) && (c.nodes[3].roles = ["control-plane", "balancer"]));
    expect(settingsChanges(settings(), settings(replaced))).toEqual({ kubelet: false, controlPlane: false, servingCertSANs: false });
  });

  test("each change names the part it is in", () => {
    const kubelet = specWith((c) => (c.cluster = { health: { nodeStatusUpdateFrequency: "5s" } }));
    expect(settingsChanges(settings(), settings(kubelet))).toEqual({ kubelet: true, controlPlane: false, servingCertSANs: false });
    const cm = specWith((c) => (c.cluster = { health: { nodeMonitorGracePeriod: "20s" } }));
    expect(settingsChanges(settings(), settings(cm))).toEqual({ kubelet: false, controlPlane: true, servingCertSANs: false });
    expect(settingsChanges(settings(live, false), settings(cm, false))).toEqual({
      kubelet: false,
      controlPlane: false,
      servingCertSANs: false,
    });
    const sans = specWith((c) => (c.cluster = { certSANs: ["127.0.0.1", "api.k8sbm.test"] }));
    expect(settingsChanges(settings(), settings(sans))).toEqual({ kubelet: false, controlPlane: false, servingCertSANs: true });
    expect(settings(sans)).toMatch(/servingCertSANs:\n {2}- 127\.0\.0\.1\n {2}- api\.k8sbm\.test\n/);
    // a worker's settings carry no SANs: nothing to reissue there
    expect(settingsChanges(settings(live, false), settings(sans, false)).servingCertSANs).toBe(false);
  });

  test("settings recorded before they carried the SANs: the first update records them, reissues nothing", () => {
    const recorded = YAML.stringify({ ...YAML.parse(settings()), servingCertSANs: undefined });
    expect(recorded).not.toContain("servingCertSANs");
    const sans = specWith((c) => (c.cluster = { certSANs: ["api.k8sbm.test"] }));
    expect(settingsChanges(recorded, settings(sans))).toEqual({ kubelet: false, controlPlane: false, servingCertSANs: false });
  });
});
