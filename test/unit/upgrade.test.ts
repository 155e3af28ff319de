// The rolling upgrade's pure parts (plan/upgrade.ts) and its command lines: which version the
// rendered config names, the packages each node's steps install, the cluster-health gate, and
// what kubeadm and kubectl are asked to do.
import {
  DRAINED_ANNOTATION,
  clusterVersion,
  healthProblems,
  ignoredPreflightErrors,
  initPreflightIgnores,
  kubePackagesOf,
  nodesAt,
  parseNodeStatus,
} from "../../plan/upgrade";
import * as k from "../../providers/impl/kubeadm-commands";
import { parseStackConfig } from "../../model/parse";
import { kubeadmInitConfig } from "../../render/kubeadm";
import { NAMESPACE, devConfigCopy, devSecretKeys, devSpec } from "../fixtures/dev";

type Raw = Record<string, any>;
const specWith = (fn: (c: Raw) => void) => {
  const c = devConfigCopy();
  fn(c);
  return parseStackConfig(NAMESPACE, c, devSecretKeys);
};

test("the version a rendered config moves the cluster to", () => {
  const s = devSpec();
  expect(clusterVersion(kubeadmInitConfig(s, s.controlPlanes[0]))).toBe("v1.36.3");
  expect(clusterVersion("kind: InitConfiguration\n")).toBe("");
});

test("kubeadm upgrade skips the preflight checks init skips", () => {
  const s = specWith((c) => (c.cluster = { allowCgroupV1: true, ignorePreflightErrors: ["Swap"] }));
  expect(initPreflightIgnores(kubeadmInitConfig(s, s.controlPlanes[0])).sort()).toEqual(["Swap", "SystemVerification"]);
  expect(ignoredPreflightErrors({ name: "k8s-4" })).toEqual([]);
  expect(k.upgradeApplyCommand("v1.37.2", ["Swap", "SystemVerification"])).toBe(
    "kubeadm upgrade apply 'v1.37.2' --yes --ignore-preflight-errors='Swap,SystemVerification'",
  );
  expect(k.upgradeNodeCommand()).toBe("kubeadm upgrade node");
});

describe("the packages a node's upgrade moves", () => {
  test("Debian/Ubuntu with the Kubernetes repository: kubeadm first, then kubelet and kubectl, each pinned", () => {
    const s = specWith((c) => (c.cluster = { kubernetesVersion: "v1.37.2" }));
    expect(kubePackagesOf(s.config, "debian")).toEqual({
      os: "debian",
      kubeadm: ["kubeadm=1.37.2-*"],
      node: ["kubelet=1.37.2-*", "kubectl=1.37.2-*"],
    });
  });

  test("no pinned packages, no upgrade path: Gentoo, or the repository turned off", () => {
    expect(kubePackagesOf(devSpec().config, "gentoo")).toBeNull();
    const off = specWith((c) => (c.packages = { kubernetesRepository: false }));
    expect(kubePackagesOf(off.config, "debian")).toBeNull();
  });
});

describe("the cluster-health gate", () => {
  const listed = ["k8s-1 v1.36.3 True ", "k8s-2 v1.37.2 True true", "k8s-3 v1.36.3 False ", "k8s-4 v1.36.3 Unknown ", ""].join("\n");

  test("node lines parse: version, Ready, cordoned", () => {
    expect(parseNodeStatus(listed)).toEqual([
      { name: "k8s-1", kubeletVersion: "v1.36.3", ready: true, unschedulable: false },
      { name: "k8s-2", kubeletVersion: "v1.37.2", ready: true, unschedulable: true },
      { name: "k8s-3", kubeletVersion: "v1.36.3", ready: false, unschedulable: false },
      { name: "k8s-4", kubeletVersion: "v1.36.3", ready: false, unschedulable: false },
    ]);
  });

  test("every node not Ready and every unhealthy etcd member is named; a healthy cluster has none", () => {
    const nodes = parseNodeStatus(listed);
    expect(
      healthProblems(nodes, [
        { name: "k8s-1", healthy: true },
        { name: "k8s-2", healthy: false },
      ]),
    ).toEqual(["node k8s-3 is not Ready", "node k8s-4 is not Ready", "etcd member k8s-2 is unhealthy"]);
    expect(healthProblems(nodes.slice(0, 2), [{ name: "k8s-1", healthy: true }])).toEqual([]);
  });

  test("nodes at a version, with or without its v", () => {
    const nodes = parseNodeStatus(listed);
    expect(nodesAt(nodes, "v1.37.2")).toEqual({ done: ["k8s-2"], left: ["k8s-1", "k8s-3", "k8s-4"] });
    expect(nodesAt(nodes, "1.37.2").done).toEqual(["k8s-2"]);
  });
});

test("a drained node is marked, and its uncordon takes the mark off", () => {
  expect(k.annotateDrainedCommand("k8s-4", "v1.37.2")).toContain(`annotate node 'k8s-4' --overwrite '${DRAINED_ANNOTATION}=v1.37.2'`);
  expect(k.drainedAnnotationCommand("k8s-4")).toContain("{.metadata.annotations.k8s-baremetal/drained-for-upgrade}");
  expect(k.uncordonCommand("k8s-4")).toMatch(/uncordon 'k8s-4' .*annotate node 'k8s-4' 'k8s-baremetal\/drained-for-upgrade-'/);
});
