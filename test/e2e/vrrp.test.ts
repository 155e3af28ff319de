// The keepalived mesh, proven with real keepalived on lab hosts configured by the program:
// placement, reload without moves, holder death, dead apiserver, partition and heal. Unicast
// VRRP without authentication here (the sound defaults); test/e2e/lab-stack.test.ts covers
// multicast with the seed's AH.
import { describeTestbed } from "../testbed";
import { down, hostExec, up, type TestbedState } from "../../testbed";
import { TestbedStack, UNICAST, testbedStackConfig } from "../../testbed/stack";
import {
  fakeApiserverClientUids,
  holdersOf,
  probeTakeover,
  setLinkDown,
  setPartitioned,
  startFakeApiserver,
  stopFakeApiserver,
  waitForHolder,
} from "../../testbed/vrrp";
import { expectedHolders, planVrrp } from "../../plan/vrrp";
import { CHECK_APISERVER_PATH, SCRIPT_USER } from "../../render/keepalived";

const LAB = "vrrp";
const VIP = "10.118.12.100";
const CONTROL_PLANES = ["k8s-1", "k8s-2", "k8s-3"];

const exactlyOne = (h: string[]) => h.length === 1;

/** Distinct MAC addresses answering ARP for `ip` on the wan1 segment, seen from `observer`. */
async function arpOwners(lab: TestbedState, observer: string, ip: string): Promise<string[]> {
  const r = await hostExec(lab, observer, `arping -c 3 -w 3 -I wan1 ${ip}`, { allowFail: true });
  return [...new Set([...r.stdout.matchAll(/from ([0-9a-f:]{17})/gi)].map((m) => m[1].toLowerCase()))];
}

async function keepalivedPids(lab: TestbedState): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const h of CONTROL_PLANES) out[h] = (await hostExec(lab, h, "pgrep -o -x keepalived")).stdout.trim();
  return out;
}

describeTestbed("keepalived mesh on lab hosts", () => {
  let lab: TestbedState;
  let stack: TestbedStack;

  beforeAll(async () => {
    lab = await up(4, LAB, { basePort: 22040 });
    stack = new TestbedStack(testbedStackConfig({ basePort: 22040, vrrp: UNICAST }));
    stack.init(lab, "unused12");
    for (const h of CONTROL_PLANES) await startFakeApiserver(lab, h);
    stack.run(["up", "--yes", "--skip-preview"]);
  }, 10 * 60_000);

  afterAll(async () => {
    stack?.remove();
    await down(LAB);
  }, 5 * 60_000);

  test("initial placement: the API VIP on k8s-1, each external IP on its predicted holder", async () => {
    const conf = (await hostExec(lab, "k8s-2", "cat /etc/keepalived/keepalived.conf")).stdout;
    expect(conf).toContain("unicast_src_ip 10.118.12.21");
    expect(conf).not.toContain("authentication");
    expect(conf).toMatch(/^ {4}vrrp_version 3$/m);
    // k8s-1 starts first and takes every IP; each preferred holder takes its IP over after the
    // external preempt_delay (30 s) — keepalived counts it from its own start too.
    for (const [vip, node] of expectedHolders(planVrrp(stack.spec())))
      expect(await waitForHolder(lab, vip.split("/")[0], (h) => h.length === 1 && h[0] === node, 45_000)).toEqual([node]);
    expect(await arpOwners(lab, "k8s-4", VIP)).toHaveLength(1);
  });

  test("the apiserver check runs as keepalived_script, not root; the script stays root's", async () => {
    for (const h of CONTROL_PLANES) {
      const uid = (await hostExec(lab, h, `id -u ${SCRIPT_USER}`)).stdout.trim();
      expect(uid).toMatch(/^[1-9][0-9]*$/);
      // the fake apiserver records who owns each local client's socket: keepalived's curl
      expect({ h, uids: await fakeApiserverClientUids(lab, h) }).toEqual({ h, uids: [uid] });
      expect((await hostExec(lab, h, `stat -c '%U:%G %a' ${CHECK_APISERVER_PATH} /etc/keepalived`)).stdout).toBe(
        "root:root 755\nroot:root 755\n",
      );
      // it sees the manifest through kubeadm's 0700 directories: the program granted search only
      expect((await hostExec(lab, h, "stat -c '%a' /etc/kubernetes /etc/kubernetes/manifests")).stdout).toBe("701\n701\n");
    }
  });

  test("a config change is applied by reload: keepalived keeps running, untouched VIPs stay", async () => {
    const pids = await keepalivedPids(lab);
    stack.run(["config", "set", "--path", "vrrp.external.vips[2]", "10.118.11.42"]);
    stack.run(["up", "--yes", "--skip-preview"]);
    expect(await keepalivedPids(lab)).toEqual(pids);
    expect(await holdersOf(lab, "10.118.11.22")).toEqual([]);
    expect(await waitForHolder(lab, "10.118.11.42", exactlyOne)).toEqual(["k8s-3"]);
    expect(await holdersOf(lab, "10.118.11.20")).toEqual(["k8s-1"]);
    expect(await holdersOf(lab, "10.118.11.21")).toEqual(["k8s-2"]);
    expect(await holdersOf(lab, VIP)).toEqual(["k8s-1"]);
  });

  test("holder death (link dropped): the API VIP moves to the next priority, held once", async () => {
    const probe = probeTakeover(lab, "k8s-4", VIP, 6443, "k8s-1");
    await new Promise((r) => setTimeout(r, 500));
    await setLinkDown(lab, "k8s-1", true);
    expect((await probe).host).toBe("k8s-2");
    const live = lab.hosts.filter((h) => h.name !== "k8s-1");
    for (const vip of [VIP, "10.118.11.20", "10.118.11.21", "10.118.11.42"]) {
      const holders = (await holdersOf(lab, vip)).filter((h) => live.some((l) => l.name === h));
      expect({ vip, holders: holders.length }).toEqual({ vip, holders: 1 });
    }
    expect(await arpOwners(lab, "k8s-4", VIP)).toHaveLength(1);
    // preemption policy: the recovered first node does not take the API VIP back
    await setLinkDown(lab, "k8s-1", false);
    await new Promise((r) => setTimeout(r, 6000));
    expect(await holdersOf(lab, VIP)).toEqual(["k8s-2"]);
  });

  test("dead apiserver on a live node: the VIP leaves it, and never lands on an unhealthy node", async () => {
    const probe = probeTakeover(lab, "k8s-4", VIP, 6443, "k8s-2");
    await new Promise((r) => setTimeout(r, 500));
    await stopFakeApiserver(lab, "k8s-2");
    expect((await probe).host).toBe("k8s-1");
    expect(await holdersOf(lab, VIP)).toEqual(["k8s-1"]);
    // k8s-1 fails too: the VIP goes to k8s-3 (89), not to unhealthy k8s-2 (99)
    await stopFakeApiserver(lab, "k8s-1");
    expect(await waitForHolder(lab, VIP, (h) => h.length === 1 && h[0] === "k8s-3")).toEqual(["k8s-3"]);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await holdersOf(lab, VIP)).toEqual(["k8s-3"]);
    // health returns: no preemption, the VIP stays on k8s-3
    await startFakeApiserver(lab, "k8s-1");
    await startFakeApiserver(lab, "k8s-2");
    await new Promise((r) => setTimeout(r, 5000));
    expect(await holdersOf(lab, VIP)).toEqual(["k8s-3"]);
  });

  test("partition and heal: exactly one holder per VIP afterwards", async () => {
    const [holder] = await holdersOf(lab, VIP);
    setPartitioned(lab, holder, true);
    // the others elect a new holder while the cut-off one keeps its VIP on its side
    await waitForHolder(lab, VIP, (h) => h.length === 2);
    setPartitioned(lab, holder, false);
    for (const vip of [VIP, "10.118.11.20", "10.118.11.21", "10.118.11.42"])
      expect(await waitForHolder(lab, vip, exactlyOne)).toHaveLength(1);
    expect(await arpOwners(lab, "k8s-4", VIP)).toHaveLength(1);
  });
});
