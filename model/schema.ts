// The stack configuration schema: shapes, formats and defaults (the seed's values).
// Cross-field rules (overlaps, quorum, VRRP ids) live in checks.ts. Pure: no Pulumi imports.
import { z } from "zod";
import { isIPv4, parseAddressWithPrefix, parseCidr } from "./ip";

const ipv4 = z.string().refine(isIPv4, { message: "must be an IPv4 address like 10.118.12.20" });
const cidr = z.string().refine((s) => parseCidr(s) !== undefined, { message: "must be an IPv4 network like 10.244.0.0/16 (no host bits)" });
const addressWithPrefix = z
  .string()
  .refine((s) => parseAddressWithPrefix(s) !== undefined, { message: "must be an address with prefix like 10.118.12.20/24" });
const mac = z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, "must be a lower-case MAC like 52:54:00:12:34:56");
const dnsLabel = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "must be a DNS label (lower-case letters, digits, '-')");
const ifName = z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, "must be a Linux interface name (1-15 characters)");
// Go durations as kube components accept them ("2s", "500ms", "1m30s").
const duration = z.string().regex(/^(\d+(ns|us|ms|s|m|h))+$/, "must be a Go duration like 2s or 500ms");
const routerId = z.number().int().min(1).max(255);
const hostKey = z
  .string()
  .regex(
    /^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+=*( .*)?$/,
    "must be an OpenSSH public host key line: '<type> <base64>'",
  );

// A bastion (OpenSSH's ProxyJump): nodes behind it are reached through a TCP channel it opens.
// Its host key is pinned like a node's; there is no first-contact trust for it.
const jumpHost = z
  .object({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(22),
    user: z.string().min(1).optional(),
    hostKey: hostKey.optional(),
  })
  .strict()
  .superRefine((j, ctx) => {
    if (!j.hostKey)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["hostKey"],
        message: `pin the jump host's SSH host key ('<type> <base64>', e.g. from \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` on its console, checked against \`ssh-keyscan -t ed25519 ${j.host}\`)`,
      });
  });

export const ROLES = ["control-plane", "balancer", "worker"] as const;
export const OS_FAMILIES = ["gentoo", "debian", "ubuntu"] as const;
export const INIT_SYSTEMS = ["openrc", "systemd", "none"] as const;

const nic = z
  .object({
    interface: ifName,
    address: addressWithPrefix,
    mac: mac.optional(),
  })
  .strict();

const node = z
  .object({
    name: dnsLabel,
    roles: z.array(z.enum(ROLES)).min(1, "a node needs at least one role"),
    ssh: z
      .object({
        host: z.string().min(1).optional(),
        port: z.number().int().min(1).max(65535).optional(),
        user: z.string().min(1).optional(),
        hostKey: hostKey.optional(),
        // this node's own jump host, or false: reached directly despite ssh.jumpHost (e.g. the bastion itself)
        jumpHost: z.union([jumpHost, z.literal(false)]).optional(),
      })
      .strict()
      .default({}),
    wan0: nic,
    wan1: nic,
    os: z.enum(OS_FAMILIES).optional(),
    init: z.enum(INIT_SYSTEMS).optional(),
  })
  .strict();

const cluster = z
  .object({
    name: dnsLabel.default("kubernetes"),
    kubernetesVersion: z
      .string()
      .regex(/^v1\.\d+\.\d+$/, "must be a Kubernetes release like v1.36.3")
      .default("v1.36.3"),
    podSubnet: cidr.default("10.244.0.0/16"),
    serviceSubnet: cidr.default("10.225.100.0/24"),
    dnsDomain: z
      .string()
      .regex(/^[a-z0-9.-]+$/)
      .default("cluster.local"),
    apiServerPort: z.number().int().min(1).max(65535).default(6443),
    certSANs: z.array(z.string().min(1)).default(["127.0.0.1"]),
    criSocket: z.string().default("unix:///run/containerd/containerd.sock"),
    // The seed's answer to its own "health check" question; defaults are the seed's values.
    health: z
      .object({
        nodeMonitorPeriod: duration.default("2s"),
        nodeMonitorGracePeriod: duration.default("16s"),
        // pod-eviction-timeout (30s in the seed) is gone from kube-controller-manager; the
        // apiserver's default NoExecute tolerations replace it.
        notReadyTolerationSeconds: z.number().int().min(1).default(30),
        unreachableTolerationSeconds: z.number().int().min(1).default(30),
        nodeStatusUpdateFrequency: duration.default("4s"),
      })
      .strict()
      .default({}),
    oidc: z
      .object({
        issuerUrl: z.string().url(),
        clientId: z.string().min(1),
        usernameClaim: z.string().default("email"),
        groupsClaim: z.string().default("groups"),
      })
      .strict()
      .optional(),
    // kubeadm v1beta4 `timeouts` (InitConfiguration / JoinConfiguration); the defaults are
    // kubeadm's own. Raise them for slow hosts (the TCG-emulated lab).
    timeouts: z
      .object({
        controlPlaneComponentHealthCheck: duration.default("4m0s"),
        kubeletHealthCheck: duration.default("4m0s"),
        kubernetesAPICall: duration.default("1m0s"),
        etcdAPICall: duration.default("2m0s"),
        tlsBootstrap: duration.default("5m0s"),
        discovery: duration.default("5m0s"),
      })
      .strict()
      .default({}),
    kubeletExtraArgs: z.record(z.string()).default({}),
    // kubeadm preflight checks to report as warnings (nodeRegistration.ignorePreflightErrors),
    // e.g. SystemVerification where the kernel's config cannot be read. Empty: every check counts.
    // Hosts still on cgroup v1: the kubelet refuses them since v1.35 unless told not to
    // (failCgroupV1: false), and kubeadm's SystemVerification check fails there.
    allowCgroupV1: z.boolean().default(false),
    ignorePreflightErrors: z
      .array(z.string().regex(/^[A-Za-z0-9-]+$/, "must be a kubeadm preflight check name like SystemVerification"))
      .default([]),
    // The seed's btrfs workaround (--feature-gates=LocalStorageCapacityIsolation=false) maps to
    // the KubeletConfiguration field of the same name today.
    localStorageCapacityIsolation: z.boolean().default(true),
    untaintControlPlane: z.boolean().default(true),
    // A rolling upgrade (a new kubernetesVersion) drains and upgrades this many workers at once;
    // control planes always go one at a time.
    upgradeWorkersAtOnce: z.number().int().min(1).default(1),
    // Rehearse: run only `kubeadm init --dry-run` (the program's real config and flags) on the
    // first control plane and show its output; nothing is installed or started for Kubernetes.
    rehearse: z.boolean().default(false),
  })
  .strict();

const vrrp = z
  .object({
    // VRRP authentication is obsolete (RFC 5798 removed it); AH/PASS are kept for seed compatibility.
    // The password is the `vrrpPassword` secret. keepalived uses only its first 8 characters
    // (the VRRPv2 auth field is 8 bytes): longer passwords are silently truncated, so two passwords
    // that share their first 8 characters authenticate each other. The secret's value is unknown
    // when the config is validated, so this cannot be checked here; render/keepalived.ts rejects
    // passwords keepalived's parser would misread (whitespace, quotes, '#', '!').
    authType: z.enum(["none", "PASS", "AH"]).default("none"),
    // seconds between adverts; below 1 s (in steps of 0.01) only with VRRPv3, i.e. authType none
    advertInt: z.number().min(0.01).max(40.95).default(1),
    unicast: z.boolean().default(false),
    controlPlane: z
      .object({
        vip: addressWithPrefix.default("10.118.12.100/24"),
        routerId: routerId.default(5),
        firstPriority: z.number().int().min(2).max(254).default(100),
        // the second control plane's priority; each further one gets successionStep less
        otherPriority: z.number().int().min(1).max(254).default(99),
        // The gap between successive control planes' priorities. When the holder dies, each backup
        // waits 3 adverts plus a skew of (256 - priority)/256 adverts, so a gap of 1 separates
        // the next two candidates by 3.9 ms at advertInt 1: timer jitter on a loaded host then
        // decides, and with nopreempt the VIP stays wherever it landed. 10 gives 39 ms.
        successionStep: z.number().int().min(1).max(100).default(10),
        // false (default): a recovered first node does not take the API VIP back (keepalived
        // `nopreempt`), so a flapping node cannot bounce every client; true: the seed's behaviour.
        preempt: z.boolean().default(false),
        // Go beyond the seed (its own named weakness): keepalived tracks the local apiserver with
        // a vrrp_script (/etc/keepalived/check-apiserver.sh), so a node whose apiserver died gives
        // the VIP up instead of keeping it. The script passes while the node is not yet a control
        // plane (no kube-apiserver manifest), so the first node can hold the VIP before kubeadm init.
        healthCheck: z
          .object({
            // track the apiserver at all; false = the seed's behaviour (VIP follows keepalived only)
            enabled: z.boolean().default(true),
            // keepalived's vrrp_script `interval`: seconds between two checks
            intervalSeconds: z.number().int().min(1).max(60).default(1),
            // keepalived's `timeout` and curl's --max-time: seconds before one check counts as failed
            timeoutSeconds: z.number().int().min(1).max(60).default(1),
            // keepalived's `fall`: consecutive failures before the instance goes to FAULT (drops the VIP)
            fall: z.number().int().min(1).max(100).default(3),
            // keepalived's `rise`: consecutive successes before a FAULT instance may hold the VIP again
            rise: z.number().int().min(1).max(100).default(2),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    external: z
      .object({
        vips: z.array(ipv4).default([]),
        // Seed: virt_ips_per_node — how many balancers back each external IP, in rotation.
        ipsPerNode: z.number().int().min(1).optional(),
        routerIdBase: routerId.default(1),
        topPriority: z.number().int().min(2).max(254).default(100),
        // A recovered balancer takes its IPs back (the pool stays even) only after being healthy
        // this long (keepalived `preempt_delay`); 0 = at once, as in the seed.
        preemptDelaySeconds: z.number().int().min(0).max(1000).default(30),
      })
      .strict()
      .default({}),
  })
  .strict();

const routing = z
  .object({
    enabled: z.boolean().default(true),
    table: z
      .object({ id: z.number().int().min(1).max(252), name: z.string().regex(/^[a-z][a-z0-9_-]*$/) })
      .strict()
      .default({ id: 1, name: "vswitch" }),
    shadowSubnet: cidr.default("10.118.11.0/24"),
    gateway: ipv4.default("10.118.11.1"),
    podRulePriority: z.number().int().min(1).max(32765).default(200),
    shadowRulePriority: z.number().int().min(1).max(32765).default(201),
  })
  .strict();

// kubeadm's certificates (1 year) renewed before they expire, one control plane at a time
const certificates = z
  .object({
    // `up` renews a control plane's certificates when its earliest expires within this many days,
    // and the admin kubeconfig when its certificate does. At or above their lifetime (365 days)
    // every `up` renews (how to renew now).
    renewBeforeDays: z.number().int().min(1).max(3650).default(30),
  })
  .strict();

export const SNAPSHOT_INTERVAL_HOURS = [1, 2, 3, 4, 6, 8, 12, 24] as const;

// etcd snapshots on every control plane (render/etcd-backup.ts), and on demand to this machine.
const etcdBackup = z
  .object({
    enabled: z.boolean().default(true),
    // how often each control plane snapshots its member: a divisor of 24, so the times are the
    // same every day (systemd OnCalendar 00/N:00, cron 0 */N)
    intervalHours: z
      .number()
      .int()
      .refine((h) => (SNAPSHOT_INTERVAL_HOURS as readonly number[]).includes(h), {
        message: `must divide a day: one of ${SNAPSHOT_INTERVAL_HOURS.join(", ")}`,
      })
      .default(6),
    // snapshots kept per control plane, newest first (28 = a week at 6 h)
    retain: z.number().int().min(1).max(1000).default(28),
    // where each control plane keeps them: outside /var/lib/etcd, which `kubeadm reset` empties
    directory: z
      .string()
      .regex(/^\/[A-Za-z0-9._/-]+$/, "must be an absolute path (letters, digits, . _ / -)")
      .refine((d) => !/^\/var\/lib\/etcd(\/|$)/.test(d) && !d.split("/").includes(".."), {
        message: "must not be in /var/lib/etcd (kubeadm reset empties it) nor contain ..",
      })
      .default("/var/backups/etcd"),
    // change it (any new label, e.g. a date) and `pulumi up` takes a snapshot on a live control
    // plane and copies it, with its sha256, into localDirectory on this machine
    snapshotNow: z
      .string()
      .regex(/^[A-Za-z0-9._-]*$/, "must be a label of letters, digits, . _ -")
      .default(""),
    // on this machine; relative paths are from the project directory
    localDirectory: z.string().min(1).default("etcd-snapshots"),
    // a snapshot this program took (its .sha256 and .pki.tar beside it), on this machine: when no
    // control plane has a cluster, the first is initialised from it and the others join it
    restoreFrom: z.string().default(""),
  })
  .strict();

const cilium = z
  .object({
    enabled: z.boolean().default(true),
    version: z
      .string()
      .regex(/^\d+\.\d+\.\d+$/)
      .default("1.19.6"),
    // The chart: a name in `repository`, or with repository "" a chart directory or archive on
    // the machine running pulumi (an air-gapped install, or a chart built from the cilium module).
    chart: z.string().min(1).default("cilium"),
    repository: z.string().default("https://helm.cilium.io"),
    // Reach the API through an SSH tunnel via a control-plane node when the VIP is not routable
    // from where `pulumi` runs (typical for the libvirt lab and for private bare-metal networks).
    apiAccess: z.enum(["direct", "ssh-tunnel"]).default("direct"),
    // The tunnel's local port. It is part of the Kubernetes provider's kubeconfig, so it must be
    // the same on every run (a new port would show as a provider change); default: one derived
    // from the project and stack names, in 38000-39999.
    tunnelPort: z.number().int().min(1024).max(65535).optional(),
    values: z.record(z.unknown()).default({}),
  })
  .strict();

// The node runtime (containerd), written by the program on every node that runs Kubernetes.
const registryHost = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/, "must be a registry host like docker.io or registry.example.com:5000");
const containerd = z
  .object({
    // overlayfs on ordinary hosts; native where the root is itself an overlay (containers, the testbed)
    snapshotter: z.enum(["overlayfs", "native", "btrfs", "zfs"]).default("overlayfs"),
    // the pause image; default: the one kubeadm expects for cluster.kubernetesVersion
    sandboxImage: z
      .string()
      .regex(
        /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?(\/[a-z0-9._-]+)+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$/,
        "must be an image reference like registry.k8s.io/pause:3.10.2",
      )
      .optional(),
    // hosts that let no process lower its OOM score (inside containers, some VPS kernels)
    restrictOomScoreAdj: z.boolean().default(false),
    // pull through these mirrors first (air-gapped installs): { "registry.k8s.io": ["https://mirror.example.com"] }
    registryMirrors: z
      .record(
        registryHost,
        z
          .array(
            z
              .string()
              .regex(
                /^https:\/\/[A-Za-z0-9.-]+(:\d{1,5})?(\/[A-Za-z0-9._~/-]*)?$/,
                "must be an https:// mirror URL (plain http lets the network swap images)",
              ),
          )
          .min(1),
      )
      .default({}),
  })
  .strict();

// Add-ons (seed §6 and their 2026 successors). Every release has the same chart source keys as
// cilium: version; chart, a name in repository, or with repository "" a chart directory or .tgz
// on the machine running pulumi (air-gapped installs, charts built here); values, merged over ours.
const chartSource = (version: string, chart: string, repository: string) => ({
  version: z
    .string()
    .regex(/^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$/, "must be a chart version like 1.2.3")
    .default(version),
  chart: z.string().min(1).default(chart),
  repository: z.string().default(repository),
  values: z.record(z.unknown()).default({}),
});
// host:port (an IPv6 host in brackets), as cert-manager takes nameservers
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):\d{1,5}$/;
const hostPort = z
  .string()
  .regex(HOST_PORT, "must be host:port like 10.118.11.53:53 (an IPv6 address in brackets)")
  .refine((s) => Number(s.slice(s.lastIndexOf(":") + 1)) <= 65535, { message: "has a port above 65535" });
/** The TSIG algorithms cert-manager's RFC2136 solver accepts (pkg/issuer/acme/dns/rfc2136). */
export const TSIG_ALGORITHMS = ["HMACMD5", "HMACSHA1", "HMACSHA256", "HMACSHA512"] as const;
export const LETSENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory";

const certManager = z
  .object({
    enabled: z.boolean().default(false),
    ...chartSource("v1.21.2", "cert-manager", "https://charts.jetstack.io"),
    // keep: the chart marks its CRDs helm.sh/resource-policy keep, so disabling cert-manager leaves
    // them and every Certificate; false removes them with the release
    crds: z
      .object({ keep: z.boolean().default(true) })
      .strict()
      .default({}),
    // resolvers for the DNS-01 self-check instead of the cluster's (split-horizon DNS)
    recursiveNameservers: z.array(hostPort).min(1).optional(),
    issuer: z
      .object({
        // false: cert-manager only, bring your own issuer
        enabled: z.boolean().default(true),
        name: z
          .string()
          .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, "must be a Kubernetes object name (lower-case letters, digits, '-', '.')")
          .default("letsencrypt"),
        server: z
          .string()
          .regex(
            /^https:\/\/[^\s]+$/,
            "must be an https:// ACME directory URL like https://acme-v02.api.letsencrypt.org/directory (over plain http the network could pose as the CA)",
          )
          .default(LETSENCRYPT_PRODUCTION),
        email: z.string().email("must be an email address for the ACME account, like admin@example.com").optional(),
        // PEM of the CA that signed a private ACME server's certificate (spec.acme.caBundle)
        caBundle: z
          .string()
          .regex(/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/, "must be PEM certificates (-----BEGIN CERTIFICATE----- …)")
          .optional(),
        rfc2136: z
          .object({
            nameserver: hostPort,
            tsigKeyName: z.string().min(1),
            tsigAlgorithm: z.enum(TSIG_ALGORITHMS).default("HMACSHA512"),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({}),
    // Moved to issuer.email / issuer.rfc2136 (issue 12); accepted here only so checks.ts can
    // name the new key instead of calling them typos.
    email: z.unknown().optional(),
    rfc2136: z.unknown().optional(),
  })
  .strict();

/** Gateway API implementations the program can install; cilium's runs inside the cilium release. */
export const GATEWAY_IMPLEMENTATIONS = ["traefik", "cilium"] as const;

const gateway = z
  .object({
    enabled: z.boolean().default(false),
    implementation: z.enum(GATEWAY_IMPLEMENTATIONS).default("traefik"),
    // traefik's chart (implementation traefik only)
    ...chartSource("41.6.0", "traefik", "https://traefik.github.io/charts"),
    gatewayApiCrds: z
      .object({
        // a sigs.k8s.io/gateway-api release; default: the one the implementation supports
        version: z
          .string()
          .regex(/^v\d+\.\d+\.\d+$/, "must be a gateway-api release like v1.5.1")
          .optional(),
        // the standard-install.yaml: https:// URL or a path on this machine; default: the release's URL
        source: z.string().min(1).optional(),
        // like certManager.crds.keep: disabling the gateway leaves the CRDs (and every route)
        keep: z.boolean().default(true),
      })
      .strict()
      .default({}),
  })
  .strict();

const ui = z
  .object({
    enabled: z.boolean().default(false),
    implementation: z.enum(["headlamp"]).default("headlamp"),
    ...chartSource("0.45.0", "headlamp", "https://kubernetes-sigs.github.io/headlamp/"),
    // the seed's "admin account to log in with", without a long-lived token
    admin: z
      .object({
        enabled: z.boolean().default(true),
        serviceAccount: dnsLabel.default("headlamp-admin"),
        tokenDuration: z
          .string()
          .regex(/^(\d+(s|m|h))+$/, "must be a duration like 1h or 30m")
          .default("1h"),
      })
      .strict()
      .default({}),
  })
  .strict();

// Retired upstream; selectable, with a warning at preview (render/addons.ts).
const dashboard = z
  .object({
    enabled: z.boolean().default(false),
    ...chartSource("7.13.0", "kubernetes-dashboard", "https://kubernetes.github.io/dashboard/"),
  })
  .strict();
const ingressNginx = z
  .object({ enabled: z.boolean().default(false), ...chartSource("4.13.3", "ingress-nginx", "https://kubernetes.github.io/ingress-nginx") })
  .strict();

const addons = z
  .object({
    certManager: certManager.default({}),
    gateway: gateway.default({}),
    ui: ui.default({}),
    dashboard: dashboard.default({}),
    ingressNginx: ingressNginx.default({}),
  })
  .strict();

const lab = z
  .object({
    enabled: z.boolean().default(false),
    uri: z
      .string()
      .regex(
        /^(qemu|test)(\+(ssh|libssh|libssh2))?:\/\//,
        "must be a libvirt URI like qemu:///system, qemu+ssh://root@host/system or qemu+libssh://root@host/system?known_hosts=…",
      )
      .default("qemu:///system"),
    domainType: z.enum(["kvm", "qemu"]).default("kvm"),
    pool: z.string().default("default"),
    // A qcow2 path (or volume) on the hypervisor, or an http(s) URL the program downloads once,
    // verifies against baseImageChecksum and uploads into the pool.
    baseImage: z.string().optional(),
    baseImageChecksum: z
      .string()
      .regex(
        /^(sha256:[0-9a-fA-F]{64}|sha512:[0-9a-fA-F]{128})$/,
        "must be sha256:<64 hex digits> or sha512:<128 hex digits>, as the image's SHA256SUMS / SHA512SUMS file lists it",
      )
      .optional(),
    // Direct kernel boot (paths on the hypervisor): the VMs boot this kernel/initrd instead of
    // the disk's boot loader — for images without one (the test's busybox initramfs).
    kernel: z.string().min(1).optional(),
    initrd: z.string().min(1).optional(),
    cmdline: z.string().optional(),
    networks: z
      .object({
        wan0: z
          .object({
            name: z.string().default("wan0"),
            gateway: addressWithPrefix.default("10.118.10.1/24"),
            dhcpStart: ipv4.default("10.118.10.128"),
            dhcpEnd: ipv4.default("10.118.10.254"),
          })
          .strict()
          .default({}),
        shadow: z
          .object({ name: z.string().default("shadow"), gateway: addressWithPrefix.default("10.118.11.1/24") })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    vm: z
      .object({
        memoryMiB: z.number().int().min(512).default(3072),
        vcpus: z.number().int().min(1).default(2),
        diskGiB: z.number().int().min(1).default(10),
      })
      .strict()
      .default({}),
  })
  .strict();

// Layers let a stack stop short of the full cluster (the SSH lab runs host prep + VRRP only).
const layers = z
  .object({
    // false: no SSH to the nodes at all (no ClusterHost) — a stack that only builds the libvirt lab
    hosts: z.boolean().default(true),
    hostPrep: z.boolean().default(true),
    keepalived: z.boolean().default(true),
    kubernetes: z.boolean().default(true),
    cilium: z.boolean().default(true),
    addons: z.boolean().default(true),
  })
  .strict();

// Where Debian/Ubuntu nodes get kubeadm, kubelet, kubectl and cri-tools: not in the
// distributions' archives, so the program adds the Kubernetes package repository.
const httpUrl = z.string().regex(/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?\/[A-Za-z0-9._~:%+\/-]*$/, "must be an http:// or https:// URL");
const aptUrl = httpUrl.refine((u) => u.endsWith("/"), "must end with / (a flat repository: `deb <url> /`)");
const KUBERNETES_REPOSITORY_KEY = "DE15B14486CD377B9E876E1A234654DA9A296436";
const packages = z
  .object({
    kubernetesRepository: z
      .union([
        // false: the nodes already have the packages, or a repository of the operator's own
        z.literal(false),
        z
          .object({
            // default: the minor channel of cluster.kubernetesVersion, https://pkgs.k8s.io/core:/stable:/v1.36/deb/
            url: aptUrl.optional(),
            // default: <url>Release.key
            keyUrl: httpUrl.optional(),
            // the signing key a node downloads must have this fingerprint before apt trusts it
            keyFingerprint: z
              .string()
              .regex(/^\s*([0-9A-Fa-f]\s*){40}$/, "must be the signing key's fingerprint, 40 hex digits (gpg --show-keys prints it)")
              .default(KUBERNETES_REPOSITORY_KEY),
          })
          .strict(),
      ])
      .default({}),
  })
  .strict();

const sshDefaults = z
  .object({
    user: z.string().min(1).default("root"),
    port: z.number().int().min(1).max(65535).default(22),
    connectTimeoutSeconds: z.number().int().min(1).max(300).default(20),
    retries: z.number().int().min(0).max(20).default(5),
    // A node with no nodes[].ssh.hostKey (and not a program-created lab VM): stop on first
    // contact with the key seen and the command to pin it (false), or record that key (true).
    trustOnFirstUse: z.boolean().default(false),
    // every node is reached through this bastion unless its nodes[].ssh.jumpHost says otherwise
    jumpHost: jumpHost.optional(),
  })
  .strict();

const osDefaults = z.object({ family: z.enum(OS_FAMILIES).default("gentoo"), init: z.enum(INIT_SYSTEMS).optional() }).strict();

/** Non-secret keys of the stack configuration, as they appear under the project's namespace. */
export const stackConfigSchema = z
  .object({
    cluster: cluster.default({}),
    nodes: z.array(node).min(1, "at least one node is required"),
    // nodes removed from `nodes` that SSH cannot reach (a dead machine): the program never contacts
    // them; their membership leaves etcd and the API through a live control plane, and their other
    // resources leave the state without a delete on the host (wipe such a machine before reuse)
    unreachableNodes: z.array(dnsLabel).default([]),
    ssh: sshDefaults.default({}),
    os: osDefaults.default({}),
    vrrp: vrrp.default({}),
    routing: routing.default({}),
    containerd: containerd.default({}),
    packages: packages.default({}),
    etcdBackup: etcdBackup.default({}),
    certificates: certificates.default({}),
    cilium: cilium.default({}),
    addons: addons.default({}),
    lab: lab.default({}),
    layers: layers.default({}),
  })
  .strict();

/** Config keys holding secrets; read with getSecret and never parsed into plain values. */
export const SECRET_KEYS = ["sshPrivateKey", "vrrpPassword", "certManagerTsigSecret"] as const;
export type SecretKey = (typeof SECRET_KEYS)[number];

export type StackConfigInput = z.input<typeof stackConfigSchema>;
export type StackConfig = z.output<typeof stackConfigSchema>;
export type NodeConfig = StackConfig["nodes"][number];
export type AddonsConfig = StackConfig["addons"];
export type Role = (typeof ROLES)[number];
export type OsFamily = (typeof OS_FAMILIES)[number];
export type InitSystem = (typeof INIT_SYSTEMS)[number];
