// The component graph under Pulumi's mocks: which resources the dev stack declares, under
// which parents, and that secrets stay secret. (Mocks stand in for the engine here; the real
// engine runs in test/e2e.)
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { utils } from "ssh2";
import * as YAML from "yaml";
import { devConfig } from "../fixtures/dev";

const ROOT = path.resolve(__dirname, "../..");
const created: { type: string; name: string; urn: string; inputs: Record<string, unknown> }[] = [];

beforeAll(() => {
  const file = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")).config as Record<string, unknown>;
  const config: Record<string, string> = Object.fromEntries(Object.entries(file).map(([k, v]) => [k, JSON.stringify(v)]));
  config["k8s-baremetal:sshPrivateKey"] = utils.generateKeyPairSync("ed25519").private;
  config["k8s-baremetal:vrrpPassword"] = "somepass";
  pulumi.runtime.setAllConfig(config, ["k8s-baremetal:sshPrivateKey", "k8s-baremetal:vrrpPassword"]);
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        created.push({ type: args.type, name: args.name, urn: (args as { urn?: string }).urn ?? "", inputs: args.inputs });
        const pair = utils.generateKeyPairSync("ed25519");
        const extra = args.type.endsWith("SshHost")
          ? { hostKey: "ssh-ed25519 AAAA", fingerprint: "SHA256:x" }
          : args.type.endsWith("SshKeyPair")
            ? { publicKey: pair.public, privateKey: pair.private }
            : args.type.endsWith("LibvirtVolume")
              ? { path: `/var/lib/libvirt/images/${args.inputs.name}` }
              : args.type.endsWith("KubeadmInit")
                ? { adminKubeconfig: "apiVersion: v1\nclusters: []\n", caCertHash: `sha256:${"0".repeat(64)}` }
                : {};
        return { id: `${args.name}-id`, state: { ...args.inputs, ...extra } };
      },
      call: (args) => args.inputs,
    },
    "k8s-baremetal",
    "dev",
    false,
  );
});

test("Pulumi.dev.yaml is the seed lab of the unit fixtures, on Debian's cloud image", () => {
  const file = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")).config as Record<string, unknown>;
  const plain = Object.fromEntries(Object.entries(file).map(([k, v]) => [k.replace(/^k8s-baremetal:/, ""), v]));
  expect({ ...plain, lab: { ...(plain.lab as object), uri: undefined, domainType: undefined } }).toEqual({
    ...JSON.parse(JSON.stringify(devConfig)),
    os: { family: "debian", init: "systemd" },
    lab: { ...devConfig.lab, uri: undefined, domainType: undefined },
  });
});

test("the dev stack declares the whole cluster", async () => {
  const program = await import("../../index");
  await new Promise((r) => setTimeout(r, 500));
  const count = (t: string) => created.filter((c) => c.type === t).length;
  expect(count("pulumi-nodejs:dynamic/k8sbm:SshHost")).toBe(4);
  expect(count("pulumi-nodejs:dynamic/k8sbm:LibvirtNetwork")).toBe(2);
  expect(count("pulumi-nodejs:dynamic/k8sbm:LibvirtDomain")).toBe(4);
  // the lab's prerequisites are one resource every network, disk and VM waits for; a base image
  // given as a path is used as it is (no download)
  const hypervisor = created.filter((c) => c.type.endsWith("LibvirtHypervisor"));
  expect(hypervisor.map((c) => [c.name, c.inputs.uri, c.inputs.pool, c.inputs.domainType])).toEqual([
    ["lab-hypervisor", "qemu:///system", "default", "kvm"],
  ]);
  expect(count("pulumi-nodejs:dynamic/k8sbm:LibvirtImage")).toBe(0);
  // the cluster is named for itself, not for its first node
  expect(created.filter((c) => c.type.endsWith("KubeadmInit")).map((c) => c.name)).toEqual(["kubeadm-init"]);
  // every node has a membership, the first control plane's included (k8s-4 joins as a worker)
  expect(
    created
      .filter((c) => c.type.endsWith("KubeadmJoin"))
      .map((c) => c.name)
      .sort(),
  ).toEqual(["k8s-1-kubeadm-join", "k8s-2-kubeadm-join", "k8s-3-kubeadm-join", "k8s-4-kubeadm-join"]);
  // each membership carries the cluster's version (a change is its share of a rolling upgrade)
  // and, on the dev stack's Debian nodes, the version-pinned packages an upgrade installs
  expect(
    created.filter((c) => c.type.endsWith("KubeadmJoin")).map((c) => [c.inputs.kubernetesVersion, c.inputs.upgradePackages ?? null]),
  ).toEqual(Array(4).fill(["v1.36.3", { os: "debian", kubeadm: ["kubeadm=1.36.3-*"], node: ["kubelet=1.36.3-*", "kubectl=1.36.3-*"] }]));
  // the Kubernetes package repository on every node
  expect(count("pulumi-nodejs:dynamic/k8sbm:AptRepository")).toBe(4);
  expect(count("kubernetes:helm.sh/v3:Release")).toBe(1);
  // keepalived on the three control planes, none on the worker
  expect(
    created
      .filter((c) => c.name.endsWith("-keepalived"))
      .map((c) => c.name)
      .sort(),
  ).toEqual(["k8s-1-keepalived", "k8s-2-keepalived", "k8s-3-keepalived"]);
  // etcd snapshots on each control plane (systemd: the script, a service and its timer; OpenRC's
  // cron.d entry is test/unit/etcd-backup's), none on the worker, and no on-demand snapshot until
  // etcdBackup.snapshotNow is set
  const backupOf = (node: string) =>
    created
      .filter((c) => new RegExp(`^${node}-(etcd-snapshot|cron)`).test(c.name))
      .map((c) => `${c.type.replace(/.*:/, "")} ${c.name}`)
      .sort();
  expect(backupOf("k8s-2")).toEqual([
    "RemoteFile k8s-2-etcd-snapshot-script",
    "RemoteFile k8s-2-etcd-snapshot-service",
    "RemoteFile k8s-2-etcd-snapshot-timer",
    "Service k8s-2-etcd-snapshot-timer",
  ]);
  expect(backupOf("k8s-4")).toEqual([]);
  expect(count("pulumi-nodejs:dynamic/k8sbm:EtcdSnapshot")).toBe(0);
  const kubeconfig = program.kubeconfig as pulumi.Output<string>;
  expect(await (kubeconfig as unknown as { isSecret: Promise<boolean> }).isSecret).toBe(true);
});
