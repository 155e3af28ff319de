// Stack config validation: one test per bad input; each error must name the offending key.
import { ConfigError, parseStackConfig } from "../../model/parse";
import type { SecretKey } from "../../model/schema";
import { NAMESPACE, devConfig, devConfigCopy, devSecretKeys, devSpec } from "../fixtures/dev";

type Raw = Record<string, any>;

function parseError(raw: Raw, secrets: ReadonlySet<SecretKey> = devSecretKeys, allKeys?: string[]): ConfigError {
  try {
    parseStackConfig(NAMESPACE, raw, secrets, allKeys);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected a ConfigError, the config parsed");
}

/** The error has a finding for `key` (reported as `<namespace>:<key>: …`) whose text matches. */
function expectFinding(raw: Raw, key: string, message?: RegExp, secrets?: ReadonlySet<SecretKey>): ConfigError {
  const err = parseError(raw, secrets);
  expect(err.message).toContain(`${NAMESPACE}:${key}: `);
  const f = err.findings.find((x) => x.key === key);
  expect(f).toBeDefined();
  if (message) expect(f!.message).toMatch(message);
  return err;
}

const mutate = (fn: (c: Raw) => void): Raw => {
  const c = devConfigCopy();
  fn(c);
  return c;
};

/** Extra seed-style nodes k8s-5.. (lab MACs included). */
const extraNode = (n: number, roles: string[]) => ({
  name: `k8s-${n}`,
  roles,
  wan0: { interface: "wan0", address: `10.118.10.${19 + n}/24`, mac: `52:54:00:12:34:${(0x55 + n).toString(16)}` },
  wan1: { interface: "wan1", address: `10.118.12.${19 + n}/24`, mac: `52:54:00:12:35:${(0x55 + n).toString(16)}` },
});

describe("the dev fixture", () => {
  test("parses cleanly into the seed's lab", () => {
    const s = devSpec();
    expect(s.nodes.map((n) => n.name)).toEqual(["k8s-1", "k8s-2", "k8s-3", "k8s-4"]);
    expect(s.controlPlanes.map((n) => n.name)).toEqual(["k8s-1", "k8s-2", "k8s-3"]);
    expect(s.balancers.map((n) => n.name)).toEqual(["k8s-1", "k8s-2", "k8s-3"]);
    expect(s.workers.map((n) => n.name)).toEqual(["k8s-4"]);
    expect(s.controlPlaneEndpoint).toBe("10.118.12.100:6443");
    expect(s.nodes.map((n) => [n.os, n.init])).toEqual(Array(4).fill(["gentoo", "openrc"]));
    expect(s.nodes[3].wan1).toEqual({
      interface: "wan1",
      ip: "10.118.12.23",
      prefix: 24,
      address: "10.118.12.23/24",
      subnet: "10.118.12.0/24",
      mac: "52:54:00:12:35:59",
    });
    expect(s.config.vrrp.controlPlane.healthCheck).toEqual({ enabled: true, intervalSeconds: 1, timeoutSeconds: 1, fall: 3, rise: 2 });
    expect(s.config.lab.enabled).toBe(true);
  });

  test("is not mutated by parsing (a frozen literal)", () => {
    expect(devConfig.nodes).toHaveLength(4);
  });
});

describe("bad stack config: each names its key", () => {
  test("duplicate node names", () => {
    expectFinding(
      mutate((c) => (c.nodes[1].name = "k8s-1")),
      "nodes[1].name",
      /duplicate node name k8s-1/,
    );
  });

  test("duplicate IPs", () => {
    expectFinding(
      mutate((c) => (c.nodes[2].wan1.address = "10.118.12.20/24")),
      "nodes[2].wan1.address",
      /duplicate node address 10.118.12.20/,
    );
  });

  test("duplicate MACs", () => {
    expectFinding(
      mutate((c) => (c.nodes[3].wan0.mac = c.nodes[0].wan0.mac)),
      "nodes[3].wan0.mac",
      /duplicate MAC/,
    );
  });

  test("control-plane VIP outside the wan1 subnet", () => {
    expectFinding(
      mutate((c) => (c.vrrp.controlPlane.vip = "10.118.13.100/24")),
      "vrrp.controlPlane.vip",
      /outside .*wan1 subnet/,
    );
  });

  test("control-plane VIP equal to a node address", () => {
    expectFinding(
      mutate((c) => (c.vrrp.controlPlane.vip = "10.118.12.21/24")),
      "vrrp.controlPlane.vip",
      /equals nodes\[1\]\.wan1\.address/,
    );
  });

  test("pod subnet overlapping the service subnet", () => {
    const err = expectFinding(
      mutate((c) => (c.cluster = { serviceSubnet: "10.244.128.0/24" })),
      "cluster.serviceSubnet",
      /overlaps cluster.podSubnet/,
    );
    expect(err.message).toContain("cluster.podSubnet");
  });

  test("pod subnet overlapping a node network", () => {
    const err = expectFinding(
      mutate((c) => (c.cluster = { podSubnet: "10.118.0.0/16" })),
      "routing.shadowSubnet",
      /overlaps cluster.podSubnet/,
    );
    expect(err.findings.some((f) => f.key === "nodes[0].wan1.address" && /cluster.podSubnet/.test(f.message))).toBe(true);
  });

  test("service subnet overlapping a node network", () => {
    expectFinding(
      mutate((c) => (c.cluster = { serviceSubnet: "10.118.10.0/24" })),
      "nodes[0].wan0.address",
      /overlaps cluster.serviceSubnet/,
    );
  });

  test.each([
    [2, (c: Raw) => (c.nodes[2].roles = ["balancer"])],
    [4, (c: Raw) => (c.nodes[3].roles = ["control-plane"])],
    [6, (c: Raw) => c.nodes.push(extraNode(5, ["control-plane"]), extraNode(6, ["control-plane"]), extraNode(7, ["control-plane"]))],
  ])("%i control-plane nodes (etcd quorum)", (count, fn) => {
    expectFinding(mutate(fn), "nodes", new RegExp(`has ${count} control-plane nodes; etcd needs 1 \\(test only\\), 3 or 5`));
  });

  test("duplicate router id: control plane id inside the external range", () => {
    expectFinding(
      mutate((c) => (c.vrrp.controlPlane.routerId = 2)),
      "vrrp.controlPlane.routerId",
      /collides with the external VIPs' router ids 1..3/,
    );
  });

  test("control-plane succession that would drop priorities below 1", () => {
    // 5 control planes: 100, then 99, 66, 33 and 0 at step 33; step 32 ends at 3
    const five = mutate((c) => {
      c.nodes = [...c.nodes, extraNode(5, ["control-plane"]), extraNode(6, ["control-plane"])];
      c.vrrp.controlPlane.successionStep = 33;
    });
    expectFinding(
      five,
      "vrrp.controlPlane.otherPriority",
      /5 control planes.*successionStep \(33\) less.*lower vrrp.controlPlane.successionStep/,
    );
    five.vrrp.controlPlane.successionStep = 32;
    expect(() => parseStackConfig(NAMESPACE, five, devSecretKeys)).not.toThrow();
  });

  test("router id out of range (> 255)", () => {
    expectFinding(
      mutate((c) => (c.vrrp.controlPlane.routerId = 256)),
      "vrrp.controlPlane.routerId",
      /255/,
    );
  });

  test("external router ids running past 255", () => {
    expectFinding(
      mutate((c) => (c.vrrp.external.routerIdBase = 254)),
      "vrrp.external.routerIdBase",
      /past router id 255/,
    );
  });

  test("external IP outside the shadow subnet", () => {
    expectFinding(
      mutate((c) => (c.vrrp.external.vips[1] = "10.118.12.50")),
      "vrrp.external.vips[1]",
      /outside the shadow subnet 10.118.11.0\/24/,
    );
  });

  test("ipsPerNode greater than the balancer count", () => {
    expectFinding(
      mutate((c) => (c.vrrp.external.ipsPerNode = 4)),
      "vrrp.external.ipsPerNode",
      /exceeds the 3 balancer/,
    );
  });

  test("unknown top-level key (typo), reported once", () => {
    const err = expectFinding(
      mutate((c) => (c.clustr = { name: "x" })),
      "clustr",
      /not a known key/,
    );
    expect(err.findings.filter((f) => f.key === "clustr")).toHaveLength(1);
  });

  test("unknown top-level key seen only in the namespace's key list", () => {
    const err = parseError(devConfigCopy(), devSecretKeys, [...Object.keys(devConfig), "vrrpPasword"]);
    expect(err.message).toContain(`${NAMESPACE}:vrrpPasword: is not a known key`);
  });

  test("unknown nested key (cluster.podSubnett)", () => {
    expectFinding(
      mutate((c) => (c.cluster = { podSubnett: "10.244.0.0/16" })),
      "cluster.podSubnett",
      /not a known key/,
    );
  });

  test("missing sshPrivateKey", () => {
    expectFinding(devConfigCopy(), "sshPrivateKey", /pulumi config set --secret sshPrivateKey/, new Set<SecretKey>(["vrrpPassword"]));
  });

  test("AH without vrrpPassword", () => {
    expectFinding(devConfigCopy(), "vrrpPassword", /vrrp.authType AH/, new Set<SecretKey>(["sshPrivateKey"]));
  });

  test("health check timing out of range", () => {
    expectFinding(
      mutate((c) => (c.vrrp.controlPlane.healthCheck = { fall: 0 })),
      "vrrp.controlPlane.healthCheck.fall",
    );
  });

  test("a node both in nodes and in unreachableNodes", () => {
    expectFinding(
      mutate((c) => (c.unreachableNodes = [c.nodes[3].name])),
      "unreachableNodes",
      /k8s-4 is still in nodes/,
    );
  });

  test("certificate renewal window of 0 days (it would renew only expired certificates)", () => {
    expectFinding(
      mutate((c) => (c.certificates = { renewBeforeDays: 0 })),
      "certificates.renewBeforeDays",
    );
  });

  test("nodes mixing systemd and non-systemd init (one cluster-wide kubelet cgroup driver)", () => {
    expectFinding(
      mutate((c) => (c.nodes[3].init = "systemd")),
      "nodes[3].init",
      /cgroup driver is cluster-wide/,
    );
  });

  test("a jump host without a pinned host key (there is no first-contact trust for it)", () => {
    expectFinding(
      mutate((c) => (c.ssh = { jumpHost: { host: "bastion.example" } })),
      "ssh.jumpHost.hostKey",
      /pin the jump host's SSH host key .*ssh-keyscan -t ed25519 bastion\.example/,
    );
  });

  test("a node's jump host with a malformed host key", () => {
    expectFinding(
      mutate((c) => (c.nodes[1].ssh = { jumpHost: { host: "10.0.0.1", hostKey: "ssh-ed25519" } })),
      "nodes[1].ssh.jumpHost.hostKey",
      /OpenSSH public host key line/,
    );
  });

  test("all problems are reported at once", () => {
    const err = parseError(
      mutate((c) => {
        c.nodes[1].name = "k8s-1";
        c.vrrp.external.ipsPerNode = 4;
      }),
    );
    expect(err.findings.map((f) => f.key)).toEqual(expect.arrayContaining(["nodes[1].name", "vrrp.external.ipsPerNode"]));
  });
});

describe("sub-second adverts", () => {
  test("need VRRPv3, so no authentication", () => {
    expectFinding(
      mutate((c) => (c.vrrp.advertInt = 0.5)),
      "vrrp.advertInt",
      /needs VRRPv3.*authType to none/,
    );
  });
  test("count in hundredths of a second", () => {
    expectFinding(
      mutate((c) => Object.assign(c.vrrp, { authType: "none", advertInt: 0.333 })),
      "vrrp.advertInt",
      /round it to 0\.01/,
    );
  });
  test("0.5 s without authentication is accepted", () => {
    expect(
      parseStackConfig(
        NAMESPACE,
        mutate((c) => Object.assign(c.vrrp, { authType: "none", advertInt: 0.5 })),
        devSecretKeys,
      ).config.vrrp.advertInt,
    ).toBe(0.5);
  });
});

describe("a libvirt-only stack (layers.hosts false)", () => {
  const libvirtOnly = (c: Raw) => {
    c.layers = { hosts: false, hostPrep: false, keepalived: false, kubernetes: false, cilium: false, addons: false };
    c.routing = { ...c.routing, enabled: false };
  };
  test("is accepted with every SSH layer off", () => {
    const s = parseStackConfig(NAMESPACE, mutate(libvirtOnly), devSecretKeys);
    expect(s.config.layers.hosts).toBe(false);
    expect(parseStackConfig(NAMESPACE, devConfigCopy(), devSecretKeys).config.layers.hosts).toBe(true);
  });
  test("refuses a layer that needs SSH to the nodes", () => {
    expectFinding(
      mutate((c) => (libvirtOnly(c), (c.layers.keepalived = true))),
      "layers.keepalived",
      /layers.hosts is false/,
    );
    expectFinding(
      mutate((c) => (libvirtOnly(c), (c.routing.enabled = true))),
      "routing.enabled",
      /layers.hosts is false/,
    );
  });
  test("needs the lab", () => {
    expectFinding(
      mutate((c) => (libvirtOnly(c), (c.lab.enabled = false))),
      "layers.hosts",
      /lab.enabled/,
    );
  });
});

describe("lab base image by URL", () => {
  const SHA256 = "sha256:" + "ab".repeat(32);
  test("a URL with its checksum is accepted; a path needs none", () => {
    const s = parseStackConfig(
      NAMESPACE,
      mutate((c) => ((c.lab.baseImage = "https://images.example/debian-12.qcow2"), (c.lab.baseImageChecksum = SHA256))),
      devSecretKeys,
    );
    expect(s.config.lab.baseImageChecksum).toBe(SHA256);
    expect(parseStackConfig(NAMESPACE, devConfigCopy(), devSecretKeys).config.lab.baseImageChecksum).toBeUndefined();
  });
  test("a URL without a checksum is refused, naming the checksum key", () => {
    expectFinding(
      mutate((c) => (c.lab.baseImage = "https://images.example/debian-12.qcow2")),
      "lab.baseImageChecksum",
      /required when lab.baseImage is a URL/,
    );
  });
  test("a checksum that is not sha256/sha512 hex of the right length is refused", () => {
    for (const bad of ["md5:" + "a".repeat(32), "sha256:" + "a".repeat(63), "sha512:" + "g".repeat(128), "ab".repeat(32)])
      expectFinding(
        mutate((c) => ((c.lab.baseImage = "https://images.example/x.qcow2"), (c.lab.baseImageChecksum = bad))),
        "lab.baseImageChecksum",
        /sha256:<64 hex digits> or sha512:<128 hex digits>/,
      );
  });
  test("a checksum beside a hypervisor path, and a non-http URL, are refused", () => {
    expectFinding(
      mutate((c) => (c.lab.baseImageChecksum = SHA256)),
      "lab.baseImageChecksum",
      /applies only when lab.baseImage is an http\(s\) URL/,
    );
    expectFinding(
      mutate((c) => ((c.lab.baseImage = "ftp://images.example/x.qcow2"), (c.lab.baseImageChecksum = SHA256))),
      "lab.baseImage",
      /only http\(s\) URLs/,
    );
  });
});

describe("lab direct kernel boot and URIs", () => {
  test("initrd or cmdline without a kernel is refused", () => {
    expectFinding(
      mutate((c) => (c.lab.initrd = "/var/lib/libvirt/images/initrd")),
      "lab.initrd",
      /lab.kernel/,
    );
    expectFinding(
      mutate((c) => (c.lab.cmdline = "console=ttyS0")),
      "lab.cmdline",
      /lab.kernel/,
    );
  });
  test("qemu+libssh URIs (pinned known_hosts) are accepted, other schemes are not", () => {
    const uri = "qemu+libssh://root@127.0.0.1:22/system?keyfile=/k&known_hosts=/kh";
    expect(
      parseStackConfig(
        NAMESPACE,
        mutate((c) => (c.lab.uri = uri)),
        devSecretKeys,
      ).config.lab.uri,
    ).toBe(uri);
    expectFinding(
      mutate((c) => (c.lab.uri = "xen+ssh://root@h/system")),
      "lab.uri",
    );
  });
});

describe("values that reach a shell, a service definition or an unauthenticated transport", () => {
  test("a kubeletExtraArgs value with shell metacharacters (OpenRC evaluates conf.d as sh)", () => {
    expectFinding(
      mutate((c) => ((c.cluster ??= {}).kubeletExtraArgs = { v: "2;id>/tmp/pwned" })),
      "cluster.kubeletExtraArgs.v",
      /shell/,
    );
    expectFinding(
      mutate((c) => ((c.cluster ??= {}).kubeletExtraArgs = { "node-labels": "a=$(reboot)" })),
      "cluster.kubeletExtraArgs.node-labels",
    );
  });
  test("a kubeletExtraArgs key that is not a flag name", () => {
    expectFinding(
      mutate((c) => ((c.cluster ??= {}).kubeletExtraArgs = { "v|sh": "2" })),
      "cluster.kubeletExtraArgs.v|sh",
      /flag name/,
    );
    expectFinding(
      mutate((c) => ((c.cluster ??= {}).kubeletExtraArgs = { "-v": "2" })),
      "cluster.kubeletExtraArgs.-v",
    );
  });
  test("safe kubeletExtraArgs are accepted", () => {
    const args = { "node-labels": "a.b/c=d,e=f", "max-pods": "150", "feature-gates": "A=true,B=false", "image-gc-high-threshold": "85" };
    expect(
      parseStackConfig(
        NAMESPACE,
        mutate((c) => ((c.cluster ??= {}).kubeletExtraArgs = args)),
        devSecretKeys,
      ).config.cluster.kubeletExtraArgs,
    ).toEqual(args);
  });
  test("criSocket must be a unix:/// socket path", () => {
    expectFinding(
      mutate((c) => ((c.cluster ??= {}).criSocket = "unix:///run/x.sock\nimage-endpoint: tcp://evil:1")),
      "cluster.criSocket",
      /unix socket/,
    );
    expectFinding(
      mutate((c) => ((c.cluster ??= {}).criSocket = "tcp://10.0.0.1:2375")),
      "cluster.criSocket",
    );
  });
  test("lab.uri: no_verify=1 is refused", () => {
    expectFinding(
      mutate((c) => (c.lab.uri = "qemu+libssh://root@h/system?no_verify=1")),
      "lab.uri",
      /no_verify=1.*identity/,
    );
  });
  test("lab.uri: known_hosts_verify other than normal is refused", () => {
    for (const v of ["ignore", "auto"])
      expectFinding(
        mutate((c) => (c.lab.uri = `qemu+libssh://root@h/system?known_hosts=/kh&known_hosts_verify=${v}`)),
        "lab.uri",
        new RegExp(`known_hosts_verify=${v}`),
      );
    const ok = "qemu+libssh://root@h/system?known_hosts=/kh&known_hosts_verify=normal&no_verify=0";
    expect(
      parseStackConfig(
        NAMESPACE,
        mutate((c) => (c.lab.uri = ok)),
        devSecretKeys,
      ).config.lab.uri,
    ).toBe(ok);
  });
  test("cilium.repository must be https (or empty for a local chart)", () => {
    expectFinding(
      mutate((c) => (c.cilium.repository = "http://helm.cilium.io")),
      "cilium.repository",
      /https/,
    );
    expect(
      parseStackConfig(
        NAMESPACE,
        mutate((c) => ((c.cilium.repository = ""), (c.cilium.chart = "./charts/cilium"))),
        devSecretKeys,
      ).config.cilium.repository,
    ).toBe("");
  });
  test("containerd.sandboxImage is needed for a Kubernetes minor whose pause image the program does not know", () => {
    expectFinding(
      mutate((c) => (c.cluster = { kubernetesVersion: "v1.99.0" })),
      "containerd.sandboxImage",
      /v1\.99\.0.*kubeadm config images list/,
    );
    expect(
      parseStackConfig(
        NAMESPACE,
        mutate((c) => ((c.cluster = { kubernetesVersion: "v1.99.0" }), (c.containerd = { sandboxImage: "registry.k8s.io/pause:3.11" }))),
        devSecretKeys,
      ).config.containerd.sandboxImage,
    ).toBe("registry.k8s.io/pause:3.11");
  });
  test("containerd.registryMirrors: registry hosts as keys, https mirrors only", () => {
    expectFinding(
      mutate((c) => (c.containerd = { registryMirrors: { "docker.io": ["http://mirror.example.com"] } })),
      "containerd.registryMirrors.docker.io[0]",
      /https/,
    );
    expectFinding(
      mutate((c) => (c.containerd = { registryMirrors: { "Bad Host": ["https://m.example.com"] } })),
      "containerd.registryMirrors.Bad Host",
    );
    expectFinding(
      mutate((c) => (c.containerd = { snapshotter: "aufs" })),
      "containerd.snapshotter",
    );
    expectFinding(
      mutate((c) => (c.containerd = { sandboxImage: "pause;reboot" })),
      "containerd.sandboxImage",
    );
  });
});

describe("ssh.jumpHost", () => {
  const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK3E7J0xKJ3y9hC1xk7mO4n9vV5oW3bI0y1p2q3r4s5t";
  const spec = (fn: (c: Raw) => void) => parseStackConfig(NAMESPACE, mutate(fn), devSecretKeys);

  test("the stack's jump host reaches every node; a node may opt out (false) or have its own", () => {
    const s = spec((c) => {
      c.ssh = { user: "ops", jumpHost: { host: "bastion.example", hostKey: KEY } };
      c.nodes[0].ssh = { jumpHost: false };
      c.nodes[2].ssh = { jumpHost: { host: "10.0.0.9", port: 2222, user: "jump", hostKey: KEY } };
    });
    expect(s.nodes.map((n) => n.ssh.jump)).toEqual([
      undefined,
      { name: "jump host bastion.example", host: "bastion.example", port: 22, user: "ops", hostKey: KEY },
      { name: "jump host 10.0.0.9:2222", host: "10.0.0.9", port: 2222, user: "jump", hostKey: KEY },
      { name: "jump host bastion.example", host: "bastion.example", port: 22, user: "ops", hostKey: KEY },
    ]);
  });

  test("without one, nodes are reached directly (the dev stack)", () => {
    expect(devSpec().nodes.every((n) => n.ssh.jump === undefined)).toBe(true);
  });
});
