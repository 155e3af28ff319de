// `cluster.rehearse`: `pulumi up` runs the real `kubeadm init --dry-run` (the pinned version,
// built from Go modules) with the program's config and flags on the first control plane of
// the SSH lab, and the stack shows kubeadm's output.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { describeTestbed } from "../testbed";
import { down, up, type TestbedState } from "../../testbed";
import { TestbedStack, ROOT, testbedStackConfig } from "../../testbed/stack";

const LAB = "rehearse";
const BASE_PORT = 22080;

/** Lab hosts see the machine's root through an overlay: kubeadm goes there before the lab exists. */
function installKubeadm(): void {
  const bin = execFileSync(path.join(ROOT, "scripts/setup-kube.sh"), { encoding: "utf8", timeout: 60 * 60_000 }).trim();
  const src = path.join(bin, "kubeadm");
  const dst = "/usr/local/bin/kubeadm";
  if (!fs.existsSync(dst) || !fs.readFileSync(dst).equals(fs.readFileSync(src))) fs.copyFileSync(src, dst);
  fs.chmodSync(dst, 0o755);
}

describeTestbed("kubeadm init rehearsal through pulumi up", () => {
  let lab: TestbedState;
  let stack: TestbedStack;
  let output: string;

  beforeAll(async () => {
    installKubeadm();
    lab = await up(4, LAB, { basePort: BASE_PORT });
    stack = new TestbedStack(
      testbedStackConfig({
        basePort: BASE_PORT,
        extra: { layers: { kubernetes: true, cilium: false, addons: false }, cluster: { rehearse: true } },
      }),
    );
    stack.init(lab, "rehearse");
    stack.run(["up", "--yes", "--skip-preview"]);
    output = stack.run(["stack", "output", "kubeadmDryRun", "--show-secrets"]).out;
  }, 60 * 60_000);

  afterAll(async () => {
    stack?.remove();
    await down(LAB);
  }, 5 * 60_000);

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
