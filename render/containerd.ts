// containerd's configuration for a node (issue 13: the node runtime is the program's, not the
// distribution's defaults). Pure. Config format version 2: the one containerd 1.6 (Debian
// bookworm), 1.7 (Debian trixie, Ubuntu 24.04) and 2.x (Gentoo, migrated in memory at start)
// all read, so one renderer serves every OS family.
import type { ClusterSpec, NodeSpec } from "../model/model";
import { kubeadmPauseImage } from "../model/pause";
import { cgroupDriver } from "./kubeadm";
import { HASH_HEADER, text } from "./common";

export const CONTAINERD_CONFIG_PATH = "/etc/containerd/config.toml";
/** containerd's per-registry host files (hosts.toml), one directory per registry. */
export const CONTAINERD_CERTS_DIR = "/etc/containerd/certs.d";

/** The sandbox ("pause") image the node's containerd pins, or undefined when it cannot be known. */
export function sandboxImage(spec: ClusterSpec): string | undefined {
  return spec.config.containerd.sandboxImage ?? kubeadmPauseImage(spec.config.cluster.kubernetesVersion);
}

/** A TOML basic string (the values here are validated to a safe charset; quotes stay escaped anyway). */
const str = (s: string) => JSON.stringify(s);

export function containerdConfig(spec: ClusterSpec, node: NodeSpec): string {
  const c = spec.config.containerd;
  const sandbox = sandboxImage(spec);
  if (!sandbox) throw new Error(`no pause image known for ${spec.config.cluster.kubernetesVersion}: set containerd.sandboxImage`);
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return text([
    HASH_HEADER,
    "# containerd for the kubelet: cgroup driver, sandbox image and snapshotter matching what the",
    "# program configures for Kubernetes; registry hosts in " + CONTAINERD_CERTS_DIR + ".",
    "version = 2",
    "",
    `[${cri}]`,
    `  sandbox_image = ${str(sandbox)}`,
    ...(c.restrictOomScoreAdj
      ? ["  # the host lets no process lower its OOM score (containers, some VMs)", "  restrict_oom_score_adj = true"]
      : []),
    "",
    `[${cri}.containerd]`,
    `  snapshotter = ${str(c.snapshotter)}`,
    '  default_runtime_name = "runc"',
    "",
    `[${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    "",
    `[${cri}.containerd.runtimes.runc.options]`,
    `  # the kubelet's cgroupDriver on this node is ${cgroupDriver(node)}`,
    `  SystemdCgroup = ${cgroupDriver(node) === "systemd"}`,
    "",
    `[${cri}.registry]`,
    `  config_path = ${str(CONTAINERD_CERTS_DIR)}`,
  ]);
}

/** One registry's hosts.toml: pull and resolve through the mirrors in order, then the registry itself. */
export function registryHostsToml(registry: string, mirrors: readonly string[]): string {
  return text([
    HASH_HEADER,
    `server = ${str(upstream(registry))}`,
    ...mirrors.flatMap((m) => ["", `[host.${str(m)}]`, '  capabilities = ["pull", "resolve"]']),
  ]);
}

/** containerd's name for Docker Hub's API endpoint differs from the registry's image prefix. */
function upstream(registry: string): string {
  return registry === "docker.io" ? "https://registry-1.docker.io" : `https://${registry}`;
}

export function registryHostsPath(registry: string): string {
  return `${CONTAINERD_CERTS_DIR}/${registry}/hosts.toml`;
}
