// The pause image kubeadm expects for each Kubernetes minor: kubeadm's constants.PauseVersion,
// read from the module of each version listed. Pure.

export const PAUSE_VERSIONS: Readonly<Record<string, string>> = {
  "1.36": "3.10.2",
  "1.37": "3.10.2",
};

/** registry.k8s.io/pause:<tag> for a release like v1.36.3, or undefined for a minor not listed. */
export function kubeadmPauseImage(kubernetesVersion: string): string | undefined {
  const minor = /^v(\d+\.\d+)\./.exec(kubernetesVersion)?.[1];
  const tag = minor ? PAUSE_VERSIONS[minor] : undefined;
  return tag ? `registry.k8s.io/pause:${tag}` : undefined;
}
