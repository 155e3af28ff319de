// Host preparation files (SPEC §2). Pure. Whole files carry the header; single lines meant for
// shared files (/etc/fstab, /etc/hosts, /etc/rc.conf) do not.
import type { NodeSpec } from "../model/model";
import { HASH_HEADER, assertSafeWord, text } from "./common";

export const SYSCTL_PATH = "/etc/sysctl.d/90-k8s-baremetal.conf";
export const MODULES_LOAD_PATH = "/etc/modules-load.d/k8s-baremetal.conf";
export const CRICTL_PATH = "/etc/crictl.yaml";
export const KUBELET_CONFD_PATH = "/etc/conf.d/kubelet";
/**
 * Named 90-… (not 10-…): drop-ins apply in lexical order and the distro kubeadm package ships
 * 10-kubeadm.conf, whose own `ExecStart=` reset would otherwise discard ours.
 */
export const KUBELET_SYSTEMD_DROPIN_PATH = "/etc/systemd/system/kubelet.service.d/90-k8s-baremetal.conf";

export const SYSCTLS: Readonly<Record<string, string>> = {
  // the node routes pod and service traffic
  "net.ipv4.ip_forward": "1",
  // keepalived VIPs: services may bind an address the node does not hold (yet)
  "net.ipv4.ip_nonlocal_bind": "1",
  "net.ipv6.ip_nonlocal_bind": "1",
};

export function sysctlConf(): string {
  return text([
    HASH_HEADER,
    "# Kernel settings for Kubernetes and keepalived (the seed's /etc/sysctl.conf lines).",
    "# net.ipv4.ip_local_port_range is deliberately NOT set: Kubernetes keeps its NodePorts",
    "# (30000-32767) below the default ephemeral range and cilium relies on that; a wider local",
    "# port range lets the kernel hand out ports that collide with them.",
    ...Object.keys(SYSCTLS)
      .sort()
      .map((k) => `${k} = ${SYSCTLS[k]}`),
  ]);
}

export function modulesLoadConf(): string {
  return text([
    HASH_HEADER,
    "# Kernel modules loaded at boot. systemd-modules-load reads this directory, and so does",
    "# OpenRC's `modules` service (it loads /etc/modules-load.d/*.conf before /etc/conf.d/modules),",
    '# so this replaces the seed\'s `modules="br_netfilter"` in /etc/conf.d/modules.',
    "# br_netfilter: kubeadm's preflight wants it even though cilium replaces kube-proxy.",
    "br_netfilter",
  ]);
}

/** /etc/crictl.yaml, the seed's content. */
export function crictlYaml(criSocket = "unix:///run/containerd/containerd.sock"): string {
  return text([HASH_HEADER, `runtime-endpoint: ${criSocket}`, `image-endpoint: ${criSocket}`, "timeout: 10", "debug: false"]);
}

/** The /etc/fstab line mounting bpffs on the host, so a cilium restart keeps its maps (and the network). */
export function bpffsFstabLine(): string {
  return "none /sys/fs/bpf bpf rshared 0 0";
}

/** The /etc/hosts line: the hostname must resolve to the INTERNAL (wan1) address for kubeadm/kubelet. */
export function hostsLine(node: NodeSpec): string {
  return `${node.wan1.ip} ${node.name}`;
}

/** The /etc/rc.conf line (OpenRC): per-cgroup memory accounting. */
export function rcConfLine(): string {
  return 'rc_cgroup_memory_use_hierarchy="yes"';
}

const KUBECONFIG_ARGS = "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf";
const CONFIG_ARGS = "--config=/var/lib/kubelet/config.yaml";
/** Written by kubeadm init/join: KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=… --node-ip=…". */
export const KUBEADM_FLAGS_ENV = "/var/lib/kubelet/kubeadm-flags.env";

/** `--name=value` in the charset model/checks.ts accepts at preview (no shell metacharacters). */
const SAFE_KUBELET_ARG = /^--[A-Za-z0-9][A-Za-z0-9._-]*=[A-Za-z0-9._:/=,@+-]*$/;

function extra(extraArgs: readonly string[]): string {
  extraArgs.forEach((a, i) => {
    assertSafeWord(`kubelet extra argument ${i}`, a);
    if (!SAFE_KUBELET_ARG.test(a))
      throw new Error(`kubelet extra argument ${i} must be --name=value with only letters, digits and . _ : / = , @ + - in the value`);
  });
  return extraArgs.join(" ");
}

/**
 * /etc/conf.d/kubelet on OpenRC, as in the seed. `[[ ]]` became `[ ]`: conf.d files are sourced
 * by /bin/sh, which need not be bash. Extra args: the seed's btrfs flag is a KubeletConfiguration
 * field now (cluster.localStorageCapacityIsolation), so they are empty by default.
 */
export function kubeletConfd(extraArgs: readonly string[] = []): string {
  return text([
    HASH_HEADER,
    "###",
    "# Kubernetes Kubelet (worker) config",
    "",
    `KUBEADM_ENV="${KUBEADM_FLAGS_ENV}"`,
    '[ -f "${KUBEADM_ENV}" ] && . "${KUBEADM_ENV}"',
    "",
    `KUBELET_KUBECONFIG_ARGS="${KUBECONFIG_ARGS}"`,
    `KUBELET_CONFIG_ARGS="${CONFIG_ARGS}"`,
    "",
    `KUBELET_EXTRA_ARGS="${extra(extraArgs)}"`,
    "",
    'command_args="${KUBELET_KUBECONFIG_ARGS} ${KUBELET_CONFIG_ARGS} ${KUBELET_KUBEADM_ARGS} ${KUBELET_EXTRA_ARGS}"',
  ]);
}

/** The systemd equivalent of kubeletConfd: a drop-in replacing the unit's command line. */
export function kubeletSystemdDropIn(extraArgs: readonly string[] = [], kubeletPath = "/usr/bin/kubelet"): string {
  const e = extra(extraArgs);
  return text([
    HASH_HEADER,
    "[Service]",
    `EnvironmentFile=-${KUBEADM_FLAGS_ENV}`,
    "ExecStart=",
    `ExecStart=${kubeletPath} ${KUBECONFIG_ARGS} ${CONFIG_ARGS} $KUBELET_KUBEADM_ARGS${e ? ` ${e}` : ""}`,
  ]);
}
