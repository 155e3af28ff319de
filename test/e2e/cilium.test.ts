// The cluster's network for real (issue 11): `pulumi up` installs cilium (the Cilium component's
// Helm release, through the SSH tunnel) on a live 4-node lab cluster, and traffic crosses it —
// pods across nodes over native routing, ClusterIP, NodePort on every node and the seed's
// external path (an external IP of the keepalived pool, its holder, DSR replies from the
// backend's node, policy routing back through the vSwitch) — with no kube-proxy anywhere; a
// changed cilium value rolls out, and destroy leaves no cilium on any host.
//
// What is not real here, and why (README, "The testbed's stand-ins"): the cilium, CoreDNS and
// workload images are built here from their Go modules and Debian packages (nothing can be
// pulled), and the chart is that module's; envoy (C++, no Go module) is off; each host's socket
// load balancer is attached to the host's own cgroup2 group, as all hosts share one kernel; the
// kubelet runs under a small supervisor, not systemd.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { describeTestbed } from "../testbed";
import { down, hostExec, hostOf, up, type TestbedState } from "../../testbed";
import { addClient, type TestbedClient } from "../../testbed/client";
import { UPGRADE_IMAGES_DIR, addonsImages, ciliumImages, nodeImageDir, upgradeImages } from "../../testbed/node-image";
import { buildAptRepo } from "../../testbed/apt-repo";
import { startAcmeLab } from "../../testbed/acme";
import { ROOT, TestbedStack, liveCilium, seedNodes, testbedStackConfig, updatedIds } from "../../testbed/stack";
import { holdersOf, waitForHolder } from "../../testbed/vrrp";
import { closeAll } from "../../providers/ssh";

jest.setTimeout(20 * 60_000);

const LAB = "cilium";
const BASE_PORT = 22190;
const EXTERNAL = ["10.118.11.20", "10.118.11.21", "10.118.11.22"];
/** the client on the shadow segment (the seed's vSwitch network), not a node */
const CLIENT = "10.118.11.50";
const HTTPD = "k8sbm.local/lab/httpd:v1";
const API_VIP = "10.118.12.100";
/** the ACME and DNS servers' address: the shadow segment's client, on the nodes' subnet */
const ACME = "10.118.12.250";
const ZONE = "apps.k8sbm.test";
/** the upgrade test's apt repository, served by the client (the stand-in for the Kubernetes package repository) */
const REPO_DIR = "/var/tmp/k8sbm-upgrade-repo";
const REPO_PORT = 8088;
const REPO_URL = `http://${ACME}:${REPO_PORT}/`;
const REPO_PID = "/tmp/k8sbm-upgrade-repo.pid";
const LAB_UPGRADE_VERSION: string = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).config.labUpgradeVersion;

let lab: TestbedState;
let stack: TestbedStack;
let client: TestbedClient;
const timings: Record<string, number | string> = {};

const sh = (host: string, cmd: string, timeoutMs = 120_000) => hostExec(lab, host, cmd, { timeoutMs }).then((r) => r.stdout);
const kubectl = (args: string, host = "k8s-1") => sh(host, `kubectl --kubeconfig /etc/kubernetes/admin.conf ${args}`);
const hosts = () => lab.hosts.map((h) => h.name);

function up_(label: string) {
  const r = stack.run(["up", "--yes", "--skip-preview"]);
  timings[label] = r.seconds;
  return r;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs / 1000} s${last ? ` (${(last as Error).message})` : ""}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/** the cilium agent pod on each node */
async function agents(): Promise<Record<string, string>> {
  const out = await kubectl(
    `-n kube-system get pods -l k8s-app=cilium -o jsonpath='{range .items[*]}{.spec.nodeName}{"\\t"}{.metadata.name}{"\\n"}{end}'`,
  );
  return Object.fromEntries(
    out
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split("\t")),
  );
}

/** `cilium-dbg <args>` in the agent on `node` */
async function ciliumDbg(node: string, args: string): Promise<string> {
  const pod = (await agents())[node];
  return kubectl(`-n kube-system exec ${pod} -c cilium-agent -- cilium-dbg ${args}`);
}

const WORKLOAD = `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: echo, namespace: default}
spec:
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
        - {name: httpd, image: ${HTTPD}, imagePullPolicy: Never, ports: [{containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo-np, namespace: default}
spec:
  type: NodePort
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
---
# the external path's backend: only on the worker, which holds no external IP
apiVersion: apps/v1
kind: Deployment
metadata: {name: ext, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: ext}}
  template:
    metadata: {labels: {app: ext}}
    spec:
      nodeSelector: {kubernetes.io/hostname: k8s-4}
      containers:
        - {name: httpd, image: ${HTTPD}, imagePullPolicy: Never, ports: [{containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec:
  selector: {app: ext}
  externalIPs: [${EXTERNAL.join(", ")}]
  ports: [{port: 80, targetPort: 8080}]
`;

/** node -> the echo pod's IP there */
async function echoPods(): Promise<Record<string, { name: string; ip: string }>> {
  const out = await kubectl(
    `get pods -l app=echo -o jsonpath='{range .items[*]}{.spec.nodeName}{"\\t"}{.metadata.name}{"\\t"}{.status.podIP}{"\\n"}{end}'`,
  );
  return Object.fromEntries(
    out
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split("\t"))
      .map(([n, name, ip]) => [n, { name, ip }]),
  );
}

/** an HTTP GET from inside a pod (busybox nc: the static busybox's wget crashes resolving names) */
const httpFrom = (pod: string, ip: string, port: number, path = "/cgi-bin/host") =>
  kubectl(`exec ${pod} -- sh -c 'printf "GET ${path} HTTP/1.0\\r\\n\\r\\n" | nc -w 5 ${ip} ${port}'`).then((s) =>
    s.trim().split("\n").pop()!.trim(),
  );

describeTestbed("cilium: the live cluster's network through pulumi up", () => {
  beforeAll(async () => {
    lab = await up(4, LAB, { basePort: BASE_PORT, kube: true, cilium: true, addons: true, upgrade: true });
    const chart = path.join(ciliumImages(), "chart", "cilium");
    stack = new TestbedStack(testbedStackConfig({ basePort: BASE_PORT, extra: { ...liveCilium(chart), nodes: seedNodes(lab) } }));
    stack.init(lab, "C1lium0k", { hostKeys: false });
    // a machine on the wan1 segment that is no node: on the shadow network (the external IPs)
    // and on the nodes' network (the API VIP, NodePorts)
    client = addClient(lab, "vswitch", "wan1", [`${CLIENT}/24`, "10.118.12.250/24"]);
    up_("first up (init, 2 control-plane joins, cilium, 1 worker)");
  }, 90 * 60_000);

  afterAll(async () => {
    // eslint-disable-next-line no-console
    console.log(
      Object.entries(timings)
        .map(([k, v]) => `${k}: ${typeof v === "number" ? v.toFixed(1) : v}`)
        .join("\n"),
    );
    closeAll();
    stack?.remove();
    await client?.exec(`[ ! -s ${REPO_PID} ] || kill $(cat ${REPO_PID}); rm -f ${REPO_PID}`, { allowFail: true });
    fs.rmSync(REPO_DIR, { recursive: true, force: true });
    if (!process.env.K8SBM_LAB_KEEP) await down(LAB);
  }, 10 * 60_000);

  test("every node Ready, every agent healthy, no kube-proxy", async () => {
    const ready = await until("4 Ready nodes", 10 * 60_000, async () => {
      const out = await kubectl(
        `get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"\\t"}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}'`,
      );
      const r = out.split("\n").filter((l) => l.endsWith("\tTrue"));
      return r.length === 4 ? r.map((l) => l.split("\t")[0]).sort() : undefined;
    });
    expect(ready).toEqual(hosts());
    for (const n of hosts()) {
      const status = await ciliumDbg(n, "status --brief");
      expect(status.trim()).toBe("OK");
      const full = await ciliumDbg(n, "status");
      expect(full).toMatch(/KubeProxyReplacement:\s+True/);
      expect(full).toMatch(/Routing:\s+Network: Native/);
    }
    expect(await kubectl("-n kube-system get daemonset -o name")).not.toContain("kube-proxy");
    for (const n of hosts()) {
      expect(await sh(n, "iptables-save 2>/dev/null | grep -c 'KUBE-SVC' || true")).toBe("0\n");
      // native routing: no tunnel device
      expect(await sh(n, "ip -o link show")).not.toMatch(/cilium_(vxlan|geneve)/);
    }
  });

  test("CoreDNS answers kubernetes.default from a pod", async () => {
    await hostExec(lab, "k8s-1", "kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -", { stdin: WORKLOAD });
    await kubectl("rollout status daemonset/echo --timeout=600s");
    await kubectl("rollout status deployment/ext --timeout=600s");
    await kubectl("-n kube-system rollout status deployment/coredns --timeout=600s");
    const pod = Object.values(await echoPods())[0].name;
    const answer = await until("a DNS answer", 120_000, async () => {
      const out = await kubectl(`exec ${pod} -- nslookup kubernetes.default.svc.cluster.local`);
      return out.includes("Address") ? out : undefined;
    });
    const kubernetesIp = (await kubectl("get service kubernetes -o jsonpath='{.spec.clusterIP}'")).trim();
    expect(answer).toContain(`Address: ${kubernetesIp}`);
  });

  test("pod to pod across nodes, pod to ClusterIP, NodePort on every node's wan1", async () => {
    const pods = await echoPods();
    expect(Object.keys(pods).sort()).toEqual(hosts());
    // each pod reaches the pod on the next node by its IP (native routing over wan1)
    for (const [i, n] of hosts().entries()) {
      const peer = hosts()[(i + 1) % 4];
      expect(await httpFrom(pods[n].name, pods[peer].ip, 8080)).toBe(pods[peer].name);
    }
    const clusterIp = (await kubectl("get service echo -o jsonpath='{.spec.clusterIP}'")).trim();
    const seen = new Set<string>();
    for (let k = 0; k < 12; k++) seen.add(await httpFrom(pods["k8s-1"].name, clusterIp, 80));
    expect([...seen].every((s) => Object.values(pods).some((p) => p.name === s))).toBe(true);
    // a host's own process (an SSH session: in the host's cgroup2 group) through the socket LB
    const h1 = lab.hosts[0];
    const viaSsh = execFileSync(
      "ssh",
      [
        "-i",
        lab.privateKeyPath,
        "-p",
        String(h1.ssh.port),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "root@127.0.0.1",
        `curl -sS --max-time 5 http://${clusterIp}/cgi-bin/host`,
      ],
      { encoding: "utf8" },
    ).trim();
    expect(Object.values(pods).map((p) => p.name)).toContain(viaSsh);
    // NodePort from outside the cluster, on every node's wan1 address
    for (const h of lab.hosts) {
      const r = await client.exec(`curl -sS --max-time 5 http://${h.ifaces.wan1.address}:30080/cgi-bin/host`);
      expect(Object.values(pods).map((p) => p.name)).toContain(r.stdout.trim());
    }
    // the services live in the agents' BPF service tables, not in iptables
    for (const n of hosts()) {
      const lb = await ciliumDbg(n, "service list");
      expect(lb).toContain(`${clusterIp}:80`);
      expect(lb).toMatch(/:30080\b/);
    }
  });
  test("the seed's external path: each external IP answers from its holder, DSR replies from the backend's node through the vSwitch rules", async () => {
    const ext = (await kubectl("get pods -l app=ext -o jsonpath='{.items[0].metadata.name}'")).trim();
    const mac = async (h: string) => (await sh(h, "cat /sys/class/net/wan1/address")).trim();
    const holders: Record<string, string> = {};
    for (const ip of EXTERNAL) {
      const hs = await holdersOf(lab, ip);
      expect(hs).toHaveLength(1);
      holders[ip] = hs[0];
    }
    expect(Object.values(holders)).not.toContain("k8s-4"); // the backend's node is no holder
    // a reply from an external IP, forwarded by the backend's node, takes the vswitch table
    expect(await sh("k8s-4", `ip -4 route get ${CLIENT} from ${EXTERNAL[0]} iif wan1`)).toMatch(/dev wan1 table vswitch/);
    // the client counts the answers by the sender's MAC: the backend's node, or a holder
    const senders = ["k8s-4", ...new Set(Object.values(holders))];
    await client.exec(
      [
        "iptables -F INPUT; iptables -X DSR 2>/dev/null; iptables -N DSR",
        "iptables -A INPUT -p tcp --sport 80 -j DSR",
        ...(await Promise.all(
          senders.map(async (h) => `iptables -A DSR -m mac --mac-source ${await mac(h)} -m comment --comment ${h} -j RETURN`),
        )),
      ].join(" && "),
    );
    for (const ip of EXTERNAL) {
      const r = await client.exec(`curl -sS --max-time 5 --interface ${CLIENT} http://${ip}/cgi-bin/host`);
      expect(r.stdout.trim()).toBe(ext);
    }
    const counts = Object.fromEntries(
      (await client.exec("iptables -L DSR -v -x -n")).stdout
        .split("\n")
        .map((l) => l.match(/^\s*(\d+)\s+\d+\s+RETURN.*\/\* (k8s-\d) \*\//))
        .filter((m): m is RegExpMatchArray => !!m)
        .map((m) => [m[2], Number(m[1])]),
    );
    timings["DSR answers (packets by sender)"] = JSON.stringify(counts);
    expect(counts["k8s-4"]).toBeGreaterThan(0);
    for (const h of new Set(Object.values(holders))) expect(counts[h]).toBe(0);
  });

  test("external IP failover under traffic: the holder of .20 loses its link, answers resume through the next holder", async () => {
    const gaps: number[] = [];
    for (let t = 0; t < 5; t++) {
      const [holder] = await waitForHolder(lab, EXTERNAL[0], (h) => h.length === 1, 60_000);
      const port = `h${hostOf(lab, holder).index}w1`; // the holder's port on the wan1 switch
      await client.exec(
        `rm -f /tmp/k8sbm-poll.log; nohup sh -c 'while :; do if curl -s -o /dev/null --max-time 0.5 --interface ${CLIENT} http://${EXTERNAL[0]}/; ` +
          `then echo "$(date +%s%3N) ok"; else echo "$(date +%s%3N) no"; fi; sleep 0.1; done' >/tmp/k8sbm-poll.log 2>&1 & echo $! >/tmp/k8sbm-poll.pid`,
      );
      await new Promise((r) => setTimeout(r, 2000));
      const cut = Date.now();
      execFileSync("ip", ["-n", lab.switchNetns, "link", "set", port, "down"]);
      try {
        // the next holder takes the IP and answers; the outage the client saw is the longest
        // wait between two answers from the last one before the cut to the first one after the
        // move (a poll's line is written when it ends; answers every ~150 ms when nothing fails)
        await waitForHolder(lab, EXTERNAL[0], (h) => h.length === 1 && h[0] !== holder, 60_000);
        const moved = Date.now();
        const oks = await until("answers through the next holder", 60_000, async () => {
          const ts = (await client.exec("cat /tmp/k8sbm-poll.log")).stdout
            .trim()
            .split("\n")
            .map((l) => l.split(" "))
            .filter(([, r]) => r === "ok")
            .map(([t]) => Number(t));
          return ts.some((t) => t > moved) ? ts : undefined;
        });
        const from = oks.filter((t) => t <= cut).pop() ?? cut;
        const span = oks.filter((t) => t >= from && t <= oks.find((x) => x > moved)!);
        gaps.push(Math.max(...span.slice(1).map((t, i) => t - span[i])));
      } finally {
        await client.exec("kill $(cat /tmp/k8sbm-poll.pid); rm -f /tmp/k8sbm-poll.pid /tmp/k8sbm-poll.log", { allowFail: true });
        execFileSync("ip", ["-n", lab.switchNetns, "link", "set", port, "up"]);
      }
      await waitForHolder(lab, EXTERNAL[0], (h) => h.length === 1 && h[0] === holder, 60_000);
    }
    timings["external VIP failover gaps ms"] = JSON.stringify(gaps);
    timings["external VIP failover p50 ms"] = percentile(gaps, 50);
    timings["external VIP failover p95 ms"] = percentile(gaps, 95);
    expect(gaps.every((g) => g < 30_000)).toBe(true);
  });

  test("API VIP failover with the real kube-apiserver: the holder's apiserver killed, kubectl through the VIP answers again", async () => {
    // kubectl from the client (outside the cluster), through the control-plane VIP
    const kc = path.join(stack.work, "admin.conf");
    fs.writeFileSync(kc, await sh("k8s-1", "cat /etc/kubernetes/admin.conf"), { mode: 0o600 });
    const kbin = execFileSync("bash", [path.join(ROOT, "scripts/setup-kube.sh")], { encoding: "utf8" }).trim();
    const getNodes = `${kbin}/kubectl --kubeconfig ${kc} --request-timeout=2s get nodes -o name`;
    await client.exec(getNodes);
    const gaps: number[] = [];
    for (let t = 0; t < 5; t++) {
      const [holder] = await waitForHolder(lab, API_VIP, (h) => h.length === 1, 120_000);
      const t0 = Date.now();
      await sh(
        holder,
        "crictl -r unix:///run/containerd/containerd.sock stop -t 0 $(crictl -r unix:///run/containerd/containerd.sock ps -q --name kube-apiserver)",
      );
      await until("kubectl through the VIP", 120_000, async () =>
        (await client.exec(getNodes, { allowFail: true })).code === 0 ? true : undefined,
      );
      gaps.push(Date.now() - t0);
      // the killed apiserver comes back (its kubelet restarts it) before the next trial
      await until(`${holder}'s apiserver ready`, 300_000, async () =>
        (await hostExec(lab, holder, "curl -sk --max-time 2 https://127.0.0.1:6443/readyz", { allowFail: true })).stdout.trim() === "ok"
          ? true
          : undefined,
      );
      await waitForHolder(lab, API_VIP, (h) => h.length === 1, 120_000);
    }
    timings["API VIP failover gaps ms"] = JSON.stringify(gaps);
    timings["API VIP failover p50 ms"] = percentile(gaps, 50);
    timings["API VIP failover p95 ms"] = percentile(gaps, 95);
    expect(gaps.every((g) => g < 120_000)).toBe(true);
  });

  test("a changed cilium value shows in preview --diff and rolls out on up; a clean preview follows", async () => {
    const before = Object.values(await agents()).sort();
    stack.editConfig((c) => (c.cilium.values.bpf = { monitorAggregation: "maximum" }));
    const preview = stack.run(["preview", "--diff"]);
    expect(preview.out).toMatch(/monitorAggregation\s*:\s*"maximum"/);
    expect(preview.out).toMatch(/1 to update/);
    up_("cilium value rollout");
    expect((await kubectl("-n kube-system get configmap cilium-config -o jsonpath='{.data.monitor-aggregation}'")).trim()).toBe("maximum");
    await kubectl("-n kube-system rollout status daemonset/cilium --timeout=600s");
    const after = Object.values(await agents()).sort();
    expect(after.filter((p) => before.includes(p))).toEqual([]); // every agent restarted
    // A restarted agent's controllers retry their first API calls, and a call can meet a connection
    // the datapath reload just reset ("connection reset by peer"): wait for every agent to settle on OK.
    const t0 = Date.now();
    for (const n of hosts()) {
      let status = "";
      await until(`${n}'s cilium status OK`, 180_000, async () => {
        status = (await ciliumDbg(n, "status --brief")).trim();
        return status === "OK" ? true : undefined;
      }).catch((e) => {
        throw new Error(`${(e as Error).message}; last status: ${status}`);
      });
    }
    timings["agents OK after rollout s"] = ((Date.now() - t0) / 1000).toFixed(1);
    const clean = stack.run(["preview", "--diff", "--expect-no-changes"]);
    expect(clean.code).toBe(0);
  });

  test("cert-manager from the program issues a wildcard certificate over RFC2136 DNS-01 from a real ACME server", async () => {
    // the seed's Let's Encrypt + RFC2136 path with real servers on the shadow segment's client:
    // BIND 9 (TSIG HMAC-SHA512 updates) and pebble (testbed/acme.ts)
    const addons = addonsImages();
    const acme = await startAcmeLab(lab, client, { address: ACME, zone: ZONE, pebble: path.join(addons, "bin", "pebble") });
    stack.editConfig((c) => {
      c.layers = { ...c.layers, addons: true };
      c.addons = {
        certManager: {
          enabled: true,
          // the lab's chart and images (testbed/addons-image.sh: why v1.11.5); installCRDs is that
          // chart's name for what newer charts call crds.enabled
          version: "v1.11.5",
          repository: "",
          chart: path.join(addons, "chart", "cert-manager"),
          values: { installCRDs: true },
          recursiveNameservers: [`${ACME}:53`],
          issuer: {
            name: "lab-acme",
            server: acme.directory,
            email: "ops@k8sbm.test",
            caBundle: acme.serverCa,
            rfc2136: { nameserver: `${ACME}:53`, tsigKeyName: acme.tsig.name, tsigAlgorithm: acme.tsig.algorithm },
          },
        },
      };
    });
    stack.run(["config", "set", "--secret", "certManagerTsigSecret"], { input: acme.tsig.secret });
    const preview = stack.run(["preview", "--diff"]);
    expect(preview.out).toMatch(/\+ kubernetes:helm.sh\/v3:Release/);
    expect(preview.out).toMatch(/\+ kubernetes:cert-manager.io\/v1:ClusterIssuer/);
    expect(preview.out).toContain("addons-cert-manager");
    expect(preview.out).not.toContain(acme.tsig.secret);
    const r = up_("cert-manager up");
    expect(r.out).not.toContain(acme.tsig.secret);
    expect(stack.run(["stack", "export"]).out).not.toContain(acme.tsig.secret);

    // the ACME account registers with pebble, over HTTPS verified with the issuer's caBundle
    await until("ClusterIssuer Ready", 300_000, async () =>
      (await kubectl(`get clusterissuer lab-acme -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'`)).trim() === "True"
        ? true
        : undefined,
    );
    const t0 = Date.now();
    await kubectl(
      `apply -f - <<'EOF'
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: wildcard, namespace: default}
spec:
  secretName: wildcard-tls
  dnsNames: ["*.${ZONE}", "${ZONE}"]
  issuerRef: {group: cert-manager.io, kind: ClusterIssuer, name: lab-acme}
EOF`,
    );
    // the challenge's TXT record appears on the DNS server (put there by cert-manager's TSIG-signed update)
    const seen = new Set<string>();
    await until("Certificate Ready", 600_000, async () => {
      for (const t of await acme.txtRecords()) seen.add(t);
      return (await kubectl(`get certificate wildcard -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'`)).trim() === "True"
        ? true
        : undefined;
    });
    timings["wildcard certificate issued s"] = ((Date.now() - t0) / 1000).toFixed(1);
    expect([...seen].some((t) => t.startsWith(`_acme-challenge.${ZONE}. `))).toBe(true);
    // …and is gone after the challenge
    await until("challenge TXT records removed", 120_000, async () => ((await acme.txtRecords()).length === 0 ? true : undefined));

    // the Secret's chain verifies against pebble's root, for the wildcard name
    const chain = Buffer.from((await kubectl("get secret wildcard-tls -o jsonpath='{.data.tls\\.crt}'")).trim(), "base64").toString("utf8");
    const dir = fs.mkdtempSync(path.join(lab.stateDir, "wildcard-"));
    const root = await acme.issuingRoot();
    fs.writeFileSync(path.join(dir, "root.pem"), root);
    fs.writeFileSync(path.join(lab.stateDir, "acme", "root.pem"), root); // the HTTPS test's trust anchor
    fs.writeFileSync(path.join(dir, "chain.pem"), chain);
    const certs = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
    expect(certs.length).toBeGreaterThanOrEqual(2);
    fs.writeFileSync(path.join(dir, "leaf.pem"), certs[0] ?? "");
    fs.writeFileSync(path.join(dir, "intermediates.pem"), certs.slice(1).join(""));
    const verify = execFileSync(
      "openssl",
      [
        "verify",
        "-CAfile",
        path.join(dir, "root.pem"),
        "-untrusted",
        path.join(dir, "intermediates.pem"),
        "-verify_hostname",
        `www.${ZONE}`,
        path.join(dir, "leaf.pem"),
      ],
      { encoding: "utf8" },
    );
    expect(verify.trim()).toBe(`${path.join(dir, "leaf.pem")}: OK`);
    fs.rmSync(dir, { recursive: true, force: true });

    const clean = stack.run(["preview", "--diff", "--expect-no-changes"]);
    expect(clean.code).toBe(0);
  });

  test("Traefik from the program serves HTTPS on an external VIP with that certificate, through the next holder after the holder dies", async () => {
    const addons = addonsImages();
    await hostExec(lab, "k8s-1", "kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -", { stdin: WORKLOAD });
    // the external path test's Service holds port 80 on the same external IPs as Traefik's web port
    await kubectl("delete service ext --ignore-not-found");
    stack.editConfig((c) => {
      c.addons.gateway = {
        enabled: true,
        implementation: "traefik",
        // the lab's chart, image and CRDs (testbed/addons-image.sh: why these versions)
        version: "41.6.0",
        repository: "",
        chart: path.join(addons, "chart", "traefik"),
        values: { image: { tag: "v3.6.12" } },
        gatewayApiCrds: { version: "v1.4.0", source: path.join(addons, "gateway-api", "standard-install.yaml") },
      };
    });
    const preview = stack.run(["preview", "--diff"]);
    expect(preview.out).toMatch(/\+ kubernetes:apiextensions.k8s.io\/v1:CustomResourceDefinition/);
    expect(preview.out).toContain("addons-traefik");
    up_("traefik up");
    await kubectl("-n traefik rollout status deployment/traefik --timeout=300s");
    await kubectl(
      `apply -f - <<'EOF'
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: https, namespace: default}
spec:
  gatewayClassName: traefik
  listeners:
    - name: https
      port: 8443
      protocol: HTTPS
      hostname: "*.${ZONE}"
      tls: {mode: Terminate, certificateRefs: [{kind: Secret, name: wildcard-tls}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo, namespace: default}
spec:
  parentRefs: [{name: https}]
  hostnames: ["www.${ZONE}"]
  rules: [{backendRefs: [{name: echo, port: 80}]}]
EOF`,
    );
    await until("Gateway programmed", 120_000, async () =>
      (await kubectl(`get gateway https -o jsonpath='{.status.conditions[?(@.type=="Programmed")].status}'`)).trim() === "True"
        ? true
        : undefined,
    );
    const acme = await client.exec(`cat ${path.join(lab.stateDir, "acme", "root.pem")}`, { allowFail: true });
    expect(acme.stdout).toContain("BEGIN CERTIFICATE");
    // verified against pebble's root, SNI www.<zone>, from the shadow network's client
    const get = () =>
      client.exec(
        `curl -s --max-time 2 --interface ${CLIENT} --cacert ${path.join(lab.stateDir, "acme", "root.pem")} ` +
          `--resolve www.${ZONE}:443:${EXTERNAL[0]} https://www.${ZONE}/cgi-bin/host`,
        { allowFail: true },
      );
    const first = await until("an HTTPS answer on the external VIP", 120_000, async () => {
      const r = await get();
      return r.code === 0 && r.stdout.trim().startsWith("echo-") ? r.stdout.trim() : undefined;
    });
    expect(first).toMatch(/^echo-/);
    // the holder of the VIP dies (its wan1 link cut): the same request answers through the next holder
    const [holder] = await waitForHolder(lab, EXTERNAL[0], (h) => h.length === 1, 60_000);
    const port = `h${hostOf(lab, holder).index}w1`;
    const t0 = Date.now();
    execFileSync("ip", ["-n", lab.switchNetns, "link", "set", port, "down"]);
    try {
      await waitForHolder(lab, EXTERNAL[0], (h) => h.length === 1 && h[0] !== holder, 60_000);
      await until("an HTTPS answer through the next holder", 60_000, async () => {
        const r = await get();
        return r.code === 0 && r.stdout.trim().startsWith("echo-") ? true : undefined;
      });
      timings["HTTPS through the next holder after ms"] = Date.now() - t0;
    } finally {
      execFileSync("ip", ["-n", lab.switchNetns, "link", "set", port, "up"]);
    }
    await waitForHolder(lab, EXTERNAL[0], (h) => h.length === 1 && h[0] === holder, 60_000);
    const clean = stack.run(["preview", "--diff", "--expect-no-changes"]);
    expect(clean.code).toBe(0);
  });

  test("disabling the add-ons removes them, the Gateway API CRDs stay (gatewayApiCrds.keep), a clean preview follows", async () => {
    stack.editConfig((c) => {
      c.addons.gateway.enabled = false;
      c.addons.certManager.enabled = false;
    });
    const preview = stack.run(["preview", "--diff"]);
    expect(preview.out).toMatch(/- kubernetes:helm.sh\/v3:Release/);
    up_("add-ons disabled up");
    expect((await kubectl("get deployments -A -o name")).split("\n").filter((d) => /traefik|cert-manager/.test(d))).toEqual([]);
    expect(await kubectl("get crd gateways.gateway.networking.k8s.io httproutes.gateway.networking.k8s.io -o name")).toMatch(
      /gateways.*\n.*httproutes/,
    );
    const clean = stack.run(["preview", "--diff", "--expect-no-changes"]);
    expect(clean.code).toBe(0);
  });

  test("a rolling upgrade to the next minor version through pulumi up: node by node, resumed after a kill, the API VIP and a Service answering throughout", async () => {
    const from = stack.spec().config.cluster.kubernetesVersion;
    const to = `v${LAB_UPGRADE_VERSION}`;
    // the Service polled below (applied by the tests above already; again, so this one stands alone)
    await hostExec(lab, "k8s-1", "kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -", { stdin: WORKLOAD });
    await kubectl("rollout status daemonset/echo --timeout=300s", "k8s-1");
    // The Kubernetes package repository with both versions' packages (the stand-in for the
    // project's: a signed apt repository served by the client), added first, as an operator who
    // had the packages from elsewhere would
    const repo = buildAptRepo(REPO_DIR, path.join(nodeImageDir(), "debs"), path.join(upgradeImages(), "debs"));
    await client.exec(
      `[ ! -s ${REPO_PID} ] || { p=$(cat ${REPO_PID}); kill $p 2>/dev/null; while kill -0 $p 2>/dev/null; do sleep 0.1; done; }; ` +
        `nohup busybox httpd -f -p ${ACME}:${REPO_PORT} -h ${REPO_DIR} >/dev/null 2>&1 & echo $! >${REPO_PID}`,
    );
    stack.editConfig((c) => (c.packages = { kubernetesRepository: { url: REPO_URL, keyFingerprint: repo.fingerprint } }));
    up_("Kubernetes repository added");
    expect(stack.run(["preview", "--expect-no-changes"]).code).toBe(0);
    // The images of the new version, imported on every node: the stand-in for the pulls kubeadm
    // makes from the registry
    for (const n of hosts())
      await sh(
        n,
        `for f in ${UPGRADE_IMAGES_DIR}/*.tar; do ctr -n k8s.io images import --local --snapshotter native --platform linux/amd64 "$f" >/dev/null; done`,
        600_000,
      );

    const saved = stack.editConfig((c) => (c.cluster = { ...c.cluster, kubernetesVersion: to }));
    // refused at preview with nothing touched: a downgrade, and a skipped minor version
    const refused = (version: string) => {
      stack.editConfig((c) => (c.cluster = { ...c.cluster, kubernetesVersion: version }));
      stack.editConfig((c) => (c.containerd = { ...c.containerd, sandboxImage: "registry.k8s.io/pause:3.10.2" }));
      const r = stack.run(["preview"], { allowFail: true });
      expect(r.code).not.toBe(0);
      return r.out;
    };
    const minor = Number(from.split(".")[1]);
    expect(refused(`v1.${minor - 1}.0`)).toMatch(
      /cluster\.kubernetesVersion cannot change from "v[\d.]+" to "v[\d.]+": that is a downgrade/,
    );
    expect(refused(`v1.${minor + 2}.0`)).toMatch(/Kubernetes upgrades one minor version at a time \(the version-skew policy\)/);
    stack.restoreConfig(saved);
    stack.editConfig((c) => (c.cluster = { ...c.cluster, kubernetesVersion: to }));

    // preview names every node's move, in the order they go: the cluster (kubeadm upgrade apply),
    // the control planes one at a time, then the worker
    const preview = stack.run(["preview", "--diff"]);
    expect(preview.out).toContain(`"${from}" => "${to}"`);
    expect(updatedIds(preview.out).filter((id) => /kubeadm-(init|join)$/.test(id))).toEqual([
      "k8s-1:kubeadm-init",
      "k8s-1:kubeadm-join",
      "k8s-2:kubeadm-join",
      "k8s-3:kubeadm-join",
      "k8s-4:kubeadm-join",
    ]);

    // while it runs: the API through the VIP (/readyz) and the echo Service through the worker's NodePort, every 100 ms
    const poll = (name: string, url: string, flags: string) =>
      client.exec(
        `nohup sh -c 'while :; do if curl -sf -o /dev/null --max-time 1 --interface ${ACME} ${flags} ${url}; ` +
          `then echo "$(date +%s%3N) ok"; else echo "$(date +%s%3N) no"; fi; sleep 0.1; done' >/tmp/k8sbm-${name}.log 2>&1 & echo $! >/tmp/k8sbm-${name}.pid`,
      );
    await poll("upgrade-api", `https://${API_VIP}:6443/readyz`, "-k");
    await poll("upgrade-svc", "http://10.118.12.23:30080/", "");
    try {
      // `up` killed (SIGKILL, the whole process group) as the second control plane's drain starts;
      // after the documented recovery (`pulumi cancel`), the next `up` resumes the upgrade
      const t0 = Date.now();
      const orphansBefore = new Set(orphanedPlugins());
      const killed = stack.start(["up", "--yes", "--skip-preview"]);
      let ended = false;
      void killed.done.then(() => (ended = true));
      const drained = `get node k8s-2 -o jsonpath='{.metadata.annotations.k8s-baremetal/drained-for-upgrade}'`;
      for (;;) {
        if (ended) throw new Error(`the upgrade ended before k8s-2 was drained:\n${(await killed.done).out.slice(-4000)}`);
        if ((await kubectl(drained).catch(() => "")).trim() === to) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      process.kill(-killed.child.pid!, "SIGKILL");
      expect((await killed.done).code).not.toBe(0);
      // the engine's plugins run in process groups of their own and outlive it: as an operator would, end them
      for (const p of orphanedPlugins().filter((p) => !orphansBefore.has(p))) process.kill(p, "SIGKILL");
      timings["upgrade until killed at k8s-2's drain"] = (Date.now() - t0) / 1000;
      // the nodes whose turn has not come still have the old packages: only their turn, drained, moves them
      for (const n of ["k8s-3", "k8s-4"])
        expect(`${n} ${await sh(n, "dpkg-query -W -f='${Package}=${Version} ' kubeadm kubelet")}`).toBe(
          `${n} kubeadm=${from.replace(/^v/, "")}-1.1 kubelet=${from.replace(/^v/, "")}-1.1 `,
        );
      expect(stack.cancel().code).toBe(0);
      up_("upgrade resumed");
    } finally {
      await client.exec("for p in upgrade-api upgrade-svc; do kill $(cat /tmp/k8sbm-$p.pid); done", { allowFail: true });
    }
    for (const name of ["upgrade-api", "upgrade-svc"]) {
      const lines = (await client.exec(`cat /tmp/k8sbm-${name}.log; rm -f /tmp/k8sbm-${name}.log /tmp/k8sbm-${name}.pid`)).stdout
        .trim()
        .split("\n")
        .map((l) => l.split(" "));
      const oks = lines.filter(([, r]) => r === "ok").map(([t]) => Number(t));
      const gap = Math.max(...oks.slice(1).map((t, i) => t - oks[i]));
      timings[`${name}: requests, failed, longest gap ms`] = `${lines.length}, ${lines.filter(([, r]) => r === "no").length}, ${gap}`;
      expect(oks.length).toBeGreaterThan(100);
    }

    // every node, kubelet and static pod at the new version; etcd and CoreDNS as its kubeadm plans them
    const nodes = (
      await kubectl(
        `get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.status.nodeInfo.kubeletVersion} {.spec.unschedulable}{"\\n"}{end}'`,
      )
    )
      .trim()
      .split("\n");
    expect(nodes.map((l) => l.trimEnd())).toEqual(hosts().map((n) => `${n} ${to}`)); // none left cordoned
    const planned = (await sh("k8s-1", `kubeadm config images list --kubernetes-version ${to}`)).trim().split("\n");
    const image = (name: string) => planned.find((i) => i.includes(`/${name}:`));
    for (const cp of ["k8s-1", "k8s-2", "k8s-3"])
      for (const pod of ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"])
        expect(`${pod}-${cp} ${await kubectl(`-n kube-system get pod ${pod}-${cp} -o jsonpath='{.spec.containers[0].image}'`)}`).toBe(
          `${pod}-${cp} ${image(pod)}`,
        );
    expect(await kubectl("-n kube-system get deployment coredns -o jsonpath='{.spec.template.spec.containers[0].image}'")).toBe(
      image("coredns"),
    );
    await kubectl("-n kube-system rollout status deployment/coredns --timeout=300s");
    for (const n of hosts()) {
      const installed = await sh(n, "dpkg-query -W -f='${Package} ${Version}\\n' kubeadm kubectl kubelet"); // dpkg sorts by name
      expect(installed).toBe(["kubeadm", "kubectl", "kubelet"].map((p) => `${p} ${LAB_UPGRADE_VERSION}-1.1\n`).join(""));
      expect((await sh(n, "apt-mark showhold")).split("\n").sort()).toEqual(["", "kubeadm", "kubectl", "kubelet"]);
      expect(await sh(n, "kubelet --version")).toBe(`Kubernetes ${to}\n`);
    }
    expect(stack.run(["preview", "--diff", "--expect-no-changes"]).code).toBe(0);
  });

  test("destroy removes the release and leaves no cilium on any host", async () => {
    // --run-program: the release is deleted through the tunnel the program opens
    const r = stack.run(["destroy", "--yes", "--skip-preview", "--run-program"]);
    timings["destroy"] = r.seconds;
    for (const n of hosts()) {
      const left = await sh(
        n,
        [
          "ip -o link show | grep -oE ' (cilium_[a-z_]+|lxc[0-9a-z_]+)' || true",
          "ip -4 route show | grep -E '^10\\.244\\.' || true",
          "ls /etc/cni/net.d /opt/cni/bin/cilium-cni 2>/dev/null | grep -i cilium || true",
          "ls -d /sys/fs/bpf/cilium /sys/fs/bpf/tc/globals/cilium_* /run/cilium/state 2>/dev/null || true",
          "iptables-save 2>/dev/null | grep -c CILIUM | grep -v '^0$' || true",
          "tc filter show dev wan1 ingress 2>/dev/null; tc filter show dev wan1 egress 2>/dev/null",
          "bpftool net show dev wan1 2>/dev/null | grep -E 'tcx|cil_' || true",
          "bpftool cgroup tree /run/cilium/cgroupv2 2>/dev/null | grep -E 'cil_|sock' || true",
        ].join("; "),
      );
      expect(`${n}: ${left.trim()}`).toBe(`${n}: `);
    }
  });
});

/** Pulumi plugin processes (the dynamic provider, the kubernetes plugin) whose engine is gone: their parent is init. */
function orphanedPlugins(): number[] {
  return fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const cmd = fs.readFileSync(`/proc/${d}/cmdline`, "utf8");
        const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        return ppid === 1 && /dynamic-provider|pulumi-resource-kubernetes/.test(cmd);
      } catch {
        return false;
      }
    })
    .map(Number);
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}
