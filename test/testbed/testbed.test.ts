// The lab harness itself: topology, isolation, concurrency, recreate, idempotent teardown.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { closeAll, connect, HostKeyMismatchError } from "../../providers/ssh";
import { describeTestbed, useTestbed } from "../testbed";
import { down, hostExec, load, recreateHost, sshTarget, stateDirOf, up } from "../../testbed";

const sh = (cmd: string) => execFileSync("sh", ["-c", cmd], { encoding: "utf8" });
const netnsOf = (lab: string) =>
  sh("ip netns list")
    .split("\n")
    .filter((l) => l.startsWith(`k8sbm.${lab}.`));
const membersOf = (lab: string) =>
  fs.readdirSync("/proc").filter((p) => {
    try {
      return /^\d+$/.test(p) && fs.readFileSync(`/proc/${p}/environ`, "latin1").split("\0").includes(`K8SBM_LAB_MEMBER=${lab}`);
    } catch {
      return false;
    }
  });
const zombieChildren = () => sh(`ps -eo ppid=,stat= | awk '$1 == ${process.pid} && $2 ~ /^Z/' | wc -l`).trim();

describeTestbed("lab harness", () => {
  let rootLinksBefore = "";
  beforeAll(() => {
    rootLinksBefore = sh("ip -o link show | awk -F': ' '{print $2}' | sort");
  });
  const lab = useTestbed("jest-lab", 2);

  afterAll(async () => {
    await down("jest-lab2");
  });

  test("hosts have the seed's names, addresses and interfaces; root namespace untouched", async () => {
    const st = lab();
    expect(st.hosts.map((h) => [h.name, h.ifaces.wan0.cidr, h.ifaces.wan1.cidr])).toEqual([
      ["k8s-1", "10.118.10.20/24", "10.118.12.20/24"],
      ["k8s-2", "10.118.10.21/24", "10.118.12.21/24"],
    ]);
    const saved = JSON.parse(fs.readFileSync(path.join(stateDirOf("jest-lab"), "hosts.json"), "utf8"));
    expect(saved.hosts[0].hostKey).toBe(st.hosts[0].hostKey);
    expect(fs.statSync(st.privateKeyPath).mode & 0o777).toBe(0o600);
    const r = await hostExec(st, "k8s-1", "hostname; ip -o -4 addr show | awk '{print $2, $4}'; cat /proc/1/cmdline | tr '\\0' ' '");
    expect(r.stdout).toContain("k8s-1\n");
    expect(r.stdout).toContain("lo 127.0.0.1/8\nwan0 10.118.10.20/24\nwan1 10.118.12.20/24\n");
    expect(r.stdout).toMatch(/tini -s --/);
    // both segments are L2-shared between hosts
    await hostExec(st, "k8s-1", "ping -c1 -W2 10.118.10.21 >/dev/null && ping -c1 -W2 10.118.12.21 >/dev/null");
    // the root namespace got no interfaces, addresses or routes from the lab
    expect(sh("ip -o link show | awk -F': ' '{print $2}' | sort")).toBe(rootLinksBefore);
    expect(sh("ip -o addr show; ip route show table all")).not.toMatch(/10\.118\./);
  });

  test("hosts are isolated from each other and from the real root", async () => {
    const st = lab();
    await hostExec(st, "k8s-1", "echo one > /etc/k8sbm-iso; sysctl -qw net.ipv4.ip_forward=1");
    expect((await hostExec(st, "k8s-2", "cat /etc/k8sbm-iso 2>/dev/null || echo absent")).stdout).toBe("absent\n");
    expect(fs.existsSync("/etc/k8sbm-iso")).toBe(false);
    expect((await hostExec(st, "k8s-2", "sysctl -n net.ipv4.ip_forward")).stdout).toBe("0\n");
    expect((await hostExec(st, "k8s-1", "sysctl -n net.ipv4.ip_forward")).stdout).toBe("1\n");
  });

  test("tini reaps orphans inside a host", async () => {
    const st = lab();
    await hostExec(st, "k8s-1", "sh -c '(sleep 0.2 >/dev/null 2>&1 &) ; exit 0'");
    await new Promise((r) => setTimeout(r, 700));
    expect((await hostExec(st, "k8s-1", "ps -eo stat= | grep -c '^Z' || true")).stdout.trim()).toBe("0");
  });

  test("a second lab runs concurrently with the same addresses; up() of a leftover lab is idempotent", async () => {
    const a = await up(1, "jest-lab2");
    const b = await up(1, "jest-lab2"); // leftovers of the first are torn down first
    expect(b.hosts[0].hostKey).not.toBe(a.hosts[0].hostKey);
    expect(membersOf("jest-lab2").map(Number)).not.toContain(a.pids.init);
    const h2 = await connect(sshTarget(b, "k8s-1"));
    const h1 = await connect(sshTarget(lab(), "k8s-1"));
    expect((await h2.exec("ip -o -4 addr show wan0 | awk '{print $4}'")).stdout).toBe("10.118.10.20/24\n");
    expect((await h1.exec("ip -o -4 addr show wan0 | awk '{print $4}'")).stdout).toBe("10.118.10.20/24\n");
    await h2.exec("touch /root/in-lab2");
    expect((await h1.exec("test -e /root/in-lab2 && echo yes || echo no")).stdout).toBe("no\n");
    closeAll();
    await down("jest-lab2");
    expect(netnsOf("jest-lab2")).toEqual([]);
    expect(membersOf("jest-lab2")).toEqual([]);
    expect((await (await connect(sshTarget(lab(), "k8s-1"))).exec("echo still-up")).stdout).toBe("still-up\n");
  });

  test("recreateHost: same address and port, fresh disk, NEW host key -> the old pin fails loudly", async () => {
    const st = lab();
    const old = st.hosts[1];
    await (await connect(sshTarget(st, "k8s-2"))).exec("echo x > /root/before-recreate");
    closeAll();
    const fresh = await recreateHost("jest-lab", "k8s-2");
    expect(fresh.ssh.port).toBe(old.ssh.port);
    expect(fresh.ifaces).toEqual(old.ifaces);
    expect(fresh.hostKey).not.toBe(old.hostKey);
    expect(load("jest-lab").hosts[1].hostKey).toBe(fresh.hostKey);

    const err = await connect({ ...sshTarget(st, "k8s-2"), hostKey: old.hostKey }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyMismatchError);
    expect((err as Error).message).toContain(fresh.fingerprint);

    const h = await connect(sshTarget(load("jest-lab"), "k8s-2"));
    expect((await h.exec("test -e /root/before-recreate && echo kept || echo fresh")).stdout).toBe("fresh\n");
    // still on the shared segments
    await hostExec(load("jest-lab"), "k8s-2", "ping -c1 -W2 10.118.10.20 >/dev/null && ping -c1 -W2 10.118.12.20 >/dev/null");
  });

  test("down() cleans up even when the state file is lost, and leaves no zombies", async () => {
    await up(1, "jest-lab2");
    fs.rmSync(path.join(stateDirOf("jest-lab2"), "hosts.json")); // simulate a crashed run
    await down("jest-lab2");
    await down("jest-lab2"); // and again: nothing there, no error
    expect(netnsOf("jest-lab2")).toEqual([]);
    expect(membersOf("jest-lab2")).toEqual([]);
    expect(fs.existsSync(stateDirOf("jest-lab2"))).toBe(false);
    await new Promise((r) => setTimeout(r, 300));
    expect(zombieChildren()).toBe("0");
  });
});
