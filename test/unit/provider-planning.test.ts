// What the providers would run for a given observed host state — no host needed.
import { packageCommands, serviceCommands } from "../../providers/os/configurer";
import { extractBlock, removeBlock, upsertBlock } from "../../providers/impl/blocks";
import { parseProbe, planSettings } from "../../providers/impl/host-settings";
import { missingPackages } from "../../providers/impl/packages";
import { liveRouteKeys, liveRuleKeys, planRouting, routeKey, ruleKey } from "../../providers/impl/policy-routing";
import { planService } from "../../providers/impl/service";
import { upgradeState as initState } from "../../providers/impl/kubeadm-init";
import { upgradeState as joinState } from "../../providers/impl/kubeadm-join";

describe("service planning", () => {
  test("nothing to do when enabled and running", () => {
    expect(planService("openrc", "keepalived", { enabled: true, running: true }, { enabled: true, running: true }, "none")).toEqual([]);
  });
  test("enable and start on OpenRC, as in the seed", () => {
    expect(planService("openrc", "keepalived", { enabled: true, running: true }, { enabled: false, running: false }, "none")).toEqual([
      "rc-update add 'keepalived' default",
      "rc-service 'keepalived' start",
    ]);
  });
  test("a config change reloads a running service; restart when asked", () => {
    expect(planService("systemd", "keepalived", { enabled: true, running: true }, { enabled: true, running: true }, "reload")).toEqual([
      "systemctl daemon-reload && systemctl reload-or-restart 'keepalived'",
    ]);
    expect(planService("none", "keepalived", { enabled: true, running: true }, { enabled: true, running: true }, "restart")).toEqual([
      "/etc/init.d/keepalived restart",
    ]);
  });
  test("running: null never starts or stops the process (kubeadm owns the kubelet)", () => {
    expect(planService("systemd", "kubelet", { enabled: true, running: null }, { enabled: false, running: true }, "none")).toEqual([
      "systemctl enable 'kubelet'",
    ]);
    expect(planService("systemd", "kubelet", { enabled: true, running: null }, { enabled: true, running: false }, "restart")).toEqual([]);
  });
  test("running: null, but running: restarted when the files it reads changed (kubelet flags)", () => {
    expect(planService("openrc", "kubelet", { enabled: true, running: null }, { enabled: true, running: true }, "restart")).toEqual([
      "rc-service 'kubelet' restart",
    ]);
  });
  test("no init system: nothing to enable", () => {
    expect(serviceCommands("none").enable("keepalived")).toBeUndefined();
  });
});

describe("package planning", () => {
  test("installs only what is missing", () => {
    expect(missingPackages(["conntrack", "socat", "keepalived"], new Set(["socat"]))).toEqual(["conntrack", "keepalived"]);
    expect(missingPackages(["socat"], new Set(["socat"]))).toEqual([]);
  });
  test("per-OS commands", () => {
    expect(packageCommands("gentoo").install(["sys-cluster/keepalived"])).toBe(
      "emerge --noreplace --quiet-build=y 'sys-cluster/keepalived'",
    );
    expect(packageCommands("debian").install(["keepalived"])).toContain(
      "apt-get install -y --no-install-recommends --allow-change-held-packages 'keepalived'",
    );
  });
});

describe("kernel settings planning", () => {
  const want = {
    connection: {} as never,
    modules: ["br_netfilter"],
    sysctl: { "net.ipv4.ip_forward": "1", "net.ipv4.ip_nonlocal_bind": "1" },
    mounts: [{ source: "none", target: "/sys/fs/bpf", fstype: "bpf", options: "rshared" }],
  };
  test("parses the probe and plans only the differences", () => {
    const live = parseProbe(
      "@modules\nbr_netfilter\nbridge\n@sysctl\nnet.ipv4.ip_forward=0\nnet.ipv4.ip_nonlocal_bind=1\n@mounts\n/proc proc\n",
      want,
    );
    expect(live).toEqual({
      modules: ["br_netfilter"],
      sysctl: { "net.ipv4.ip_forward": "0", "net.ipv4.ip_nonlocal_bind": "1" },
      mounts: [],
    });
    expect(planSettings(want, live)).toEqual([
      "sysctl -qw 'net.ipv4.ip_forward=1'",
      "mkdir -p '/sys/fs/bpf' && mount -t 'bpf' -o 'rshared' 'none' '/sys/fs/bpf'",
    ]);
  });
  test("a converged host needs nothing", () => {
    const live = parseProbe(
      "@modules\nbr_netfilter\n@sysctl\nnet.ipv4.ip_forward=1\nnet.ipv4.ip_nonlocal_bind=1\n@mounts\n/sys/fs/bpf bpf\n",
      want,
    );
    expect(planSettings(want, live)).toEqual([]);
  });
});

describe("policy routing planning", () => {
  const want = {
    routes: [
      { dest: "10.118.11.0/24", dev: "wan1" },
      { dest: "default", dev: "wan1", via: "10.118.11.1", table: 1 },
    ],
    rules: [
      { from: "all", to: "10.244.0.0/16", table: "main" as const, priority: 200 },
      { from: "10.118.11.0/24", table: 1, priority: 201 },
    ],
  };
  test("reads `ip -N -j` output and adds only what is missing", () => {
    const routes = liveRouteKeys(JSON.stringify([{ dst: "10.118.11.0/24", dev: "wan1", table: "254" }]));
    const rules = liveRuleKeys(JSON.stringify([{ priority: 200, src: "all", dst: "10.244.0.0", dstlen: 16, table: "254" }]));
    expect(routes.has(routeKey(want.routes[0]))).toBe(true);
    expect(rules.has(ruleKey(want.rules[0]))).toBe(true);
    expect(planRouting(want, routes, rules)).toEqual([
      "ip -4 route replace default via 10.118.11.1 dev wan1 table 1",
      "{ ip -4 rule del priority 201 2>/dev/null; ip -4 rule add from 10.118.11.0/24 lookup 1 priority 201; }",
    ]);
  });
});

describe("file blocks", () => {
  test("insert at the top, replace in place, remove cleanly", () => {
    const hosts = "127.0.0.1 localhost\n";
    const a = upsertBlock(hosts, "hosts", "10.118.12.20 k8s-1\n", "top");
    expect(a).toBe("# BEGIN k8s-baremetal hosts\n10.118.12.20 k8s-1\n# END k8s-baremetal hosts\n127.0.0.1 localhost\n");
    expect(extractBlock(a, "hosts")).toBe("10.118.12.20 k8s-1\n");
    const b = upsertBlock(a, "hosts", "10.118.12.21 k8s-1\n", "top");
    expect(extractBlock(b, "hosts")).toBe("10.118.12.21 k8s-1\n");
    expect(removeBlock(b, "hosts")).toBe(hosts);
  });
});

describe("state recorded by earlier versions", () => {
  const target = (name: string) => ({ name, host: "127.0.0.1", port: 22, user: "root", privateKey: "k", hostKey: "ssh-ed25519 AAAA" });
  test("a KubeadmJoin's `leaders` are its control planes, and its missing fields take their old defaults", () => {
    const old = {
      connection: target("k8s-2"),
      leaders: [target("k8s-1")],
      nodeName: "k8s-2",
      controlPlane: true,
      untaint: false,
      joinConfiguration: {} as never,
      configPath: "/x",
      member: true,
    };
    const now = joinState(old);
    expect(now.controlPlanes).toEqual([target("k8s-1")]);
    expect(now).not.toHaveProperty("leaders");
    expect([now.init, now.handOver]).toEqual(["systemd", ""]);
  });
  test("a KubeadmInit's `leaders` are its control planes", () => {
    const old = {
      connection: target("k8s-1"),
      leaders: [target("k8s-1")],
      nodeName: "k8s-1",
      configPath: "/x",
      config: "",
      untaint: false,
      dryRun: false,
      adminKubeconfig: "",
      caCertHash: "",
      dryRunOutput: "",
    };
    expect(initState(old).controlPlanes).toEqual([target("k8s-1")]);
  });
});
