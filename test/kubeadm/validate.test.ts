// Every kubeadm configuration the program can render goes through the real kubeadm of the
// pinned version (built from Go modules by scripts/setup-kube.sh): `kubeadm config validate`.
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { kubeadmInitConfig, kubeadmJoinConfig } from "../../render/kubeadm";
import { parseStackConfig } from "../../model/parse";
import type { ClusterSpec } from "../../model/model";
import { NAMESPACE, devConfigCopy, devSecretKeys } from "../fixtures/dev";
import { TEST_JOIN } from "../fixtures/keys";

const ROOT = path.resolve(__dirname, "../..");
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { config: { kubernetesVersion: string } }).config
  .kubernetesVersion;

let kubeadm: string;
let dir: string;

beforeAll(() => {
  const bin = execFileSync(path.join(ROOT, "scripts/setup-kube.sh"), { encoding: "utf8", timeout: 60 * 60_000 }).trim();
  kubeadm = path.join(bin, "kubeadm");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-kubeadm-"));
}, 60 * 60_000);

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function validate(name: string, yaml: string): void {
  const file = path.join(dir, `${name.replace(/[^a-z0-9-]+/gi, "_")}.yaml`);
  fs.writeFileSync(file, yaml);
  const r = spawnSync(kubeadm, ["config", "validate", "--config", file], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`kubeadm rejected ${name}:\n${r.stderr}${r.stdout}\n--- config ---\n${yaml}`);
  // kubeadm prints warnings for deprecated or unknown fields without failing: none allowed
  expect(r.stderr).not.toMatch(/W\d{4} |unknown field|deprecated/i);
}

const spec = (mutate: (c: Record<string, any>) => void = () => undefined): ClusterSpec => {
  const c = devConfigCopy();
  mutate(c);
  return parseStackConfig(NAMESPACE, c, devSecretKeys);
};

const variants: [string, ClusterSpec][] = [
  ["dev (gentoo/openrc)", spec()],
  ["systemd nodes", spec((c) => (c.os = { family: "debian" }))],
  ["no init (the SSH lab)", spec((c) => (c.os = { family: "debian", init: "none" }))],
  ["OIDC on", spec((c) => (c.cluster = { oidc: { issuerUrl: "https://id.example.com", clientId: "kubernetes" } }))],
  [
    "other health timings, extra SANs, btrfs workaround, kubelet args",
    spec(
      (c) =>
        (c.cluster = {
          health: {
            nodeMonitorPeriod: "5s",
            nodeMonitorGracePeriod: "40s",
            notReadyTolerationSeconds: 60,
            unreachableTolerationSeconds: 90,
            nodeStatusUpdateFrequency: "10s",
          },
          certSANs: ["127.0.0.1", "api.example.com", "203.0.113.7"],
          localStorageCapacityIsolation: false,
          kubeletExtraArgs: { "max-pods": "200" },
        }),
    ),
  ],
  ["control planes keep their taint", spec((c) => (c.cluster = { untaintControlPlane: false }))],
  ["cgroup v1 hosts, an ignored preflight check", spec((c) => (c.cluster = { allowCgroupV1: true, ignorePreflightErrors: ["Swap"] }))],
];

test("the stack's default Kubernetes version is the one the tooling builds", () => {
  expect(spec().config.cluster.kubernetesVersion).toBe(`v${VERSION}`);
  expect(execFileSync(kubeadm, ["version", "-o", "short"], { encoding: "utf8" }).trim()).toBe(`v${VERSION}`);
});

describe.each(variants)("%s", (name, s) => {
  const first = s.controlPlanes[0];
  const cp = s.controlPlanes[1];
  const worker = s.workers[0];

  test("init configuration", () => validate(`${name}-init`, kubeadmInitConfig(s, first)));
  test("init configuration with a chosen certificate key", () =>
    validate(`${name}-init-key`, kubeadmInitConfig(s, first, { certificateKey: TEST_JOIN.certificateKey })));
  test("control-plane join configuration", () => validate(`${name}-join-cp`, kubeadmJoinConfig(s, cp, TEST_JOIN)));
  test("worker join configuration", () =>
    validate(`${name}-join-worker`, kubeadmJoinConfig(s, worker, { token: TEST_JOIN.token, caCertHash: TEST_JOIN.caCertHash })));
});
