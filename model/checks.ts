// Cross-field rules of the stack configuration. Each finding names the config key and the fix.
import { cidrContains, cidrsOverlap, formatCidr, networkOf, parseAddressWithPrefix, parseCidr, parseIPv4, type Cidr } from "./ip";
import { DEFAULT_INIT } from "./model";
import { kubeadmPauseImage, PAUSE_VERSIONS } from "./pause";
import type { SecretKey, StackConfig } from "./schema";

export interface Finding {
  /** the config key, e.g. "vrrp.external.vips[2]" */
  key: string;
  message: string;
}

type Check = (c: StackConfig, secrets: ReadonlySet<SecretKey>) => Finding[];

const addressOf = (s: string): number => parseAddressWithPrefix(s)!.address;
const subnetOf = (s: string): Cidr => {
  const p = parseAddressWithPrefix(s)!;
  return networkOf(p.address, p.prefix);
};

function duplicates<T>(items: { key: string; value: T | undefined }[], what: string): Finding[] {
  const seen = new Map<T, string>();
  const out: Finding[] = [];
  for (const { key, value } of items) {
    if (value === undefined) continue;
    const first = seen.get(value);
    if (first) out.push({ key, message: `duplicate ${what} ${String(value)} (already used by ${first}); give each one its own` });
    else seen.set(value, key);
  }
  return out;
}

const uniqueNodes: Check = (c) => {
  const addresses = c.nodes.flatMap((n, i) => [
    { key: `nodes[${i}].wan0.address`, value: n.wan0.address.split("/")[0] },
    { key: `nodes[${i}].wan1.address`, value: n.wan1.address.split("/")[0] },
  ]);
  const macs = c.nodes.flatMap((n, i) => [
    { key: `nodes[${i}].wan0.mac`, value: n.wan0.mac },
    { key: `nodes[${i}].wan1.mac`, value: n.wan1.mac },
  ]);
  return [
    ...duplicates(
      c.nodes.map((n, i) => ({ key: `nodes[${i}].name`, value: n.name })),
      "node name",
    ),
    ...duplicates(addresses, "node address"),
    ...duplicates(macs, "MAC address"),
  ];
};

const roles: Check = (c) =>
  c.nodes.flatMap((n, i) => {
    const out: Finding[] = [];
    if (new Set(n.roles).size !== n.roles.length) out.push({ key: `nodes[${i}].roles`, message: "lists a role twice" });
    if (n.roles.includes("control-plane") && n.roles.includes("worker"))
      out.push({ key: `nodes[${i}].roles`, message: "control-plane nodes already run workloads (their taint is removed); drop 'worker'" });
    return out;
  });

// etcd needs an odd member count; 2 tolerates no failure and more than 5 slows every write.
const quorum: Check = (c) => {
  if (!c.layers.kubernetes) return [];
  const n = c.nodes.filter((x) => x.roles.includes("control-plane")).length;
  if (n === 1 || n === 3 || n === 5) return [];
  return [
    {
      key: "nodes",
      message: `has ${n} control-plane nodes; etcd needs 1 (test only), 3 or 5 — give the 'control-plane' role to ${n < 3 ? 3 : 5} nodes (or 1)`,
    },
  ];
};

const controlPlaneVip: Check = (c) => {
  const vip = parseAddressWithPrefix(c.vrrp.controlPlane.vip)!;
  const out: Finding[] = [];
  c.nodes.forEach((n, i) => {
    if (!n.roles.includes("control-plane")) return;
    if (!cidrContains(subnetOf(n.wan1.address), vip.address))
      out.push({
        key: "vrrp.controlPlane.vip",
        message: `${c.vrrp.controlPlane.vip} is outside ${n.name}'s wan1 subnet ${formatCidr(subnetOf(n.wan1.address))} (nodes[${i}].wan1.address); pick a free address in that subnet`,
      });
  });
  c.nodes.forEach((n, i) => {
    for (const nic of ["wan0", "wan1"] as const)
      if (addressOf(n[nic].address) === vip.address)
        out.push({
          key: "vrrp.controlPlane.vip",
          message: `equals nodes[${i}].${nic}.address of ${n.name}; a VIP must be an unused address`,
        });
  });
  return out;
};

const externalVips: Check = (c) => {
  const shadow = parseCidr(c.routing.shadowSubnet)!;
  const nodeAddrs = new Map(c.nodes.flatMap((n) => [n.wan0.address, n.wan1.address].map((a) => [addressOf(a), n.name] as const)));
  const out: Finding[] = duplicates(
    c.vrrp.external.vips.map((v, i) => ({ key: `vrrp.external.vips[${i}]`, value: v })),
    "external VIP",
  );
  c.vrrp.external.vips.forEach((v, i) => {
    const a = parseIPv4(v)!;
    if (!cidrContains(shadow, a))
      out.push({
        key: `vrrp.external.vips[${i}]`,
        message: `${v} is outside the shadow subnet ${c.routing.shadowSubnet} (routing.shadowSubnet); external IPs must come from it`,
      });
    const owner = nodeAddrs.get(a);
    if (owner) out.push({ key: `vrrp.external.vips[${i}]`, message: `${v} is an address of node ${owner}; use an unused address` });
    if (a === parseIPv4(c.routing.gateway))
      out.push({ key: `vrrp.external.vips[${i}]`, message: `${v} is the shadow gateway (routing.gateway)` });
  });
  const balancers = c.nodes.filter((n) => n.roles.includes("balancer")).length;
  if (c.vrrp.external.vips.length && balancers === 0)
    out.push({ key: "vrrp.external.vips", message: "external VIPs need at least one node with the 'balancer' role" });
  const perNode = c.vrrp.external.ipsPerNode;
  if (perNode !== undefined && perNode > balancers)
    out.push({
      key: "vrrp.external.ipsPerNode",
      message: `${perNode} exceeds the ${balancers} balancer node(s) that can hold an IP; set it to at most ${balancers} or add balancers`,
    });
  return out;
};

const routerIds: Check = (c) => {
  const n = c.vrrp.external.vips.length;
  const base = c.vrrp.external.routerIdBase;
  const cp = c.vrrp.controlPlane.routerId;
  const out: Finding[] = [];
  if (n && base + n - 1 > 255)
    out.push({ key: "vrrp.external.routerIdBase", message: `${base} + ${n} external VIPs runs past router id 255; lower the base` });
  if (n && cp >= base && cp < base + n)
    out.push({
      key: "vrrp.controlPlane.routerId",
      message: `${cp} collides with the external VIPs' router ids ${base}..${base + n - 1} (vrrp.external.routerIdBase); choose ids that do not overlap`,
    });
  const ai = c.vrrp.advertInt;
  if (c.vrrp.authType !== "none" && !Number.isInteger(ai))
    out.push({
      key: "vrrp.advertInt",
      message: `${ai} needs VRRPv3, which has no authentication: use whole seconds or set vrrp.authType to none`,
    });
  if (Math.abs(ai * 100 - Math.round(ai * 100)) > 1e-9)
    out.push({ key: "vrrp.advertInt", message: `${ai}: VRRPv3 counts in hundredths of a second; round it to 0.01` });
  const controlPlanes = c.nodes.filter((n) => n.roles.includes("control-plane")).length;
  const { otherPriority, successionStep } = c.vrrp.controlPlane;
  if (otherPriority - successionStep * (controlPlanes - 2) < 1)
    out.push({
      key: "vrrp.controlPlane.otherPriority",
      message:
        `too low for ${controlPlanes} control planes: each after the second gets successionStep (${successionStep}) less, ` +
        `down to at least 1; raise otherPriority or lower vrrp.controlPlane.successionStep`,
    });
  if (c.vrrp.controlPlane.firstPriority <= c.vrrp.controlPlane.otherPriority)
    out.push({
      key: "vrrp.controlPlane.firstPriority",
      message: "must be higher than otherPriority so the first node holds the VIP during bootstrap",
    });
  if (n && c.vrrp.external.topPriority - (c.vrrp.external.ipsPerNode ?? 1) < 1)
    out.push({ key: "vrrp.external.topPriority", message: "too low for the rotation: priorities would drop below 1" });
  return out;
};

const subnets: Check = (c) => {
  const named: { key: string; cidr: Cidr }[] = [
    { key: "cluster.podSubnet", cidr: parseCidr(c.cluster.podSubnet)! },
    { key: "cluster.serviceSubnet", cidr: parseCidr(c.cluster.serviceSubnet)! },
    { key: "routing.shadowSubnet", cidr: parseCidr(c.routing.shadowSubnet)! },
  ];
  const nodeNets = new Map<string, { key: string; cidr: Cidr }>();
  c.nodes.forEach((n, i) =>
    (["wan0", "wan1"] as const).forEach((nic) => {
      const cidr = subnetOf(n[nic].address);
      // name the first node on each network in findings
      if (!nodeNets.has(formatCidr(cidr))) nodeNets.set(formatCidr(cidr), { key: `nodes[${i}].${nic}.address`, cidr });
    }),
  );
  const all = [...named, ...nodeNets.values()];
  const out: Finding[] = [];
  for (let i = 0; i < all.length; i++)
    for (let j = i + 1; j < all.length; j++) {
      const a = all[i],
        b = all[j];
      if (
        a.key.startsWith("nodes") &&
        b.key.startsWith("nodes") &&
        formatCidr(a.cidr) !== formatCidr(b.cidr) &&
        !cidrsOverlap(a.cidr, b.cidr)
      )
        continue;
      if (cidrsOverlap(a.cidr, b.cidr))
        out.push({
          key: b.key,
          message: `${formatCidr(b.cidr)} overlaps ${a.key} ${formatCidr(a.cidr)}; pod, service and node networks must be disjoint`,
        });
    }
  if (!cidrContains(parseCidr(c.routing.shadowSubnet)!, parseIPv4(c.routing.gateway)!))
    out.push({ key: "routing.gateway", message: `${c.routing.gateway} is outside routing.shadowSubnet ${c.routing.shadowSubnet}` });
  if (c.routing.podRulePriority === c.routing.shadowRulePriority)
    out.push({ key: "routing.shadowRulePriority", message: "must differ from routing.podRulePriority" });
  return out;
};

const secretsPresent: Check = (c, secrets) => {
  const out: Finding[] = [];
  const need = (key: SecretKey, why: string) => {
    if (!secrets.has(key)) out.push({ key, message: `is required ${why}: pulumi config set --secret ${key} ...` });
  };
  need("sshPrivateKey", "to reach the nodes (cat ~/.ssh/id_ed25519 | pulumi config set --secret sshPrivateKey)");
  if (c.layers.keepalived && c.vrrp.authType !== "none") need("vrrpPassword", `for vrrp.authType ${c.vrrp.authType}`);
  const cm = c.addons.certManager;
  if (cm.enabled && cm.issuer.enabled && cm.issuer.rfc2136)
    need("certManagerTsigSecret", "for the RFC2136 ClusterIssuer (the TSIG key's secret, base64)");
  return out;
};

// a node is either managed or written off, not both
const unreachableNodes: Check = (c) =>
  c.unreachableNodes
    .filter((n) => c.nodes.some((x) => x.name === n))
    .map((n) => ({
      key: "unreachableNodes",
      message: `${n} is still in nodes: a node listed as unreachable is being removed; take it out of nodes too (or out of unreachableNodes once it answers SSH again)`,
    }));

const layersAndAddons: Check = (c) => {
  const out: Finding[] = [];
  if (c.layers.kubernetes && !c.layers.hostPrep)
    out.push({ key: "layers.hostPrep", message: "must be true when layers.kubernetes is true (kubeadm needs prepared hosts)" });
  if (c.layers.cilium && c.cilium.enabled && !c.layers.kubernetes)
    out.push({ key: "layers.cilium", message: "needs layers.kubernetes; set layers.cilium to false for a stack without Kubernetes" });
  if (c.cluster.rehearse && !c.layers.kubernetes)
    out.push({ key: "cluster.rehearse", message: "rehearses kubeadm init, so it needs layers.kubernetes: true" });
  if (c.etcdBackup.snapshotNow && !c.etcdBackup.enabled)
    out.push({
      key: "etcdBackup.snapshotNow",
      message: "runs the control planes' snapshot script, which etcdBackup.enabled false removes; enable it",
    });
  if (!c.layers.hosts) {
    for (const k of ["hostPrep", "keepalived", "kubernetes"] as const)
      if (c.layers[k]) out.push({ key: `layers.${k}`, message: "needs SSH to the nodes; set it to false when layers.hosts is false" });
    if (c.routing.enabled)
      out.push({ key: "routing.enabled", message: "needs SSH to the nodes; set it to false when layers.hosts is false" });
    if (!c.lab.enabled) out.push({ key: "layers.hosts", message: "false leaves nothing to do unless lab.enabled is true" });
  }
  return out;
};

/** seconds in a duration like 1h30m (the schema checked its form) */
const durationSeconds = (d: string): number =>
  [...d.matchAll(/(\d+)([smh])/g)].reduce((sum, [, n, unit]) => sum + Number(n) * { s: 1, m: 60, h: 3600 }[unit as "s" | "m" | "h"], 0);

const addons: Check = (c) => {
  const out: Finding[] = [];
  const { certManager: cm, gateway, ui } = c.addons;
  // keys that moved in issue 12: name the new place rather than call them typos
  if (cm.email !== undefined)
    out.push({
      key: "addons.certManager.email",
      message: `moved to addons.certManager.issuer.email: pulumi config set --path 'addons.certManager.issuer.email' ${JSON.stringify(String(cm.email))}, then remove addons.certManager.email`,
    });
  if (cm.rfc2136 !== undefined)
    out.push({
      key: "addons.certManager.rfc2136",
      message:
        "moved to addons.certManager.issuer.rfc2136 (same fields: nameserver as host:port, tsigKeyName, tsigAlgorithm); move the object there and remove addons.certManager.rfc2136",
    });
  if (cm.enabled && cm.issuer.enabled) {
    if (!cm.issuer.email)
      out.push({
        key: "addons.certManager.issuer.email",
        message:
          "is required for the ACME account when addons.certManager.enabled is true (or set addons.certManager.issuer.enabled false to bring your own issuer)",
      });
    if (!cm.issuer.rfc2136)
      out.push({
        key: "addons.certManager.issuer.rfc2136",
        message:
          "is required: the issuer solves DNS-01 over RFC2136 — set {nameserver: host:port, tsigKeyName} (or addons.certManager.issuer.enabled false to bring your own issuer)",
      });
  }
  if (gateway.enabled && gateway.implementation === "cilium" && !(c.cilium.enabled && c.layers.cilium))
    out.push({
      key: "addons.gateway.implementation",
      message:
        "cilium runs the Gateway inside the cilium release, which this stack does not install: set cilium.enabled and layers.cilium true, or addons.gateway.implementation traefik",
    });
  const source = gateway.gatewayApiCrds.source;
  if (source !== undefined && source.includes("://") && !source.startsWith("https://"))
    out.push({
      key: "addons.gateway.gatewayApiCrds.source",
      message: `${JSON.stringify(source)} must be an https:// URL or a path on this machine; plain http lets the network swap the CRDs`,
    });
  if (ui.enabled && ui.admin.enabled && durationSeconds(ui.admin.tokenDuration) < 600)
    out.push({
      key: "addons.ui.admin.tokenDuration",
      message: `${ui.admin.tokenDuration} is below the 10 minutes the API server requires of a requested token; use 10m or more`,
    });
  return out;
};

/** lab.baseImage names an image to download (else a path on the hypervisor). */
export const isImageUrl = (s: string): boolean => /^https?:\/\//i.test(s);

const labNetworks: Check = (c) => {
  if (!c.lab.enabled) return [];
  const out: Finding[] = [];
  const wan0 = subnetOf(c.lab.networks.wan0.gateway);
  const image = c.lab.baseImage;
  const url = !!image && isImageUrl(image);
  if (!image)
    out.push({
      key: "lab.baseImage",
      message:
        "is required when lab.enabled is true: a qcow2 cloud image path on the hypervisor, or its http(s) URL with lab.baseImageChecksum",
    });
  else if (!url && /^[a-z][a-z0-9+.-]*:\/\//i.test(image))
    out.push({ key: "lab.baseImage", message: `${image}: only http(s) URLs are downloaded; give a path on the hypervisor otherwise` });
  else if (url && !c.lab.baseImageChecksum)
    out.push({
      key: "lab.baseImageChecksum",
      message: `is required when lab.baseImage is a URL (${image}): sha256:<hex> or sha512:<hex> from the image's published SUMS file, so a corrupt or substituted download is refused`,
    });
  else if (!url && c.lab.baseImageChecksum)
    out.push({
      key: "lab.baseImageChecksum",
      message: "applies only when lab.baseImage is an http(s) URL (a path on the hypervisor is used as it is): remove it, or give the URL",
    });
  c.nodes.forEach((n, i) => {
    for (const nic of ["wan0", "wan1"] as const)
      if (!n[nic].mac)
        out.push({ key: `nodes[${i}].${nic}.mac`, message: "is required for lab VMs (interfaces are named and addressed by MAC)" });
    if (!cidrContains(wan0, addressOf(n.wan0.address)))
      out.push({
        key: `nodes[${i}].wan0.address`,
        message: `is outside the lab wan0 network ${formatCidr(wan0)} (lab.networks.wan0.gateway)`,
      });
  });
  if (c.lab.initrd && !c.lab.kernel) out.push({ key: "lab.initrd", message: "needs lab.kernel (direct kernel boot)" });
  if (c.lab.cmdline !== undefined && !c.lab.kernel) out.push({ key: "lab.cmdline", message: "needs lab.kernel (direct kernel boot)" });
  for (const k of ["dhcpStart", "dhcpEnd"] as const)
    if (!cidrContains(wan0, parseIPv4(c.lab.networks.wan0[k])!))
      out.push({ key: `lab.networks.wan0.${k}`, message: `is outside ${formatCidr(wan0)}` });
  return out;
};

// kubeadm uploads ONE KubeletConfiguration (the kubelet-config ConfigMap) that every joining node
// downloads, so its cgroupDriver (systemd under systemd, cgroupfs otherwise) must suit all nodes.
const cgroupDriver: Check = (c) => {
  if (!c.layers.kubernetes) return [];
  const isSystemd = (n: StackConfig["nodes"][number]) => (n.init ?? c.os.init ?? DEFAULT_INIT[n.os ?? c.os.family]) === "systemd";
  const first = c.nodes[0];
  if (!first) return [];
  return c.nodes.flatMap((n, i) =>
    isSystemd(n) === isSystemd(first)
      ? []
      : [
          {
            key: `nodes[${i}].init`,
            message: `${n.name} ${isSystemd(n) ? "runs" : "does not run"} systemd but ${first.name} ${isSystemd(first) ? "does" : "does not"}; the kubelet cgroup driver is cluster-wide, so all nodes must be systemd or all non-systemd`,
          },
        ],
  );
};

// Values that reach a shell or a service definition (the kubelet's conf.d, which OpenRC
// evaluates as sh, its systemd ExecStart, /etc/crictl.yaml) and transports that must
// authenticate their peer: refused at preview unless they are in a safe charset / scheme.
/** kubelet flag names: letters, digits, '.', '_', '-' (no leading '-': the program adds "--"). */
export const KUBELET_ARG_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** kubelet flag values: no whitespace, quotes or shell metacharacters. */
export const KUBELET_ARG_VALUE = /^[A-Za-z0-9._:/=,@+-]*$/;
const CRI_SOCKET = /^unix:\/\/\/[A-Za-z0-9._/-]+$/;
/** libvirt URI parameters that turn off the check of the hypervisor's identity. */
const UNSAFE_URI_PARAMS: Record<string, (v: string) => boolean> = {
  no_verify: (v) => v !== "" && v !== "0",
  known_hosts_verify: (v) => v !== "normal",
};

const safeValues: Check = (c) => {
  const out: Finding[] = [];
  for (const [k, v] of Object.entries(c.cluster.kubeletExtraArgs)) {
    if (!KUBELET_ARG_KEY.test(k))
      out.push({
        key: `cluster.kubeletExtraArgs.${k}`,
        message: "is not a kubelet flag name; use letters, digits, '.', '_' and '-' only, without the leading '--'",
      });
    else if (!KUBELET_ARG_VALUE.test(v))
      out.push({
        key: `cluster.kubeletExtraArgs.${k}`,
        message: `${JSON.stringify(v)} contains characters a shell would interpret (the OpenRC conf.d is evaluated as sh); use only letters, digits and . _ : / = , @ + -`,
      });
  }
  if (!CRI_SOCKET.test(c.cluster.criSocket))
    out.push({
      key: "cluster.criSocket",
      message: `${JSON.stringify(c.cluster.criSocket)} must be a unix socket URL like unix:///run/containerd/containerd.sock (path: letters, digits, . _ / -)`,
    });
  const q = c.lab.uri.indexOf("?");
  if (q >= 0)
    for (const [name, value] of new URLSearchParams(c.lab.uri.slice(q + 1))) {
      const unsafe = UNSAFE_URI_PARAMS[name];
      if (unsafe?.(value))
        out.push({
          key: "lab.uri",
          message: `${name}=${value} turns off the check of the hypervisor's identity; remove it and pin the host key (known_hosts=<file> with qemu+libssh://)`,
        });
    }
  const repositories: [string, string][] = [
    ["cilium", c.cilium.repository],
    ...Object.entries(c.addons).map(([k, a]): [string, string] => [`addons.${k}`, a.repository]),
  ];
  for (const [prefix, repository] of repositories)
    if (repository !== "" && !/^https:\/\/[^\s]+$/.test(repository))
      out.push({
        key: `${prefix}.repository`,
        message: `${JSON.stringify(repository)} must be an https:// chart repository (or "" for a local chart in ${prefix}.chart); plain http lets the network swap the chart`,
      });
  return out;
};

const containerdRuntime: Check = (c) => {
  if (!c.layers.kubernetes || c.containerd.sandboxImage || kubeadmPauseImage(c.cluster.kubernetesVersion)) return [];
  const v = c.cluster.kubernetesVersion;
  const known = Object.keys(PAUSE_VERSIONS).map((m) => `v${m}`);
  return [
    {
      key: "containerd.sandboxImage",
      message: `no pause image is known for cluster.kubernetesVersion ${v} (known: ${known.join(", ")}); set it to the pause image \`kubeadm config images list --kubernetes-version ${v}\` prints`,
    },
  ];
};

const CHECKS: Check[] = [
  uniqueNodes,
  unreachableNodes,
  roles,
  quorum,
  controlPlaneVip,
  externalVips,
  routerIds,
  subnets,
  secretsPresent,
  layersAndAddons,
  addons,
  labNetworks,
  cgroupDriver,
  safeValues,
  containerdRuntime,
];

export function checkStackConfig(c: StackConfig, secrets: ReadonlySet<SecretKey>): Finding[] {
  return CHECKS.flatMap((check) => check(c, secrets));
}
