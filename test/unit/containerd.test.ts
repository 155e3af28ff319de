// containerd's configuration as the program writes it on every Kubernetes node (issue 13, item 4).
import { parseStackConfig } from "../../model/parse";
import { containerdConfig, registryHostsPath, registryHostsToml, sandboxImage } from "../../render/containerd";
import { cgroupDriver } from "../../render/kubeadm";
import { NAMESPACE, devConfigCopy, devSecretKeys, devSpec } from "../fixtures/dev";

type Raw = Record<string, any>;
const specWith = (fn: (c: Raw) => void) => {
  const c = devConfigCopy();
  fn(c);
  return parseStackConfig(NAMESPACE, c, devSecretKeys);
};
/** the value of `key = value` under `[section]` (enough TOML for the lines this renderer writes) */
function tomlValue(doc: string, section: string, key: string): string | undefined {
  let inSection = false;
  for (const line of doc.split("\n")) {
    const t = line.trim();
    if (t.startsWith("[")) inSection = t === `[${section}]`;
    else if (inSection && t.startsWith(`${key} = `)) return t.slice(key.length + 3);
  }
  return undefined;
}
const CRI = 'plugins."io.containerd.grpc.v1.cri"';

describe("containerd config", () => {
  test("the runc cgroup driver matches the kubelet's on that node", () => {
    const openrc = devSpec();
    expect(cgroupDriver(openrc.nodes[0])).toBe("cgroupfs");
    expect(tomlValue(containerdConfig(openrc, openrc.nodes[0]), `${CRI}.containerd.runtimes.runc.options`, "SystemdCgroup")).toBe("false");
    const systemd = specWith((c) => (c.os = { family: "debian" }));
    expect(cgroupDriver(systemd.nodes[0])).toBe("systemd");
    expect(tomlValue(containerdConfig(systemd, systemd.nodes[0]), `${CRI}.containerd.runtimes.runc.options`, "SystemdCgroup")).toBe("true");
  });

  test("the sandbox image is kubeadm's pause for the cluster's version, or the one configured", () => {
    const s = devSpec();
    expect(sandboxImage(s)).toBe("registry.k8s.io/pause:3.10.2");
    expect(tomlValue(containerdConfig(s, s.nodes[0]), CRI, "sandbox_image")).toBe('"registry.k8s.io/pause:3.10.2"');
    const mirrored = specWith((c) => (c.containerd = { sandboxImage: "registry.example.com:5000/k8s/pause:3.10.2" }));
    expect(tomlValue(containerdConfig(mirrored, mirrored.nodes[0]), CRI, "sandbox_image")).toBe(
      '"registry.example.com:5000/k8s/pause:3.10.2"',
    );
  });

  test("snapshotter, OOM score restriction and the registry host directory", () => {
    const s = devSpec();
    const doc = containerdConfig(s, s.nodes[0]);
    expect(doc).toMatch(/^# Managed by k8s-baremetal/);
    expect(doc).toContain("\nversion = 2\n");
    expect(tomlValue(doc, `${CRI}.containerd`, "snapshotter")).toBe('"overlayfs"');
    expect(tomlValue(doc, CRI, "restrict_oom_score_adj")).toBeUndefined();
    expect(tomlValue(doc, `${CRI}.registry`, "config_path")).toBe('"/etc/containerd/certs.d"');
    const lab = specWith((c) => (c.containerd = { snapshotter: "native", restrictOomScoreAdj: true }));
    const labDoc = containerdConfig(lab, lab.nodes[0]);
    expect(tomlValue(labDoc, `${CRI}.containerd`, "snapshotter")).toBe('"native"');
    expect(tomlValue(labDoc, CRI, "restrict_oom_score_adj")).toBe("true");
  });

  test("registry mirrors: one hosts.toml per registry, mirrors first, Docker Hub's API endpoint as server", () => {
    expect(registryHostsPath("docker.io")).toBe("/etc/containerd/certs.d/docker.io/hosts.toml");
    const doc = registryHostsToml("docker.io", ["https://mirror-a.example.com", "https://mirror-b.example.com:5000/v2/hub"]);
    expect(doc.split("\n")).toEqual([
      "# Managed by k8s-baremetal (Pulumi). Local edits are reverted.",
      'server = "https://registry-1.docker.io"',
      "",
      '[host."https://mirror-a.example.com"]',
      '  capabilities = ["pull", "resolve"]',
      "",
      '[host."https://mirror-b.example.com:5000/v2/hub"]',
      '  capabilities = ["pull", "resolve"]',
      "",
    ]);
    expect(registryHostsToml("registry.k8s.io", ["https://m.example.com"])).toContain('server = "https://registry.k8s.io"');
  });
});
