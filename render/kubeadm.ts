// kubeadm configuration files (kubeadm.k8s.io/v1beta4; the seed used v1beta2). Pure.
import YAML from "yaml";
import type { ClusterSpec, NodeSpec } from "../model/model";
import { HASH_HEADER, compareAddresses, sortKeysDeep } from "./common";

export const KUBEADM_API = "kubeadm.k8s.io/v1beta4";
export const KUBELET_API = "kubelet.config.k8s.io/v1beta1";
/** Where the configs are written on the node (`kubeadm init|join --config <file>`). */
export const KUBEADM_INIT_PATH = "/etc/kubernetes/kubeadm-init.yaml";
export const KUBEADM_JOIN_PATH = "/etc/kubernetes/kubeadm-join.yaml";

/** v1beta4 flag lists: `[{name, value}]` (v1beta3 and older used a string map). */
export interface Arg {
  name: string;
  value: string;
}

export interface JoinCredentials {
  /** bootstrap token "abcdef.0123456789abcdef" (valid 24h: mint it right before the join) */
  token: string;
  /** "sha256:<64 hex>" of the cluster CA's public key */
  caCertHash: string;
  /** hex AES-256 key of the uploaded control-plane certs (valid 2h); control planes only */
  certificateKey?: string;
}

/**
 * How every bootstrap token the program makes is described, starting with init's: a sweep
 * deletes tokens with this mark that no run in progress uses, and never anyone else's.
 */
export const TOKEN_MARK = "k8s-baremetal:";
/** init's token: joins mint their own, so it goes right after init (and on any later sweep) */
export const INIT_TOKEN = { description: `${TOKEN_MARK} kubeadm init`, ttl: "15m0s" };

const TOKEN = /^[a-z0-9]{6}\.[a-z0-9]{16}$/;
export const CA_HASH = /^sha256:[0-9a-f]{64}$/;
const CERT_KEY = /^[0-9a-f]{64}$/;

function args(record: Record<string, string>): Arg[] {
  return Object.keys(record)
    .sort()
    .map((name) => ({ name, value: record[name] }));
}

/** Keys sorted, but apiVersion and kind first (as people read these files). */
function object(apiVersion: string, kind: string, body: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion, kind, ...sortKeysDeep(body) };
}

function kubeletExtraArgs(spec: ClusterSpec, node: NodeSpec): Arg[] {
  // The node registers with (and kubelet serves on) its wan1 address, not the default route's.
  return args({ ...spec.config.cluster.kubeletExtraArgs, "node-ip": node.wan1.ip });
}

function nodeRegistration(spec: ClusterSpec, node: NodeSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: node.name,
    criSocket: spec.config.cluster.criSocket,
    kubeletExtraArgs: kubeletExtraArgs(spec, node),
  };
  // The seed untainted every control plane after init/join (they run workloads too); an empty
  // taint list makes kubeadm register the node without the control-plane taint in the first place.
  if (node.controlPlane && spec.config.cluster.untaintControlPlane) out.taints = [];
  const ignore = [...spec.config.cluster.ignorePreflightErrors, ...(spec.config.cluster.allowCgroupV1 ? ["SystemVerification"] : [])];
  if (ignore.length) out.ignorePreflightErrors = [...new Set(ignore)];
  return out;
}

function timeouts(spec: ClusterSpec): Record<string, string> {
  return { ...spec.config.cluster.timeouts };
}

/** apiServer certSANs: configured SANs + the VIP + every control plane's wan1 address and name. */
export function apiServerCertSANs(spec: ClusterSpec): string[] {
  const sans = new Set<string>([
    ...spec.config.cluster.certSANs,
    spec.controlPlaneVip.ip,
    ...spec.controlPlanes.flatMap((n) => [n.wan1.ip, n.name]),
  ]);
  return [...sans].sort(compareAddresses);
}

function apiServerArgs(spec: ClusterSpec): Arg[] {
  const { oidc, health } = spec.config.cluster;
  const a: Record<string, string> = {
    "default-not-ready-toleration-seconds": String(health.notReadyTolerationSeconds),
    "default-unreachable-toleration-seconds": String(health.unreachableTolerationSeconds),
  };
  if (oidc) {
    a["oidc-issuer-url"] = oidc.issuerUrl;
    a["oidc-client-id"] = oidc.clientId;
    a["oidc-username-claim"] = oidc.usernameClaim;
    a["oidc-groups-claim"] = oidc.groupsClaim;
  }
  return args(a);
}

/** systemd's cgroup driver under systemd, cgroupfs otherwise (OpenRC, no init). */
export function cgroupDriver(node: NodeSpec): "systemd" | "cgroupfs" {
  return node.init === "systemd" ? "systemd" : "cgroupfs";
}

/**
 * The cluster-wide KubeletConfiguration. kubeadm uploads it once (kubelet-config ConfigMap) and
 * every joining node downloads it, so it is derived from the first node (checks.ts requires all
 * nodes to share the cgroup driver).
 */
export function kubeletConfiguration(spec: ClusterSpec, node: NodeSpec): Record<string, unknown> {
  const c = spec.config.cluster;
  const body: Record<string, unknown> = {
    cgroupDriver: cgroupDriver(node),
    nodeStatusUpdateFrequency: c.health.nodeStatusUpdateFrequency,
  };
  // The seed's btrfs workaround was --feature-gates=LocalStorageCapacityIsolation=false; the gate
  // is locked on today, the KubeletConfiguration field of the same name replaces it.
  if (!c.localStorageCapacityIsolation) body.localStorageCapacityIsolation = false;
  if (c.allowCgroupV1) body.failCgroupV1 = false;
  return object(KUBELET_API, "KubeletConfiguration", body);
}

function stringify(docs: Record<string, unknown>[], comment: (d: YAML.Document, i: number) => void): string {
  return docs
    .map((o, i) => {
      // YAML 1.1 quoting (what Go's YAML decoders read): "30" stays a string, not a number.
      const d = new YAML.Document(o, { version: "1.1" });
      comment(d, i);
      return d.toString({ lineWidth: 0 });
    })
    .join("---\n");
}

function setComment(d: YAML.Document, path: string[], comment: string): void {
  const pair = (d.getIn(path.slice(0, -1), true) as YAML.YAMLMap).items.find(
    (p) => YAML.isScalar(p.key) && p.key.value === path[path.length - 1],
  );
  if (!pair || !YAML.isScalar(pair.key)) throw new Error(`no ${path.join(".")} to comment`);
  pair.key.commentBefore = comment;
}

/**
 * `kubeadm init --config` for the first control plane: InitConfiguration, ClusterConfiguration
 * and KubeletConfiguration as one multi-document YAML.
 */
export function kubeadmInitConfig(spec: ClusterSpec, node: NodeSpec, opts: { certificateKey?: string } = {}): string {
  const c = spec.config.cluster;
  if (!node.controlPlane) throw new Error(`kubeadm init runs on a control plane; ${node.name} is not one`);
  if (opts.certificateKey !== undefined && !CERT_KEY.test(opts.certificateKey))
    throw new Error("certificateKey must be 64 hex characters (kubeadm certs certificate-key)");
  const init = object(KUBEADM_API, "InitConfiguration", {
    bootstrapTokens: [INIT_TOKEN],
    localAPIEndpoint: { advertiseAddress: node.wan1.ip, bindPort: c.apiServerPort },
    nodeRegistration: nodeRegistration(spec, node),
    skipPhases: ["addon/kube-proxy"],
    timeouts: timeouts(spec),
    ...(opts.certificateKey ? { certificateKey: opts.certificateKey } : {}),
  });
  const cluster = object(KUBEADM_API, "ClusterConfiguration", {
    clusterName: c.name,
    kubernetesVersion: c.kubernetesVersion,
    controlPlaneEndpoint: spec.controlPlaneEndpoint,
    networking: { podSubnet: c.podSubnet, serviceSubnet: c.serviceSubnet, dnsDomain: c.dnsDomain },
    apiServer: { certSANs: apiServerCertSANs(spec), extraArgs: apiServerArgs(spec) },
    controllerManager: {
      extraArgs: args({ "node-monitor-period": c.health.nodeMonitorPeriod, "node-monitor-grace-period": c.health.nodeMonitorGracePeriod }),
    },
    // cilium replaces kube-proxy: besides skipping the init phase, v1beta4 records it here so
    // `kubeadm upgrade` does not install kube-proxy later (the seed patched kubeadm for that).
    proxy: { disabled: true },
  });
  const kubelet = kubeletConfiguration(spec, node);
  const body = stringify([init, cluster, kubelet], (d, i) => {
    if (i === 0) {
      d.commentBefore = ` ${HASH_HEADER.slice(2)}\n kubeadm init --config (v1beta4) for ${node.name}; the seed's kubeadm.yaml used v1beta2.`;
      setComment(
        d,
        ["bootstrapTokens"],
        " init's token, marked as the program's: deleted right after init (joins mint their own), and by any\n" +
          " later run that finds it; the program never deletes a token without this mark.",
      );
    }
    if (i === 1) {
      setComment(
        d,
        ["apiServer", "extraArgs"],
        " The seed's controller-manager pod-eviction-timeout (30s) was removed from Kubernetes; taint-based\n" +
          " eviction replaced it: these apiserver defaults set how long pods tolerate a not-ready/unreachable node.",
      );
      setComment(
        d,
        ["controllerManager", "extraArgs"],
        " The seed's health timing: how often / how late a silent node is marked unhealthy.",
      );
    }
  });
  return body;
}

/** A JoinConfiguration without credentials: the join fills them in right before it runs. */
export interface JoinConfiguration {
  apiVersion: string;
  kind: "JoinConfiguration";
  discovery: { bootstrapToken: { apiServerEndpoint: string; token?: string; caCertHashes?: string[] } };
  nodeRegistration: { name: string } & Record<string, unknown>;
  controlPlane?: { localAPIEndpoint: { advertiseAddress: string; bindPort: number }; certificateKey?: string };
  [key: string]: unknown;
}

/** `kubeadm join --config` for every node after the first control plane, credentials left out. */
export function joinConfiguration(spec: ClusterSpec, node: NodeSpec): JoinConfiguration {
  const c = spec.config.cluster;
  return object(KUBEADM_API, "JoinConfiguration", {
    discovery: { bootstrapToken: { apiServerEndpoint: spec.controlPlaneEndpoint } },
    nodeRegistration: nodeRegistration(spec, node),
    timeouts: timeouts(spec),
    // = --control-plane --apiserver-advertise-address <wan1 ip> (the certificate key comes at join time)
    ...(node.controlPlane ? { controlPlane: { localAPIEndpoint: { advertiseAddress: node.wan1.ip, bindPort: c.apiServerPort } } } : {}),
  }) as JoinConfiguration;
}

/** The join file: `doc` with the credentials minted for this join, checked, serialised once. */
export function joinConfigYaml(doc: JoinConfiguration, creds: JoinCredentials): string {
  const name = doc.nodeRegistration.name;
  if (!TOKEN.test(creds.token)) throw new Error("join token must look like abcdef.0123456789abcdef");
  if (!CA_HASH.test(creds.caCertHash)) throw new Error("caCertHash must be sha256:<64 hex characters>");
  if (doc.controlPlane && (creds.certificateKey === undefined || !CERT_KEY.test(creds.certificateKey)))
    throw new Error(
      `control plane ${name} joins with a certificateKey of 64 hex characters (kubeadm init phase upload-certs --upload-certs)`,
    );
  const join = sortKeysDeep({
    ...doc,
    discovery: { bootstrapToken: { ...doc.discovery.bootstrapToken, token: creds.token, caCertHashes: [creds.caCertHash] } },
    ...(doc.controlPlane ? { controlPlane: { ...doc.controlPlane, certificateKey: creds.certificateKey } } : {}),
  });
  const { apiVersion, kind, ...body } = join;
  return stringify([{ apiVersion, kind, ...body }], (d) => {
    d.commentBefore = ` ${HASH_HEADER.slice(2)}\n kubeadm join --config (v1beta4) for ${name} (${doc.controlPlane ? "control plane" : "worker"}).`;
  });
}

/** `kubeadm join --config` for `node` with the given credentials (what the node gets). */
export function kubeadmJoinConfig(spec: ClusterSpec, node: NodeSpec, creds: JoinCredentials): string {
  return joinConfigYaml(joinConfiguration(spec, node), creds);
}
