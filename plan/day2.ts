// Day-2 guards: changes to a live cluster that the program cannot carry to every node it concerns
// are refused at preview (the providers' `check`), naming the config key, why, and the way that
// works. Decided from the old and new inputs alone. Pure.
import YAML from "yaml";

export interface Refusal {
  /** the resource input the change is in (what Pulumi prints next to the reason) */
  property: string;
  reason: string;
}

type Doc = Record<string, unknown>;

/** The documents of a rendered kubeadm config, by kind. */
export function kinds(config: string): Record<string, Doc> {
  const out: Record<string, Doc> = {};
  for (const d of YAML.parseAllDocuments(config)) {
    const o = d.toJS() as Doc | null;
    if (o && typeof o.kind === "string") out[o.kind] = o;
  }
  return out;
}

function at(doc: Doc | undefined, path: string): unknown {
  return path.split(".").reduce<unknown>((v, k) => (v && typeof v === "object" ? (v as Doc)[k] : undefined), doc);
}

/** node-ip among kubeadm's kubeletExtraArgs ([{name, value}]) */
function nodeIp(registration: unknown): string | undefined {
  const args = at(registration as Doc, "kubeletExtraArgs");
  return Array.isArray(args) ? (args.find((a) => a?.name === "node-ip")?.value as string | undefined) : undefined;
}

const REBUILD = "a cluster keeps it for life: build a new cluster for another value (a new stack, or `pulumi destroy` then `pulumi up`)";

const semver = (v: unknown) => /^v?(\d+)\.(\d+)\.(\d+)/.exec(String(v))?.slice(1).map(Number);

/**
 * Why a version change is wrong whatever the program can do (kubeadm's rules): a downgrade, or
 * more than one minor version at once. undefined for a patch or one-minor upgrade.
 */
export function versionSkew(from: unknown, to: unknown): string | undefined {
  const [a, b] = [semver(from), semver(to)];
  if (!a || !b) return undefined;
  const cmp = a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
  if (cmp > 0)
    return `that is a downgrade, which kubeadm does not do (etcd's data and the API objects stay at the newer version); keep v${a.join(".")}`;
  if (a[0] !== b[0] || b[1] > a[1] + 1)
    return `Kubernetes upgrades one minor version at a time (the version-skew policy), so v${a[0]}.${a[1] + 1} comes first`;
  return undefined;
}

/** ClusterConfiguration fields fixed at `kubeadm init`, with the config key that sets each and why. */
const FIXED_AT_INIT: [string, string, string][] = [
  ["clusterName", "cluster.name", REBUILD],
  ["networking.podSubnet", "cluster.podSubnet", `pods, routes and the network's IP pools use it; ${REBUILD}`],
  ["networking.serviceSubnet", "cluster.serviceSubnet", `every Service's address and the apiserver certificate use it; ${REBUILD}`],
  ["networking.dnsDomain", "cluster.dnsDomain", `every kubelet and CoreDNS use it; ${REBUILD}`],
  [
    "controlPlaneEndpoint",
    "vrrp.controlPlane.vip / cluster.apiServerPort",
    `every kubeconfig, kubelet and certificate on the nodes names it; ${REBUILD}`,
  ],
];

/**
 * Why a node's Kubernetes packages cannot follow a version change: the program moves only the
 * packages it pins (Debian/Ubuntu with the Kubernetes repository).
 */
export const noUpgradePath = (node: string) =>
  `${node} takes kubeadm, kubelet and kubectl from packages the program does not pin to a version (it pins them on Debian/Ubuntu ` +
  "with packages.kubernetesRepository), so it cannot upgrade it; keep the version the cluster runs, or upgrade that node by " +
  "kubeadm's procedure and set the new version after";

export interface InitState {
  config?: string;
  dryRun?: boolean;
  nodeName?: string;
}

/** What a KubeadmInit change may not do once the cluster exists. */
export function initRefusals(olds: InitState, news: Required<InitState>): Refusal[] {
  if (olds.config === undefined || olds.dryRun !== false) return []; // no cluster yet (or only a rehearsal)
  if (news.dryRun)
    return [
      {
        property: "dryRun",
        reason:
          `cluster.rehearse: this stack already has a cluster (kubeadm init ran on ${olds.nodeName}); a rehearsal would replace it, ` +
          "draining and resetting every node. Rehearse on a stack of its own (`pulumi stack init rehearse`), or set cluster.rehearse back to false",
      },
    ];
  const before = kinds(olds.config).ClusterConfiguration;
  const after = kinds(news.config).ClusterConfiguration;
  const out: Refusal[] = [];
  // a version change is a rolling upgrade (plan/upgrade.ts) within kubeadm's rules
  const versions = [at(before, "kubernetesVersion"), at(after, "kubernetesVersion")];
  const skew = versionSkew(versions[0], versions[1]);
  if (skew)
    out.push({
      property: "config",
      reason: `cluster.kubernetesVersion cannot change from ${JSON.stringify(versions[0])} to ${JSON.stringify(versions[1])}: ${skew}`,
    });
  for (const [path, key, why] of FIXED_AT_INIT) {
    const [a, b] = [at(before, path), at(after, path)];
    if (JSON.stringify(a) !== JSON.stringify(b))
      out.push({
        property: "config",
        reason: `${key} cannot change from ${JSON.stringify(a)} to ${JSON.stringify(b)} on a live cluster: ${why}`,
      });
  }
  // The first control plane's own address, while it stays the first (a new first node brings its own)
  const [ipBefore, ipAfter] = [olds.config, news.config].map((c) => at(kinds(c).InitConfiguration, "localAPIEndpoint.advertiseAddress"));
  if (olds.nodeName === news.nodeName && ipBefore !== ipAfter) out.push(addressRefusal("config", news.nodeName, ipBefore, ipAfter));
  return out;
}

export interface JoinState {
  nodeName?: string;
  controlPlane?: boolean;
  joinConfiguration?: Doc;
  /** the cluster's version ("" in state written before members recorded it) */
  kubernetesVersion?: string;
  /** the node's pinned Kubernetes packages (null: not pinned by the program) */
  upgradePackages?: unknown;
}

/** What a KubeadmJoin change may not do to a node that has joined. */
export function joinRefusals(
  olds: JoinState,
  news: JoinState & Required<Pick<JoinState, "nodeName" | "controlPlane" | "joinConfiguration">>,
): Refusal[] {
  if (olds.joinConfiguration === undefined || olds.nodeName !== news.nodeName) return [];
  const out: Refusal[] = [];
  if (olds.controlPlane !== news.controlPlane) {
    const [from, to] = olds.controlPlane ? ["a control plane", "a worker"] : ["a worker", "a control plane"];
    out.push({
      property: "controlPlane",
      reason:
        `nodes[].roles of ${news.nodeName}: ${from} does not become ${to} in place (its etcd member, certificates and static pods ` +
        `${olds.controlPlane ? "would have to go" : "do not exist"}). Remove ${news.nodeName} from nodes and run \`pulumi up\` ` +
        "(it is drained, reset and leaves, with etcd's quorum checked), then add it back with the new role and run `pulumi up` again",
    });
  }
  if (olds.kubernetesVersion && olds.kubernetesVersion !== news.kubernetesVersion && !news.upgradePackages)
    out.push({ property: "kubernetesVersion", reason: `cluster.kubernetesVersion: ${noUpgradePath(news.nodeName)}` });
  const [ipBefore, ipAfter] = [olds, news].map((s) => nodeIp(at(s.joinConfiguration, "nodeRegistration")));
  if (ipBefore !== ipAfter) out.push(addressRefusal("joinConfiguration", news.nodeName, ipBefore, ipAfter));
  const [endpointBefore, endpointAfter] = [olds, news].map((s) => at(s.joinConfiguration, "discovery.bootstrapToken.apiServerEndpoint"));
  if (endpointBefore !== endpointAfter)
    out.push({
      property: "joinConfiguration",
      reason: `vrrp.controlPlane.vip / cluster.apiServerPort cannot change from ${JSON.stringify(endpointBefore)} to ${JSON.stringify(endpointAfter)} on a live cluster: ${REBUILD}`,
    });
  return out;
}

function addressRefusal(property: string, node: string, before: unknown, after: unknown): Refusal {
  return {
    property,
    reason:
      `nodes[].wan1.address of ${node} cannot change from ${String(before)} to ${String(after)} while it is a member: its kubelet` +
      " registration, certificates (and etcd peer URL on a control plane) carry the old address. Remove the node from nodes and run" +
      " `pulumi up`, then add it back with the new address",
  };
}

/**
 * What a member applies from the cluster's configuration after it joined, as YAML (so preview
 * shows the exact change): the KubeletConfiguration every node runs, and for a control plane the
 * ClusterConfiguration its static pods are made from and the operator's `cluster.certSANs`,
 * which its serving certificate must carry. The rendered certSANs are left out: they also list
 * every control plane, so they change with the set of control planes, and a member's own
 * certificate needs no other member's address.
 */
export function memberSettings(initConfig: string, controlPlane: boolean, certSANs: readonly string[] = []): string {
  const docs = kinds(initConfig);
  const strip = (d: Doc | undefined): Doc => {
    const { apiVersion: _v, kind: _k, ...rest } = d ?? {};
    return rest;
  };
  const cluster = strip(docs.ClusterConfiguration);
  const apiServer = { ...(cluster.apiServer as Doc | undefined) };
  delete apiServer.certSANs;
  const out: Doc = { kubelet: strip(docs.KubeletConfiguration) };
  if (controlPlane) {
    out.controlPlane = { ...cluster, apiServer };
    out.servingCertSANs = [...new Set(certSANs)].sort();
  }
  return YAML.stringify(out, { sortMapEntries: true });
}

/**
 * Which parts of memberSettings changed: the kubelet's, the control plane's, the serving
 * certificate's SANs. Settings recorded before the SANs were part of them change none: the first
 * update records them.
 */
export function settingsChanges(before: string, after: string): { kubelet: boolean; controlPlane: boolean; servingCertSANs: boolean } {
  const [a, b] = [before, after].map((s) => (YAML.parse(s) ?? {}) as Doc);
  const same = (k: string) => JSON.stringify(a[k]) === JSON.stringify(b[k]);
  return {
    kubelet: !same("kubelet"),
    controlPlane: !same("controlPlane"),
    servingCertSANs: a.servingCertSANs !== undefined && b.servingCertSANs !== undefined && !same("servingCertSANs"),
  };
}
