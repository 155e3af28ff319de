// What the program survives (issue 14, the parts that need no Kubernetes cluster), each through
// the real CLI on one shared testbed: bad input found at run time (a wrong SSH key, a host running
// another OS, a package the repositories lack, a full disk during a write) fails naming the node
// and the cause and leaves that host as it was; a host unreachable during `up`, `up` killed with
// SIGKILL, two `up` at once, and a host "reboot" replayed from the files the program wrote.
// The measured figures are printed at the end (and appended to $K8SBM_FAULTS_REPORT when set).
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { describeTestbed } from "../testbed";
import { down, hostExec, startSshd, stopSshd, up, type TestbedState } from "../../testbed";
import { TestbedStack, UNICAST, groupPids, testbedStackConfig, until, updatedIds, type RunResult } from "../../testbed/stack";
import { expectedHolders, planVrrp } from "../../plan/vrrp";
import * as ka from "../../render/keepalived";
import { SYSCTL_PATH, sysctlConf } from "../../render/host";
import { RT_TABLES_PATH } from "../../render/routing";
import { connectBudgetMs } from "../../providers/ssh/connection";
import { waitForHolder } from "../../testbed/vrrp";

const LAB = "flt";
/** hosts on 22161…22164 (the other suites and benchmarks use 22020-22146, 22700-22765, 23100+) */
const BASE_PORT = 22160;
const PASSWORD = "Fl7pAss1";
const HOSTS = ["k8s-1", "k8s-2", "k8s-3", "k8s-4"];
const BALANCERS = ["k8s-1", "k8s-2", "k8s-3"];
const MANAGED = [SYSCTL_PATH, ka.KEEPALIVED_CONF_PATH, ka.CHECK_APISERVER_PATH, RT_TABLES_PATH, "/etc/hosts"];
const CONNECT_TIMEOUT_MS = 10_000; // Pulumi.testbed.yaml's ssh.connectTimeoutSeconds
const RETRIES = 5; // the default ssh.retries
/** each scenario runs the CLI several times, on a machine that may be loaded */
const TEST_TIMEOUT = 10 * 60_000;

let lab: TestbedState;
let stack: TestbedStack;
const figures: Record<string, string> = {};
const pulumi = (args: string[], opts: { allowFail?: boolean; input?: string } = {}) => stack.run(args, opts);
const sh = (host: string, cmd: string) => hostExec(lab, host, cmd).then((r) => r.stdout);
const portOf = (host: string) => BASE_PORT + HOSTS.indexOf(host) + 1;

/** The program's files and the live state it manages, as one comparable text. */
async function snapshot(host: string): Promise<string> {
  return sh(
    host,
    `for f in ${MANAGED.join(" ")}; do echo "== $f"; cat "$f" 2>/dev/null || echo ABSENT; done; ` +
      `sysctl -n net.ipv4.ip_forward net.ipv4.ip_nonlocal_bind; ip -N -4 rule; ip -N -4 route show table 1 2>/dev/null; ` +
      `pgrep -x keepalived >/dev/null && echo keepalived || echo no-keepalived; ` +
      `find /etc /var/lib/k8s-baremetal -name '.k8sbm-tmp.*' 2>/dev/null; true`,
  );
}

/** What `up` converges a host to (the assertions of testbed-stack.test.ts, in short). */
async function expectConverged(host: string): Promise<void> {
  expect(await sh(host, `cat ${SYSCTL_PATH}`)).toBe(sysctlConf());
  expect((await sh(host, "sysctl -n net.ipv4.ip_forward net.ipv4.ip_nonlocal_bind")).split("\n").slice(0, 2)).toEqual(["1", "1"]);
  expect(await sh(host, "ip -N -4 rule")).toMatch(
    /200:\s+from all to 10\.244\.0\.0\/16 lookup 254[\s\S]*201:\s+from 10\.118\.11\.0\/24 lookup 1/,
  );
  expect(await sh(host, "ip -4 route show table 1")).toContain("default via 10.118.11.1 dev wan1");
  const plan = planVrrp(stack.spec()).find((p) => p.node === host);
  if (plan) {
    expect(await sh(host, `cat ${ka.KEEPALIVED_CONF_PATH}`)).toBe(ka.keepalivedConf(plan, ka.keepalivedOptions(stack.spec(), undefined)));
    expect((await hostExec(lab, host, "pgrep -x keepalived", { allowFail: true })).code).toBe(0);
  }
}

const startPulumi = (args: string[]) => stack.start(args);
const cancel = () => stack.cancel();
const lockFiles = () => stack.lockFiles();
const stateOf = () => stack.state();
/**
 * The state's resources by URN: what they are, their inputs and outputs — not the engine's
 * bookkeeping (times, dependency lists) nor a secret's ciphertext (a fresh nonce per write).
 */
const resourcesOf = (): Record<string, unknown> =>
  Object.fromEntries(
    ((stateOf().deployment?.resources as Record<string, unknown>[] | undefined) ?? []).map(({ urn, id, type, parent, inputs, outputs }) => [
      urn,
      JSON.parse(JSON.stringify({ id, type, parent, inputs, outputs }, (k, v: unknown) => (k === "ciphertext" ? "(secret)" : v))),
    ]),
  );

/** the paths where two JSON values differ */
function diffPaths(a: unknown, b: unknown, at = ""): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) === !Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => diffPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${at}/${k}`));
  }
  return [`${at}: ${JSON.stringify(a)?.slice(0, 120)} -> ${JSON.stringify(b)?.slice(0, 120)}`];
}

function figure(name: string, value: string): void {
  figures[name] = value;
}

describeTestbed("what the program survives (no Kubernetes), through the real CLI", () => {
  const before = new Map<string, string>();

  beforeAll(async () => {
    lab = await up(4, LAB, { basePort: BASE_PORT });
    stack = new TestbedStack(testbedStackConfig({ basePort: BASE_PORT, vrrp: UNICAST }), { K8SBM_SKIP_PLUGINS: "1" });
    stack.init(lab, PASSWORD);
    for (const h of HOSTS) before.set(h, await snapshot(h));
  }, 20 * 60_000);

  afterAll(async () => {
    const report = Object.entries(figures)
      .map(([k, v]) => `${k}: ${v}`)
      .join("\n");
    // eslint-disable-next-line no-console
    console.log(`faults figures (load ${os.loadavg()[0].toFixed(1)}):\n${report}`);
    if (process.env.K8SBM_FAULTS_REPORT) fs.appendFileSync(process.env.K8SBM_FAULTS_REPORT, report + "\n");
    await down(LAB);
    stack?.remove();
  }, 5 * 60_000);

  test(
    "a wrong sshPrivateKey: every node fails by name on authentication, no host touched",
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-wrongkey-"));
      try {
        spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "k")]);
        pulumi(["config", "set", "--secret", "sshPrivateKey"], { input: fs.readFileSync(path.join(dir, "k"), "utf8") });
        const r = pulumi(["up", "--yes", "--skip-preview"], { allowFail: true });
        expect(r.code).not.toBe(0);
        const failed = [...r.out.matchAll(/(k8s-\d) \(127\.0\.0\.1:(\d+)\): SSH authentication as root failed/g)];
        expect(failed.length).toBeGreaterThan(0);
        for (const [, node, port] of failed) expect(Number(port)).toBe(portOf(node));
        expect(r.out).not.toContain("PRIVATE KEY");
        for (const h of HOSTS) expect(await snapshot(h)).toBe(before.get(h));
        figure("wrong sshPrivateKey, `up` fails after", `${r.seconds.toFixed(1)} s (${new Set(failed.map((m) => m[1])).size} nodes named)`);
      } finally {
        pulumi(["config", "set", "--secret", "sshPrivateKey"], { input: fs.readFileSync(lab.privateKeyPath, "utf8") });
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    TEST_TIMEOUT,
  );

  test(
    "a host that is not the configured OS fails by name before it is touched",
    async () => {
      pulumi(["config", "set", "--path", "nodes[3].os", "gentoo"]);
      try {
        const r = pulumi(["up", "--yes", "--skip-preview"], { allowFail: true });
        expect(r.code).not.toBe(0);
        expect(r.out).toContain(
          `k8s-4 (127.0.0.1:${portOf("k8s-4")}): the host runs Debian GNU/Linux 12 (bookworm) (ID=debian), but the stack configures os gentoo`,
        );
        expect(r.out).toContain("set nodes[3].os to debian");
        expect(r.out).not.toContain("emerge");
        expect(await snapshot("k8s-4")).toBe(before.get("k8s-4"));
      } finally {
        pulumi(["config", "rm", "--path", "nodes[3].os"]);
      }
      // the init system too: systemd configured, none running
      pulumi(["config", "set", "--path", "nodes[3].init", "systemd"]);
      try {
        const r = pulumi(["up", "--yes", "--skip-preview"], { allowFail: true });
        expect(r.code).not.toBe(0);
        expect(r.out).toMatch(/k8s-4 \(127\.0\.0\.1:\d+\): the stack configures init systemd for this host .* not running there/);
        expect(await snapshot("k8s-4")).toBe(before.get("k8s-4"));
      } finally {
        pulumi(["config", "rm", "--path", "nodes[3].init"]);
      }
    },
    TEST_TIMEOUT,
  );

  test(
    "a host unreachable during `up`: fails in bounded time naming it, the others converge, the next `up` converges",
    async () => {
      // The host stops answering: every connect runs into the handshake timeout. The client reaches
      // the host through the testbed's loopback forwarder, which relays to sshd on the host's own
      // wan0 address, so taking its link down cuts nothing here; a frozen sshd (SIGSTOP: the kernel
      // still accepts, nothing answers) is what a dead link or host looks like through the forwarder.
      const sshd = (await sh("k8s-4", "pgrep -o -x sshd")).trim();
      await sh("k8s-4", `kill -STOP ${sshd}`);
      let r: RunResult;
      try {
        r = pulumi(["up", "--yes", "--skip-preview", "--continue-on-error"], { allowFail: true });
      } finally {
        await sh("k8s-4", `kill -CONT ${sshd}`);
      }
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(
        new RegExp(
          `k8s-4 \\(127\\.0\\.0\\.1:${portOf("k8s-4")}\\): SSH connection failed after ${RETRIES + 1} attempts: Timed out while waiting for handshake`,
        ),
      );
      expect(r.out).not.toMatch(/k8s-[123] \(127\.0\.0\.1:\d+\): SSH connection failed/);
      // the bound: every connect attempt timing out plus the backoff, and the CLI's own start and finish
      const budget = connectBudgetMs(CONNECT_TIMEOUT_MS, RETRIES) / 1000;
      expect(r.seconds).toBeGreaterThan(budget - 5);
      expect(r.seconds).toBeLessThan(budget + 60);
      figure("host unreachable (not answering), `up` fails after", `${r.seconds.toFixed(1)} s (connect budget ${budget.toFixed(1)} s)`);
      for (const h of BALANCERS) await expectConverged(h);
      expect(await sh("k8s-4", `cat ${SYSCTL_PATH} 2>/dev/null || echo ABSENT`)).toBe("ABSENT\n");

      // a host that refuses (sshd stopped) fails sooner: the backoff alone
      await stopSshd(lab, "k8s-4");
      let refused: RunResult;
      try {
        refused = pulumi(["up", "--yes", "--skip-preview", "--continue-on-error"], { allowFail: true });
      } finally {
        await startSshd(lab, "k8s-4");
      }
      expect(refused.code).not.toBe(0);
      expect(refused.out).toMatch(
        new RegExp(`k8s-4 \\(127\\.0\\.0\\.1:${portOf("k8s-4")}\\): SSH connection failed after ${RETRIES + 1} attempts`),
      );
      figure("host refusing SSH (sshd stopped), `up` fails after", `${refused.seconds.toFixed(1)} s`);

      const again = pulumi(["up", "--yes", "--skip-preview"]);
      figure("next `up` after the host is back", `${again.seconds.toFixed(1)} s`);
      for (const h of HOSTS) await expectConverged(h);
      pulumi(["preview", "--expect-no-changes"]);
    },
    TEST_TIMEOUT,
  );

  test(
    "a package the distribution's repository does not have: fails naming node and package, nothing installed",
    async () => {
      // k8s-4's apt sees an empty repository, and socat is no longer installed (its dpkg status only)
      await sh(
        "k8s-4",
        [
          "mkdir -p /tmp/k8sbm-repo /tmp/k8sbm-lists/partial /tmp/k8sbm-parts && : > /tmp/k8sbm-repo/Packages",
          "echo 'deb [trusted=yes] file:/tmp/k8sbm-repo ./' > /tmp/k8sbm-sources.list",
          "printf '%s\\n' 'Dir::Etc::SourceList \"/tmp/k8sbm-sources.list\";' 'Dir::Etc::SourceParts \"/tmp/k8sbm-parts\";' 'Dir::State::Lists \"/tmp/k8sbm-lists\";' > /etc/apt/apt.conf.d/99k8sbm-faults",
          "cp -p /var/lib/dpkg/status /var/lib/dpkg/status.k8sbm-faults",
          "sed -i '/^Package: socat$/,/^$/s/^Status: install ok installed$/Status: deinstall ok config-files/' /var/lib/dpkg/status",
        ].join(" && "),
      );
      const dpkg = () => sh("k8s-4", "dpkg-query -W -f='${Package} ${db:Status-Status}\\n' | sort");
      const files = () => snapshot("k8s-4");
      try {
        const [pkgsBefore, filesBefore] = [await dpkg(), await files()];
        expect(pkgsBefore).toContain("socat config-files");
        const r = pulumi(["up", "--refresh", "--yes", "--skip-preview"], { allowFail: true });
        expect(r.code).not.toBe(0);
        expect(r.out).toMatch(
          new RegExp(
            `k8s-4 \\(127\\.0\\.0\\.1:${portOf("k8s-4")}\\): package socat cannot be installed: .* do not have it, so nothing was installed`,
          ),
        );
        expect(r.out).toMatch(/has no installation candidate|Unable to locate package/);
        expect(await dpkg()).toBe(pkgsBefore);
        expect(await files()).toBe(filesBefore);
      } finally {
        await sh("k8s-4", "mv -f /var/lib/dpkg/status.k8sbm-faults /var/lib/dpkg/status; rm -f /etc/apt/apt.conf.d/99k8sbm-faults");
      }
      pulumi(["up", "--refresh", "--yes", "--skip-preview"]);
      pulumi(["preview", "--refresh", "--expect-no-changes"]);
    },
    TEST_TIMEOUT,
  );

  test(
    "a full disk during a file write: fails naming node and cause, the old file stays, no temp file left",
    async () => {
      const dir = "/etc/keepalived";
      // a small tmpfs over the directory, holding its files, then filled up
      await sh(
        "k8s-1",
        `cp -a ${dir} /tmp/k8sbm-ka && mount -t tmpfs -o size=64k,mode=755 k8sbm-full ${dir} && cp -a /tmp/k8sbm-ka/. ${dir}/ && ` +
          `{ dd if=/dev/zero of=${dir}/fill bs=4k 2>/dev/null; true; }`,
      );
      try {
        const old = await sh("k8s-1", `cat ${ka.KEEPALIVED_CONF_PATH}`);
        const listing = await sh("k8s-1", `ls -A ${dir}`);
        const pid = (await sh("k8s-1", "pgrep -o -x keepalived")).trim();
        pulumi(["config", "set", "--path", "vrrp.external.vips[3]", "10.118.11.23"]);
        const r = pulumi(["up", "--yes", "--skip-preview"], { allowFail: true });
        expect(r.code).not.toBe(0);
        expect(r.out).toContain(`k8s-1 (127.0.0.1): command "write ${ka.KEEPALIVED_CONF_PATH} (mode 0640)" exited 46`);
        expect(r.out).toContain("No space left on device");
        expect(r.out).toContain(`${ka.KEEPALIVED_CONF_PATH} was not replaced`);
        expect(await sh("k8s-1", `cat ${ka.KEEPALIVED_CONF_PATH}`)).toBe(old);
        expect(await sh("k8s-1", `ls -A ${dir}`)).toBe(listing); // no temp file left
        expect((await sh("k8s-1", "pgrep -o -x keepalived")).trim()).toBe(pid);
        expect(r.out).not.toMatch(/k8s-1-keepalived +update/); // its reload waits for the file: skipped
      } finally {
        await sh("k8s-1", `umount ${dir}; rm -rf /tmp/k8sbm-ka`);
      }
      pulumi(["up", "--yes", "--skip-preview"]);
      for (const h of HOSTS) await expectConverged(h);
      pulumi(["preview", "--expect-no-changes"]);
    },
    TEST_TIMEOUT,
  );

  test(
    "`up` killed with SIGKILL during host preparation: the documented recovery converges",
    async () => {
      pulumi(["destroy", "--yes", "--skip-preview"]);
      for (const h of HOSTS) expect(await snapshot(h)).toBe(before.get(h));
      const run = startPulumi(["up", "--yes", "--skip-preview"]);
      // host preparation has begun: the first program file is on a host
      await until("host preparation to begin", 180_000, async () =>
        (await hostExec(lab, "k8s-1", `test -e ${SYSCTL_PATH}`, { allowFail: true })).code === 0 ? true : undefined,
      );
      process.kill(-run.child.pid!, "SIGKILL");
      const killed = await run.done;
      expect(killed.code).not.toBe(0);
      await new Promise((r) => setTimeout(r, 2000));
      // nothing of the killed run keeps going behind the operator's back
      expect(groupPids(run.child.pid!)).toEqual([]);

      // 1. the killed run's lock stays: the next run is refused, naming it and `pulumi cancel`
      expect(lockFiles()).toHaveLength(1);
      const refused = pulumi(["up", "--yes", "--skip-preview"], { allowFail: true });
      expect(refused.code).not.toBe(0);
      expect(refused.out).toContain("the stack is currently locked by 1 lock(s)");
      expect(refused.out).toContain("pulumi cancel");
      expect(refused.out).toMatch(/created by \S+@\S+ \(pid \d+\)/);
      // 2. after making sure that process is gone (the lock names its pid and host): remove the lock
      expect(cancel().code).toBe(0);
      expect(lockFiles()).toEqual([]);
      // 3. the creates the kill interrupted are pending in the state; `up` warns about them and runs
      //    (our creates probe first, so it adopts whatever the killed ones did)
      const pending = (stateOf().deployment?.pending_operations as unknown[] | undefined) ?? [];
      expect(pending.length).toBeGreaterThan(0);
      figure("SIGKILL during host preparation: pending operations left", String(pending.length));
      const rec = pulumi(["up", "--yes", "--skip-preview"]);
      expect(rec.out).toContain(`with ${pending.length} pending operations from previous deployment`);
      figure("SIGKILL recovery `up`", `${rec.seconds.toFixed(1)} s`);
      for (const h of HOSTS) await expectConverged(h);
      const still = (stateOf().deployment?.pending_operations as unknown[] | undefined) ?? [];
      figure("pending operations after that `up`", String(still.length));
      expect(still.length).toBeGreaterThan(0); // `up` leaves them (a warning on every run): step 4
      // 4. drop what is left of them from the state (only creates can be left: the others are cleared by refresh)
      pulumi(["refresh", "--clear-pending-creates", "--yes", "--skip-preview"]);
      expect(stateOf().deployment?.pending_operations ?? []).toEqual([]);
      pulumi(["preview", "--refresh", "--expect-no-changes"]);
    },
    TEST_TIMEOUT,
  );

  test(
    "two `up` at once: the second is refused by the backend's lock, the state stays intact",
    async () => {
      const stateBefore = resourcesOf();
      expect(Object.keys(stateBefore).some((u) => u.endsWith("::k8s-4-policy-routing"))).toBe(true);
      const first = startPulumi(["up", "--refresh", "--yes", "--skip-preview"]);
      await until("the first run's lock", 120_000, () => (lockFiles().length ? true : undefined));
      const second = pulumi(["up", "--yes", "--skip-preview"], { allowFail: true });
      const a = await first.done;
      expect(second.code).not.toBe(0);
      expect(second.out).toContain("the stack is currently locked by 1 lock(s)");
      expect(a.code).toBe(0);
      expect(lockFiles()).toEqual([]);
      expect(diffPaths(stateBefore, resourcesOf())).toEqual([]);
      pulumi(["preview", "--refresh", "--expect-no-changes"]);
      figure("concurrent `up`: the second refused after", `${second.seconds.toFixed(1)} s`);
    },
    TEST_TIMEOUT,
  );

  test(
    "a reboot replayed on k8s-2: the boot configuration brings back sysctls, keepalived, its VIPs and policy routing",
    async () => {
      const h = "k8s-2";
      const plans = planVrrp(stack.spec());
      const mine = [...expectedHolders(plans)].filter(([, n]) => n === h).map(([vip]) => vip.split("/")[0]);
      expect(mine.length).toBeGreaterThan(0);
      for (const vip of mine) await waitForHolder(lab, vip, (x) => x.length === 1 && x[0] === h, 60_000);
      // what a reboot loses: the running keepalived and its addresses, sysctls, rules and routes
      const pids = (await sh(h, "pgrep -x keepalived")).split("\n").filter(Boolean).join(" ");
      await sh(
        h,
        `kill -9 ${pids}; while pgrep -x keepalived >/dev/null; do sleep 0.1; done; ` +
          `for a in $(ip -4 -o addr show | awk '$4 !~ /^10\\.118\\.1[02]\\.2[0-9]\\/24$/ && $2 != "lo" {print $2 "," $4}'); do ip addr del \${a#*,} dev \${a%%,*}; done; ` +
          `sysctl -qw net.ipv4.ip_forward=0 net.ipv4.ip_nonlocal_bind=0; ip -4 route flush table 1; ` +
          `while ip rule del priority 200 2>/dev/null; do :; done; while ip rule del priority 201 2>/dev/null; do :; done`,
      );
      const t0 = Date.now();
      // what an init system does at boot with the files the program wrote (no init runs here)
      await sh(h, BOOT_REPLAY);
      await expectConverged(h);
      for (const vip of mine) await waitForHolder(lab, vip, (x) => x.length === 1 && x[0] === h, 60_000);
      figure("reboot replay: VIPs back on their holder after", `${((Date.now() - t0) / 1000).toFixed(1)} s`);
      const r = pulumi(["preview", "--refresh", "--expect-no-changes", "--diff"], { allowFail: true });
      expect(updatedIds(r.out)).toEqual([]);
      expect(r.code).toBe(0);
    },
    TEST_TIMEOUT,
  );
});

/**
 * The boot sequence of the program's persistence, as Debian's init scripts run it: sysctl.d
 * (procps), the interface hooks of ifupdown (/etc/network/if-up.d, with IFACE set as ifup does),
 * then keepalived from its configuration.
 */
const BOOT_REPLAY = [
  // procps applies every sysctl.d file at boot; only the program's here (the others hold the machine's global keys)
  `sysctl -q -p ${SYSCTL_PATH}`,
  // ifup runs the hooks once per interface it brings up; wan1 carries the policy routing
  "for i in lo wan0 wan1; do IFACE=$i LOGICAL=$i ADDRFAM=inet METHOD=static MODE=start PHASE=post-up run-parts /etc/network/if-up.d; done",
  "/etc/init.d/keepalived start >/dev/null",
].join(" && ");
