// The Kubernetes package repository on Debian/Ubuntu nodes (kubeadm, kubelet, kubectl and
// cri-tools are not in those distributions' archives). Pure.
import type { OsFamily, StackConfig } from "../model/schema";

/** "v1.36.3" → "1.36.3": the packages' versions have no "v" */
const bare = (version: string): string => version.replace(/^v/, "");

export interface AptRepository {
  /** names the files: /etc/apt/keyrings/<name>-apt-keyring.asc, /etc/apt/sources.list.d/<name>.list */
  name: string;
  /** a flat repository: `deb <url> /` */
  url: string;
  /** where a node downloads the signing key */
  keyUrl: string;
  /** the key's pinned fingerprint, 40 upper-case hex digits */
  fingerprint: string;
}

/** The repository Debian/Ubuntu nodes get, or undefined (packages.kubernetesRepository: false). */
export function kubernetesRepository(config: Pick<StackConfig, "packages" | "cluster">): AptRepository | undefined {
  const r = config.packages.kubernetesRepository;
  if (r === false) return undefined;
  const minor = bare(config.cluster.kubernetesVersion).split(".").slice(0, 2).join(".");
  const url = r.url ?? `https://pkgs.k8s.io/core:/stable:/v${minor}/deb/`;
  return {
    name: "kubernetes",
    url,
    keyUrl: r.keyUrl ?? `${url}Release.key`,
    fingerprint: r.keyFingerprint.replace(/\s+/g, "").toUpperCase(),
  };
}

/** Whether nodes of this OS family take their Kubernetes packages from an apt repository. */
export const usesAptRepository = (os: OsFamily): boolean => os === "debian" || os === "ubuntu";

export const keyringPath = (name: string): string => `/etc/apt/keyrings/${name}-apt-keyring.asc`;
export const sourceListPath = (name: string): string => `/etc/apt/sources.list.d/${name}.list`;

/** The source list's one line: the key named by signed-by signs this repository and no other. */
export const sourceLine = (r: Pick<AptRepository, "name" | "url">): string => `deb [signed-by=${keyringPath(r.name)}] ${r.url} /\n`;

/** The packages whose version follows the cluster's, as the Kubernetes repository numbers them ("1.36.3-1.1"). */
export const VERSIONED_PACKAGES = ["kubeadm", "kubelet", "kubectl"];
const VERSIONED = new Set(VERSIONED_PACKAGES);

/** apt's `name=version` with a glob over the package revision; the others as they are. */
export function pinnedPackages(pkgs: string[], kubernetesVersion: string): string[] {
  return pkgs.map((p) => (VERSIONED.has(p) ? `${p}=${bare(kubernetesVersion)}-*` : p));
}
