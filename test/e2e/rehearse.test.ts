// `cluster.rehearse`: `pulumi up` installs the Kubernetes packages from the repository the program
// configures and runs the real `kubeadm init --dry-run` (the pinned version, built from Go
// modules) with the program's config and flags on the first control plane of the SSH lab, and
// the stack shows kubeadm's output.
//
// The repository: a lab host serves a flat apt repository of the node image's .debs, signed with
// a key made for this run — the stand-in for the Kubernetes package repository (no network here).
// Everything else on the repository path is the program's, as on a real Debian server: the key
// downloaded by the node and checked against the pinned fingerprint, the `signed-by` source list,
// apt's signature check, installs pinned to the cluster's version and held.
import * as fs from "fs";
import * as path from "path";
import { describeTestbed } from "../testbed";
import { down, hostExec, up, type TestbedState } from "../../testbed";
import { buildAptRepo, type AptRepo } from "../../testbed/apt-repo";
import { nodeImageDir } from "../../testbed/node-image";
import { TestbedStack, testbedStackConfig } from "../../testbed/stack";

const LAB = "rehearse";
const BASE_PORT = 22080;
/** on the machine's root filesystem before the lab exists: every host sees it through its overlay */
const REPO_DIR = "/var/tmp/k8sbm-rehearse-repo";
/** served by k8s-4 on its wan1 address */
const REPO_URL = "http://10.118.12.23:8080/";
const PACKAGES = ["kubeadm", "kubelet", "kubectl", "cri-tools", "containerd"];

describeTestbed("kubeadm init rehearsal through pulumi up", () => {
  let lab: TestbedState;
  let stack: TestbedStack;
  let output: string;

  let repo: AptRepo;
  const sh = async (host: string, cmd: string) => (await hostExec(lab, host, cmd)).stdout;
  const repository = (over: Record<string, unknown> = {}) => ({
    packages: { kubernetesRepository: { url: REPO_URL, keyFingerprint: repo.fingerprint, ...over } },
  });

  beforeAll(async () => {
    repo = buildAptRepo(REPO_DIR, path.join(nodeImageDir(), "debs"));
    lab = await up(4, LAB, { basePort: BASE_PORT });
    // no kubeadm on any host yet: the program installs it
    for (const h of ["k8s-1", "k8s-4"]) expect(await sh(h, "command -v kubeadm || echo none")).toBe("none\n");
    await sh("k8s-4", `busybox httpd -p 10.118.12.23:8080 -h ${REPO_DIR} </dev/null >/dev/null 2>&1`);
    stack = new TestbedStack(
      testbedStackConfig({
        basePort: BASE_PORT,
        extra: { layers: { kubernetes: true, cilium: false, addons: false }, cluster: { rehearse: true }, ...repository() },
      }),
    );
    stack.init(lab, "rehearse");
    stack.run(["up", "--yes", "--skip-preview"]);
    output = stack.run(["stack", "output", "kubeadmDryRun", "--show-secrets"]).out;
  }, 60 * 60_000);

  afterAll(async () => {
    stack?.remove();
    await down(LAB);
    fs.rmSync(REPO_DIR, { recursive: true, force: true });
  }, 5 * 60_000);

  test("every node took the packages from the repository, pinned to the cluster's version and held", async () => {
    const version = stack.spec().config.cluster.kubernetesVersion.replace(/^v/, "");
    for (const h of ["k8s-1", "k8s-2", "k8s-3", "k8s-4"]) {
      expect(await sh(h, "cat /etc/apt/sources.list.d/kubernetes.list")).toBe(
        `deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.asc] ${REPO_URL} /\n`,
      );
      expect(await sh(h, "cat /etc/apt/keyrings/kubernetes-apt-keyring.asc")).toBe(
        fs.readFileSync(path.join(REPO_DIR, "Release.key"), "utf8"),
      );
      const installed = await sh(h, `dpkg-query -W -f='\${Package} \${Version}\\n' ${PACKAGES.join(" ")}`);
      for (const p of ["kubeadm", "kubelet", "kubectl"]) expect(installed).toContain(`${p} ${version}-1.1\n`);
      expect((await sh(h, "apt-mark showhold")).split("\n").sort()).toEqual(["", "kubeadm", "kubectl", "kubelet"]);
      // apt checked the signature: the index came from the repository's InRelease
      expect(await sh(h, "apt-cache policy kubeadm")).toContain("http://10.118.12.23:8080");
      expect(await sh(h, "command -v kubeadm")).toBe("/usr/bin/kubeadm\n");
    }
  });

  test("a key with another fingerprint is refused before apt trusts it, naming both and the key", async () => {
    const before = await sh("k8s-1", "md5sum /etc/apt/keyrings/kubernetes-apt-keyring.asc /etc/apt/sources.list.d/kubernetes.list");
    const wrong = "DE15B14486CD377B9E876E1A234654DA9A296436";
    const saved = stack.editConfig((c) => Object.assign(c, repository({ keyFingerprint: wrong })));
    try {
      const r = stack.run(["up", "--yes", "--skip-preview"], { allowFail: true });
      expect(r.code).not.toBe(0);
      expect(r.out).toContain(`the signing key at ${REPO_URL}Release.key has fingerprint ${repo.fingerprint}, not the pinned`);
      expect(r.out).toContain(`packages.kubernetesRepository.keyFingerprint ${wrong}`);
    } finally {
      stack.restoreConfig(saved);
    }
    // nothing changed on the node, and nothing was left beside the keyring
    expect(await sh("k8s-1", "md5sum /etc/apt/keyrings/kubernetes-apt-keyring.asc /etc/apt/sources.list.d/kubernetes.list")).toBe(before);
    expect(await sh("k8s-1", "ls /etc/apt/keyrings")).toBe("kubernetes-apt-keyring.asc\n");
    stack.run(["up", "--yes", "--skip-preview"]);
  });

  test("drift: a removed source list shows in preview --refresh and up puts it back", async () => {
    await sh("k8s-2", "rm /etc/apt/sources.list.d/kubernetes.list");
    const preview = stack.run(["preview", "--refresh", "--diff"]).out;
    expect(preview).toMatch(/k8s-2-kubernetes-repository/);
    expect(preview).not.toMatch(/k8s-[134]-kubernetes-repository/);
    stack.run(["up", "--yes", "--skip-preview", "--refresh"]);
    expect(await sh("k8s-2", "cat /etc/apt/sources.list.d/kubernetes.list")).toContain(REPO_URL);
  });

  test("kubeadm ran the dry run to its end", () => {
    expect(output).toMatch(/dry.?run/i);
    expect(output).toMatch(/Your Kubernetes control-plane has initialized successfully|kubeadm join/);
  });

  test("the API endpoint is the control-plane VIP", () => {
    expect(output).toContain("10.118.12.100:6443");
  });

  test("the apiserver certificate carries the SANs", () => {
    const sans = /apiserver serving cert is signed for DNS names \[([^\]]*)\] and IPs \[([^\]]*)\]/.exec(output);
    expect(sans).not.toBeNull();
    for (const ip of ["127.0.0.1", "10.118.12.100", "10.118.12.20", "10.118.12.21", "10.118.12.22"])
      expect(sans![2].split(" ")).toContain(ip);
    expect(sans![1].split(" ")).toEqual(expect.arrayContaining(["k8s-1", "k8s-2", "k8s-3"]));
  });

  test("pod and service subnets reach the control-plane manifests", () => {
    expect(output).toContain("--cluster-cidr=10.244.0.0/16");
    expect(output).toContain("--service-cluster-ip-range=10.225.100.0/24");
  });

  test("kube-proxy is skipped (cilium replaces it)", () => {
    expect(output).not.toMatch(/Applied essential addon: kube-proxy/);
    expect(output).toMatch(/Applied essential addon: CoreDNS/);
  });

  test("the state holds the dry run only as a secret", () => {
    const token = /--token ([a-z0-9]{6}\.[a-z0-9]{16})/.exec(output)?.[1];
    expect(token).toBeDefined();
    expect(stack.run(["stack", "export"]).out).not.toContain(token!);
  });

  test("a second preview proposes no change", () => {
    stack.run(["preview", "--expect-no-changes"]);
  });
});
