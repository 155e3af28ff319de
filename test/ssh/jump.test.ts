// ssh.jumpHost on real sshd: lab hosts' wan addresses are not routable from this process (it
// reaches each sshd through a port forwarder), like nodes on a libvirt NAT network or behind a
// bastion. k8s-1 is the jump host; k8s-2 and k8s-3 are reached at their wan0 addresses through it.
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  closeAll,
  connect,
  fingerprint,
  HostKeyMismatchError,
  resetStats,
  scanHostKey,
  SshConnectionError,
  stats,
  type SshTarget,
} from "../../providers/ssh";
import { provider as sshHost } from "../../providers/impl/ssh-host";
import { hostExec, sshTarget, startSshd, stopSshd } from "../../testbed";
import { describeTestbed, useTestbed } from "../testbed";

describeTestbed("ssh through a jump host on lab hosts", () => {
  const lab = useTestbed("jest-jump", 3, { basePort: 22780 });
  const jump = (): SshTarget => ({ ...sshTarget(lab(), "k8s-1"), name: "jump host k8s-1" });
  /** a node at its wan0 address (where its sshd listens), port 22, through the jump host */
  const behind = (h: string, over: Partial<SshTarget> = {}): SshTarget => {
    const host = lab().hosts.find((x) => x.name === h)!;
    return { ...sshTarget(lab(), h), host: host.ifaces.wan0.address, port: 22, via: jump(), ...over };
  };
  const logins = async (h: string) =>
    Number((await hostExec(lab(), h, "grep -c 'Accepted publickey' /var/log/sshd.log || true")).stdout.trim() || 0);

  beforeEach(() => {
    closeAll();
    resetStats();
  });

  test("the wan addresses are not reachable from here: the jump host is needed", async () => {
    const { via: _jump, ...direct } = behind("k8s-2");
    const err = await connect({ ...direct, retries: 0, connectTimeoutMs: 3000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshConnectionError);
    expect((err as Error).message).toMatch(/^k8s-2 \(10\.118\.10\.\d+:22\): SSH connection failed/);
  });

  test("commands, files and tunnels reach the node through the jump host, and nodes share one connection to it", async () => {
    const [k2, k3] = await Promise.all([connect(behind("k8s-2")), connect(behind("k8s-3"))]);
    expect((await k2.exec("hostname")).stdout).toBe("k8s-2\n");
    expect((await k3.exec("hostname")).stdout).toBe("k8s-3\n");
    await k2.writeFile("/tmp/jump-test", "through the bastion\n", 0o600);
    expect((await k2.readFile("/tmp/jump-test"))?.toString()).toBe("through the bastion\n");
    // the API tunnel (apiAccess: ssh-tunnel) rides on the same path: this process → k8s-1 → k8s-3 → k8s-2
    const stream = await k3.forwardOut(behind("k8s-2").host, 22);
    const banner = await new Promise<string>((resolve, reject) => {
      stream.once("data", (d: Buffer) => resolve(d.toString()));
      stream.once("error", reject);
    });
    stream.destroy();
    expect(banner).toMatch(/^SSH-2\.0-OpenSSH/);
    const s = stats();
    expect(s["jump host k8s-1"]).toMatchObject({ connectAttempts: 1, connections: 1, commands: 0 });
    expect(s["k8s-2"]).toMatchObject({ connections: 1, commands: 3 });
    expect(s["k8s-3"]).toMatchObject({ connections: 1, commands: 1 });
  });

  test("a wrong key pinned for the jump host stops before any node is contacted", async () => {
    const before = await logins("k8s-2");
    const wrong = lab().hosts[2].hostKey;
    const err = await connect(behind("k8s-2", { via: { ...jump(), hostKey: wrong } })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyMismatchError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^jump host k8s-1 \(127\.0\.0\.1:22781\): SSH host key mismatch/);
    expect(msg).toContain(`presented ${fingerprint(lab().hosts[0].hostKey)}`);
    expect(stats()["jump host k8s-1"]).toMatchObject({ connectAttempts: 1, connections: 0 });
    expect(await logins("k8s-2")).toBe(before);
  });

  test("the node's key is verified end to end: the jump host cannot stand in for it", async () => {
    const before = await logins("k8s-2");
    const err = await connect(behind("k8s-2", { hostKey: lab().hosts[0].hostKey })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyMismatchError);
    const msg = (err as Error).message;
    expect(msg).toContain(`k8s-2 (${behind("k8s-2").host}:22 via jump host k8s-1): SSH host key mismatch`);
    expect(msg).toContain(`presented ${fingerprint(lab().hosts[1].hostKey)}`);
    expect(await logins("k8s-2")).toBe(before);
  });

  test("a node whose sshd is down: bounded retries, the error names the node, the path and the cause", async () => {
    await stopSshd(lab(), "k8s-3");
    try {
      const err = await connect(behind("k8s-3", { retries: 1 })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SshConnectionError);
      const msg = (err as Error).message;
      expect(msg).toMatch(/^k8s-3 \(10\.118\.10\.\d+:22 via jump host k8s-1\): SSH connection failed after 2 attempts: /);
      expect(msg).toMatch(/jump host k8s-1 could not open a channel to 10\.118\.10\.\d+:22: .*refused/i);
      // the jump host itself was fine: one connection, reused for the retry
      expect(stats()["jump host k8s-1"]).toMatchObject({ connections: 1 });
    } finally {
      await startSshd(lab(), "k8s-3");
    }
  });

  test("a node still booting (bootWaitMs, a lab VM the program just started) is waited for past the retries", async () => {
    await stopSshd(lab(), "k8s-3");
    let started: Promise<void> | undefined;
    try {
      const t0 = Date.now();
      // sshd comes up 6 s after the first attempt: with 1 retry the backoff alone (0.5 s) would give up
      const timer = setTimeout(() => (started = startSshd(lab(), "k8s-3")), 6000);
      const host = await connect(behind("k8s-3", { retries: 1, bootWaitMs: 30_000 })).finally(() => clearTimeout(timer));
      expect((await host.exec("hostname")).stdout.trim()).toBe("k8s-3");
      expect(Date.now() - t0).toBeGreaterThanOrEqual(6000);
      expect(stats()["k8s-3"].connectAttempts).toBeGreaterThan(2);
    } finally {
      await started;
      if (!started) await startSshd(lab(), "k8s-3");
    }
  });

  test("an unreachable jump host fails with its own name inside the node's error, without retries multiplied", async () => {
    const err = await connect(behind("k8s-2", { via: { ...jump(), port: 1, retries: 1 } })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshConnectionError);
    const msg = (err as Error).message;
    expect(msg).toMatch(
      /^k8s-2 \(.* via jump host k8s-1\): SSH connection failed: jump host k8s-1 \(127\.0\.0\.1:1\): SSH connection failed after 2 attempts/,
    );
    expect(stats()["jump host k8s-1"].connectAttempts).toBe(2);
  });

  test("first contact through the jump host: the key scan and the pin command", async () => {
    const t = behind("k8s-2");
    expect(await scanHostKey({ host: t.host, port: 22, via: jump(), keyType: "ssh-ed25519" })).toBe(lab().hosts[1].hostKey);
    const { hostKey: _pinned, ...unpinned } = t;
    const err = (await sshHost.create({ connection: unpinned, configPath: "nodes[1]" }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/^k8s-2 \(10\.118\.10\.\d+:22 via jump host k8s-1\): no SSH host key is pinned/);
    expect(err.message).toContain(`pulumi config set --path 'nodes[1].ssh.hostKey'`);
    const r = await sshHost.create({ connection: unpinned, pinnedHostKey: t.hostKey });
    expect(r.outs.connection.via?.name).toBe("jump host k8s-1");
  });

  test("a process reaching a node through the jump host exits on its own (idle channels hold nothing)", async () => {
    const targetFile = path.join(os.tmpdir(), `k8sbm-jump-target-${process.pid}.json`);
    fs.writeFileSync(targetFile, JSON.stringify(behind("k8s-2")), { mode: 0o600 });
    const script = `
      const { connect } = require(${JSON.stringify(path.resolve(__dirname, "../../providers/ssh"))});
      (async () => {
        const h = await connect(JSON.parse(require("fs").readFileSync(${JSON.stringify(targetFile)}, "utf8")));
        process.stdout.write((await h.exec("hostname")).stdout);
      })().catch((e) => { console.error(e.message); process.exit(1); });`;
    try {
      const t0 = Date.now();
      const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
        let out = "";
        const c = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", script], {
          stdio: ["ignore", "pipe", "inherit"],
        });
        c.stdout.on("data", (d: Buffer) => (out += d.toString()));
        const killer = setTimeout(() => c.kill("SIGKILL"), 30_000);
        c.on("exit", (code) => {
          clearTimeout(killer);
          resolve({ code, out });
        });
      });
      expect({ code, out }).toEqual({ code: 0, out: "k8s-2\n" });
      expect(Date.now() - t0).toBeLessThan(25_000);
    } finally {
      fs.rmSync(targetFile, { force: true });
    }
  });
});
