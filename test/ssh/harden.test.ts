// Issue 16 on real sshd hosts: first contact with an unpinned host stops (unless the stack opts
// in), a tampered admin.conf is refused before anything uses it, and the certificate key never
// shows in the leader's process list.
import { closeAll, connect, fingerprint } from "../../providers/ssh";
import { provider as sshHost, type SshHostInputs } from "../../providers/impl/ssh-host";
import { adminKubeconfigOf, uploadCerts } from "../../providers/impl/membership";
import { KubeconfigError, parseAdminConf } from "../../providers/impl/kubeconfig";
import { hostExec, sshTarget } from "../../testbed";
import { describeTestbed, useTestbed } from "../testbed";
import { parse } from "yaml";
import { parseStackConfig } from "../../model/parse";
import type { SecretKey } from "../../model/schema";
import { planVrrp } from "../../plan/vrrp";
import { keepalivedConf, keepalivedOptions } from "../../render/keepalived";
import { testbedStackConfig, UNICAST } from "../../testbed/stack";
import { holdersOf, waitForHolder } from "../../testbed/vrrp";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeTestbed("hardening on testbed hosts", () => {
  const lab = useTestbed("jest-harden", 4, { basePort: 22700 });
  const sh = async (host: string, cmd: string) => (await hostExec(lab(), host, cmd)).stdout;
  afterEach(() => closeAll());

  const unpinned = (host: string): SshHostInputs["connection"] => {
    const { hostKey: _pinned, ...rest } = sshTarget(lab(), host);
    return rest;
  };

  describe("trust on first use", () => {
    test("off (the default): first contact stops with the fingerprint and the command that pins the key", async () => {
      const h = lab().hosts[1];
      const err = (await sshHost.create({ connection: unpinned("k8s-2"), configPath: "nodes[1]" }).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toMatch(/^k8s-2 \(127\.0\.0\.1:22702\): no SSH host key is pinned/);
      const seen = Object.values(h.hostKeys).find((k) => err.message.includes(`'${k}'`));
      expect(seen).toBeDefined();
      expect(err.message).toContain(fingerprint(seen!));
      expect(err.message).toContain(`pulumi config set --path 'nodes[1].ssh.hostKey' '${seen}'`);
    });

    test("on (ssh.trustOnFirstUse): the key seen is recorded and enforced", async () => {
      const h = lab().hosts[1];
      const r = await sshHost.create({ connection: unpinned("k8s-2"), trustOnFirstUse: true, configPath: "nodes[1]" });
      expect(Object.values(h.hostKeys)).toContain(r.outs.hostKey);
      expect(r.outs.connection.hostKey).toBe(r.outs.hostKey);
    });

    test("a pinned key needs no opt-in", async () => {
      const h = lab().hosts[0];
      const r = await sshHost.create({ connection: unpinned("k8s-1"), pinnedHostKey: h.hostKey });
      expect(r.outs.fingerprint).toBe(h.fingerprint);
    });
  });

  describe("the admin kubeconfig from a control plane", () => {
    const setup =
      `mkdir -p /etc/kubernetes/pki && cd /etc/kubernetes/pki && rm -f ca.* && ` +
      `openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -subj /CN=kubernetes -days 1 2>/dev/null && ` +
      `openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj /CN=kubernetes-admin 2>/dev/null && ` +
      `openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 1 2>/dev/null && ` +
      `b() { base64 -w0 "$1"; } && printf '%s %s %s' "$(b ca.crt)" "$(b admin.crt)" "$(b admin.key)"`;
    const conf = (ca: string, crt: string, key: string, userExtra = "") => `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${ca}
    server: https://10.118.12.100:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: ${crt}
    client-key-data: ${key}
${userExtra}`;

    test("is rebuilt from the CA, client certificate and key, pointed at the VIP", async () => {
      const [ca, crt, key] = (await sh("k8s-1", setup)).split(" ");
      await hostExec(lab(), "k8s-1", "cat > /etc/kubernetes/admin.conf", { stdin: conf(ca, crt, key) });
      const h = await connect(sshTarget(lab(), "k8s-1"));
      const r = await adminKubeconfigOf(h, "https://10.118.12.100:6443");
      expect(parseAdminConf(r.adminKubeconfig, "x")).toEqual({
        certificateAuthorityData: ca,
        clientCertificateData: crt,
        clientKeyData: key,
        server: "https://10.118.12.100:6443",
      });
      expect(r.caCertHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    });

    test("with an exec user is refused, naming the node and the field; the command never runs", async () => {
      const [ca, crt, key] = (await sh("k8s-1", setup)).split(" ");
      const evil =
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [-c, 'touch /tmp/k8sbm-pwned']\n";
      await hostExec(lab(), "k8s-1", "cat > /etc/kubernetes/admin.conf", { stdin: conf(ca, crt, key, evil) });
      const h = await connect(sshTarget(lab(), "k8s-1"));
      const err = (await adminKubeconfigOf(h, "https://10.118.12.100:6443").catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(KubeconfigError);
      expect(err.message).toMatch(/^k8s-1: \/etc\/kubernetes\/admin\.conf: users\[0\]\.user\.exec is not allowed/);
      expect(parse(conf(ca, crt, key, evil)).users[0].user.exec.command).toBe("/bin/sh"); // the file did carry it
    });
  });

  test("during upload-certs the leader's process list never shows the certificate key", async () => {
    const KEY = "c0ffee".repeat(10) + "abcd";
    // a stand-in kubeadm that takes its time and keeps the config it was given
    await sh(
      "k8s-1",
      `mkdir -p /etc/kubernetes/manifests /usr/local/sbin && ` +
        `printf '    - --advertise-address=10.118.12.20\\n    - --secure-port=6443\\n' > /etc/kubernetes/manifests/kube-apiserver.yaml && ` +
        `printf 'apiVersion: v1\\nclusters:\\n- cluster:\\n    server: https://10.118.12.100:6443\\n' > /etc/kubernetes/admin.conf && ` +
        `printf '#!/bin/sh\\nwhile [ $# -gt 0 ]; do case $1 in --config) cp "$2" /tmp/k8sbm-seen-config; echo "$2" >> /tmp/k8sbm-seen-paths ;; --kubeconfig) echo "$2" >> /tmp/k8sbm-seen-paths ;; esac; shift; done\\nsleep 3\\n' > /usr/local/sbin/kubeadm && ` +
        `chmod 0755 /usr/local/sbin/kubeadm && rm -f /tmp/k8sbm-seen-config /tmp/k8sbm-seen-paths`,
    );
    const h = await connect(sshTarget(lab(), "k8s-1"));
    const seen: string[] = [];
    let done = false;
    const upload = uploadCerts(h, KEY).finally(() => (done = true));
    while (!done) {
      seen.push(await sh("k8s-1", "ps -eo args 2>/dev/null || ps"));
      await sleep(150);
    }
    await upload;
    expect(seen.length).toBeGreaterThan(3);
    expect(seen.some((p) => p.includes("upload-certs"))).toBe(true); // the sampling did see the command
    for (const p of seen) expect(p).not.toContain(KEY);
    expect(await sh("k8s-1", "cat /tmp/k8sbm-seen-config")).toContain(`certificateKey: ${KEY}`);
    // and the temp files are gone
    const temps = (await sh("k8s-1", "cat /tmp/k8sbm-seen-paths")).trim().split("\n");
    expect(temps).toHaveLength(2);
    expect(await sh("k8s-1", `for f in ${temps.join(" ")}; do [ -e "$f" ] && echo "$f left"; done; true`)).toBe("");
  }, 60_000);

  describe("VRRP in unicast mode", () => {
    const VIP = "10.118.12.100";
    const KA = "keepalived -P -f /etc/keepalived/k8sbm-test.conf -p /run/k8sbm-ka.pid -r /run/k8sbm-ka-vrrp.pid";
    const stop = (host: string) =>
      sh(
        host,
        "for f in /run/k8sbm-ka.pid /run/k8sbm-ka-vrrp.pid; do [ -s $f ] && kill $(cat $f) 2>/dev/null; done; sleep 1; rm -f /run/k8sbm-ka*.pid; true",
      );
    const start = async (host: string, conf: string) => {
      await hostExec(lab(), host, "mkdir -p /etc/keepalived && cat > /etc/keepalived/k8sbm-test.conf", { stdin: conf });
      await sh(host, KA);
    };
    /** k8s-1's keepalived.conf as the program renders it (the testbed stack, unicast VRRPv3), health check off */
    const k8s1Conf = () => {
      const raw = Object.fromEntries(
        Object.entries(testbedStackConfig({ basePort: 22700, vrrp: UNICAST })).map(([k, v]) => [k.replace(/^k8s-baremetal:/, ""), v]),
      );
      delete raw.encryptionsalt;
      const spec = parseStackConfig("k8s-baremetal", raw, new Set<SecretKey>(["sshPrivateKey"]));
      const plan = planVrrp(spec).find((p) => p.node === "k8s-1")!;
      const cp = plan.instances.find((i) => i.kind === "control-plane")!;
      const opts = keepalivedOptions(spec);
      return { conf: keepalivedConf(plan, { ...opts, healthCheck: { ...opts.healthCheck, enabled: false } }), cp };
    };
    /** a non-peer on wan1 advertising the API VIP's router id with the highest priority to the peers */
    const intruder = (routerId: number) => `global_defs {
    router_id intruder
    vrrp_version 3
}
vrrp_instance control_plane {
    state MASTER
    interface wan1
    virtual_router_id ${routerId}
    priority 254
    advert_int 1
    virtual_ipaddress {
        ${VIP}/24
    }
    unicast_src_ip 10.118.12.23
    unicast_peer {
        10.118.12.20
        10.118.12.21
        10.118.12.22
    }
}
`;

    afterEach(async () => {
      await stop("k8s-4");
      await stop("k8s-1");
    });

    test("an advert from a non-peer does not move the API VIP (vrrp_check_unicast_src)", async () => {
      const { conf, cp } = k8s1Conf();
      expect(conf).toMatch(/^ {4}vrrp_check_unicast_src$/m);
      await start("k8s-1", conf);
      expect(await waitForHolder(lab(), VIP, (h) => h.includes("k8s-1"), 20_000)).toEqual(["k8s-1"]);
      await start("k8s-4", intruder(cp.routerId));
      await sleep(6000); // several adverts at priority 254
      expect(await holdersOf(lab(), VIP)).toContain("k8s-1");
    }, 60_000);

    test("control: without the check the same advert takes the VIP from k8s-1", async () => {
      const { conf, cp } = k8s1Conf();
      await start("k8s-1", conf.replace(/^ {4}vrrp_check_unicast_src\n/m, ""));
      expect(await waitForHolder(lab(), VIP, (h) => h.includes("k8s-1"), 20_000)).toEqual(["k8s-1"]);
      await start("k8s-4", intruder(cp.routerId));
      expect(await waitForHolder(lab(), VIP, (h) => !h.includes("k8s-1"), 15_000)).toEqual(["k8s-4"]);
    }, 60_000);
  });
});
