// The real engine on the real program: `pulumi` (built by scripts/setup-pulumi.sh) drives the
// lab stack against lab hosts (network namespaces with sshd and real keepalived).
import * as fs from "fs";
import { describeTestbed } from "../testbed";
import { down, hostExec, load, recreateHost, up, type TestbedState } from "../../testbed";
import { expectedHolders, planVrrp } from "../../plan/vrrp";
import * as ka from "../../render/keepalived";
import { SYSCTL_PATH, sysctlConf } from "../../render/host";
import { RT_TABLES_PATH } from "../../render/routing";
import { behindJumpHost, TestbedStack, updatedIds } from "../../testbed/stack";

const LAB = "e2e";
const PASSWORD = "Vr7pAss1";
const MANAGED = [SYSCTL_PATH, ka.KEEPALIVED_CONF_PATH, ka.CHECK_APISERVER_PATH, RT_TABLES_PATH, "/etc/hosts"];

let stack: TestbedStack;
let lab: TestbedState;
const pulumi = (args: string[], opts: { allowFail?: boolean } = {}) => stack.run(args, opts);
const spec = () => stack.spec();

const sh = (host: string, cmd: string) => hostExec(lab, host, cmd).then((r) => r.stdout);

async function snapshot(host: string): Promise<string> {
  return sh(
    host,
    `for f in ${MANAGED.join(" ")}; do echo "== $f"; cat "$f" 2>/dev/null || echo ABSENT; done; ` +
      `ip -N -4 rule; ip -N -4 route show table all | grep -v '^local\\|^broadcast' | sort; ip -4 -o addr show | awk '{print $2, $4}'; pgrep -x keepalived || echo no-keepalived`,
  );
}

async function holderOf(vip: string, hosts: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const h of hosts) if ((await sh(h, "ip -4 -o addr show")).includes(` ${vip}/`)) out.push(h);
  return out;
}

async function waitForHolders(expected: Map<string, string>, hosts: string[]): Promise<void> {
  // external IPs reach their preferred holder after the 30 s preempt_delay (from keepalived's start)
  const deadline = Date.now() + 45_000;
  for (;;) {
    const wrong: string[] = [];
    for (const [vip, node] of expected) {
      const holders = await holderOf(vip.split("/")[0], hosts);
      if (holders.length !== 1 || holders[0] !== node) wrong.push(`${vip} on [${holders}] (expected ${node})`);
    }
    if (!wrong.length) return;
    if (Date.now() > deadline) throw new Error(`VIPs not where the rotation puts them: ${wrong.join("; ")}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describeTestbed("testbed stack through the real Pulumi CLI", () => {
  const hosts = ["k8s-1", "k8s-2", "k8s-3", "k8s-4"];
  const before = new Map<string, string>();

  beforeAll(async () => {
    stack = new TestbedStack();
    lab = await up(4, LAB, { basePort: 22020 });
    for (const h of hosts) before.set(h, await snapshot(h));
    stack.init(lab, PASSWORD);
  }, 20 * 60_000);

  afterAll(async () => {
    await down(LAB);
    stack?.remove();
  }, 5 * 60_000);

  test("up converges every host to the rendered state", async () => {
    pulumi(["up", "--yes", "--skip-preview"]);
    const s = spec();
    const plans = planVrrp(s);
    for (const h of hosts) {
      expect(await sh(h, `cat ${SYSCTL_PATH}`)).toBe(sysctlConf());
      expect((await sh(h, `stat -c %a ${SYSCTL_PATH}`)).trim()).toBe("644");
      expect((await sh(h, "sysctl -n net.ipv4.ip_forward net.ipv4.ip_nonlocal_bind")).split("\n").slice(0, 2)).toEqual(["1", "1"]);
      expect(await sh(h, "ip -N -4 rule")).toMatch(
        /200:\s+from all to 10\.244\.0\.0\/16 lookup 254[\s\S]*201:\s+from 10\.118\.11\.0\/24 lookup 1/,
      );
      const table = await sh(h, "ip -4 route show table 1");
      expect(table).toContain("default via 10.118.11.1 dev wan1");
      expect(table).toContain("10.118.11.0/24 dev wan1 scope link");
      expect(table).toContain("10.118.12.0/24 dev wan1 scope link");
      expect((await sh(h, "head -2 /etc/hosts")).split("\n")[1]).toBe(`${s.nodes.find((n) => n.name === h)!.wan1.ip} ${h}`);
    }
    for (const p of plans) {
      expect(await sh(p.node, `cat ${ka.KEEPALIVED_CONF_PATH}`)).toBe(ka.keepalivedConf(p, ka.keepalivedOptions(s, PASSWORD)));
      expect((await sh(p.node, `stat -c %a ${ka.KEEPALIVED_CONF_PATH}`)).trim()).toBe("640");
      expect((await hostExec(lab, p.node, "pgrep -x keepalived", { allowFail: true })).code).toBe(0);
    }
    expect((await hostExec(lab, "k8s-4", "pgrep -x keepalived", { allowFail: true })).code).not.toBe(0);
    await waitForHolders(expectedHolders(plans), hosts);
    expect(expectedHolders(plans).get("10.118.12.100/24")).toBe("k8s-1");
  });

  test("a second preview proposes no change", () => {
    pulumi(["preview", "--expect-no-changes"]);
  });

  test("a bad configuration fails preview as a plain list naming the key, with no stack trace", () => {
    pulumi(["config", "set", "clusterNmae", "typo"]);
    try {
      const r = pulumi(["preview", "--color", "never"], { allowFail: true });
      expect(r.code).not.toBe(0);
      expect(r.out).toContain("invalid stack configuration (1 problem):");
      expect(r.out).toContain("k8s-baremetal:clusterNmae: is not a known key (typo?)");
      expect(r.out).not.toMatch(/unhandled exception|^\s+at .+:\d+:\d+\)?$/m);
      expect(r.out).not.toContain("\x1b[");
    } finally {
      pulumi(["config", "rm", "clusterNmae"]);
    }
  });

  test("the state holds no secret in plain text", () => {
    const state = pulumi(["stack", "export"]).out;
    const key = fs.readFileSync(lab.privateKeyPath, "utf8");
    const keyBody = key
      .split("\n")
      .filter((l) => l && !l.startsWith("-----"))
      .join("");
    for (const needle of [
      PASSWORD,
      Buffer.from(PASSWORD).toString("base64"),
      keyBody.slice(0, 40),
      Buffer.from(key).toString("base64").slice(0, 40),
      "OPENSSH PRIVATE KEY",
    ])
      expect(state).not.toContain(needle);
  });

  test("drift on one host is reported for exactly that resource and repaired", async () => {
    await sh("k8s-2", `echo 'net.ipv4.ip_forward = 0' >> ${SYSCTL_PATH}`);
    const r = pulumi(["preview", "--refresh", "--expect-no-changes", "--diff"], { allowFail: true });
    expect(r.code).not.toBe(0);
    expect(updatedIds(r.out)).toEqual([`k8s-2:${SYSCTL_PATH}`]);
    pulumi(["up", "--refresh", "--yes", "--skip-preview"]);
    expect(await sh("k8s-2", `cat ${SYSCTL_PATH}`)).toBe(sysctlConf());
    pulumi(["preview", "--refresh", "--expect-no-changes"]);
  });

  test("a new external VIP changes only keepalived and lands on its predicted holder", async () => {
    pulumi(["config", "set", "--path", "vrrp.external.vips[3]", "10.118.11.23"]);
    const r = pulumi(["preview", "--diff"]);
    expect(updatedIds(r.out).sort()).toEqual([
      "k8s-1:/etc/keepalived/keepalived.conf",
      "k8s-1:keepalived",
      "k8s-2:/etc/keepalived/keepalived.conf",
      "k8s-2:keepalived",
      "k8s-3:/etc/keepalived/keepalived.conf",
      "k8s-3:keepalived",
    ]);
    pulumi(["up", "--yes", "--skip-preview"]);
    const holders = expectedHolders(planVrrp(spec()));
    expect(holders.get("10.118.11.23")).toBe("k8s-1");
    await waitForHolders(holders, hosts);
  });

  test("a host whose SSH host key changed fails the update, naming it and both fingerprints", async () => {
    const old = load(LAB).hosts.find((h) => h.name === "k8s-4")!;
    const fresh = await recreateHost(LAB, "k8s-4");
    lab = load(LAB);
    const others = ["k8s-1", "k8s-2", "k8s-3"];
    const untouched = await Promise.all(others.map(snapshot));
    const r = pulumi(["up", "--yes", "--skip-preview"], { allowFail: true });
    expect(r.code).not.toBe(0);
    expect(await Promise.all(others.map(snapshot))).toEqual(untouched);
    expect(r.out).toContain("k8s-4");
    expect(r.out).toContain(old.fingerprint);
    expect(r.out).toContain(fresh.fingerprint);
    // After verifying the new key out of band, the operator pins it: the connection of every
    // resource on k8s-4 changes, and their (idempotent) updates rebuild the fresh host.
    pulumi(["config", "set", "--path", "nodes[3].ssh.hostKey", fresh.hostKey]);
    pulumi(["up", "--yes", "--skip-preview"]);
    expect(await sh("k8s-4", `cat ${SYSCTL_PATH}`)).toBe(sysctlConf());
    pulumi(["preview", "--refresh", "--expect-no-changes"]);
  });

  test("nodes moved behind a jump host (ssh.jumpHost): only the route in the state changes, nothing on the hosts", async () => {
    const unchanged = await Promise.all(hosts.map(snapshot));
    const bastion = lab.hosts[0];
    const loginsFromBastion = (h: string) =>
      sh(h, `grep -c 'Accepted publickey for root from ${bastion.ifaces.wan0.address} ' /var/log/sshd.log || true`).then(Number);
    const before = await Promise.all(["k8s-2", "k8s-3", "k8s-4"].map(loginsFromBastion));
    // k8s-1 is the bastion, reached directly; the others at their wan0 address, as on a NAT network
    stack.editConfig(behindJumpHost(lab));
    const ids = updatedIds(pulumi(["preview", "--diff"]).out);
    expect(ids).toEqual(expect.arrayContaining(["k8s-2", "k8s-3", "k8s-4"]));
    expect(ids.filter((id) => !/^k8s-[234](:|$)/.test(id))).toEqual([]);
    pulumi(["up", "--yes", "--skip-preview"]);
    expect(await Promise.all(hosts.map(snapshot))).toEqual(unchanged);
    // refresh reads every resource through the bastion: the hosts saw the logins come from it
    pulumi(["preview", "--refresh", "--expect-no-changes"]);
    const after = await Promise.all(["k8s-2", "k8s-3", "k8s-4"].map(loginsFromBastion));
    after.forEach((n, i) => expect(n).toBeGreaterThan(before[i]));
  });

  // k8s-4 was rebuilt from the same lower layer: its prior state is its original snapshot.
  // The stack is behind the jump host by now: destroy goes through it.
  test("destroy returns every host to its prior state", async () => {
    pulumi(["destroy", "--yes", "--skip-preview"]);
    for (const h of hosts) expect(await snapshot(h)).toBe(before.get(h));
  });
});
