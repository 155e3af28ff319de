// The SSH layer against real sshd in lab hosts.
import { execFileSync, spawn } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  closeAll,
  connect,
  ExecTimeoutError,
  fingerprint,
  HostKeyMismatchError,
  RemoteError,
  resetStats,
  scanHostKey,
  SshAuthError,
  SshConnectionError,
  stats,
} from "../../providers/ssh";
import { hostExec, sshTarget, startSshd, stopSshd } from "../../testbed";
import { describeTestbed, useTestbed } from "../testbed";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeTestbed("ssh layer on lab hosts", () => {
  const lab = useTestbed("jest-ssh", 3);
  const target = (h: string) => sshTarget(lab(), h);

  beforeEach(() => {
    resetStats();
  });

  test("exec returns stdout, stderr and code; runs as root in the right host", async () => {
    const h = await connect(target("k8s-1"));
    expect(h.name).toBe("k8s-1");
    const r = await h.exec("hostname; id -u; echo oops >&2");
    expect(r).toEqual({ stdout: "k8s-1\n0\n", stderr: "oops\n", code: 0 });
    // always sh -c, whatever the login shell
    expect((await h.exec("echo $0")).stdout.trim()).toBe("sh");
  });

  test("exec with stdin (text and 1 MB binary)", async () => {
    const h = await connect(target("k8s-1"));
    expect((await h.exec("tr a-z A-Z", { stdin: "hello\n" })).stdout).toBe("HELLO\n");
    const blob = randomBytes(1 << 20);
    const r = await h.exec("wc -c; ", { stdin: blob });
    expect(r.stdout.trim()).toBe(String(blob.length));
    expect((await h.exec("cat >/dev/null; echo done")).stdout).toBe("done\n"); // no stdin: EOF, no hang
  });

  test("non-zero exit -> RemoteError with node, host, command, code, stderr", async () => {
    const h = await connect(target("k8s-2"));
    const err = await h.exec("echo partial; echo 'it broke' >&2; exit 3").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteError);
    const re = err as RemoteError;
    expect(re).toMatchObject({ node: "k8s-2", host: "127.0.0.1", command: "echo partial; echo 'it broke' >&2; exit 3", code: 3 });
    expect(re.stderr).toBe("it broke\n");
    expect(re.message).toBe(`k8s-2 (127.0.0.1): command "echo partial; echo 'it broke' >&2; exit 3" exited 3: it broke`);
    // allowFail resolves instead
    expect(await h.exec("exit 4", { allowFail: true })).toEqual({ stdout: "", stderr: "", code: 4 });
  });

  test("redactedAs hides the command; stdin never appears in errors", async () => {
    const h = await connect(target("k8s-2"));
    const err = (await h
      .exec("cat >/dev/null; echo token=S3CRET-IN-COMMAND >/dev/null; exit 1", {
        stdin: "S3CRET-IN-STDIN",
        redactedAs: "kubeadm join <redacted>",
      })
      .catch((e: unknown) => e)) as RemoteError;
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.command).toBe("kubeadm join <redacted>");
    const all = JSON.stringify({ ...err, message: err.message, stack: err.stack });
    expect(all).toContain("kubeadm join <redacted>");
    expect(all).not.toContain("S3CRET");
  });

  test("timeout -> ExecTimeoutError, and the remote command is stopped", async () => {
    const h = await connect(target("k8s-2"));
    const t0 = Date.now();
    const err = await h.exec("sleep 41; echo never", { timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecTimeoutError);
    expect(err).toBeInstanceOf(RemoteError);
    expect(Date.now() - t0).toBeLessThan(20_000); // not the 41 s the command would take
    expect((err as Error).message).toMatch(/^k8s-2 \(127\.0\.0\.1\): command "sleep 41; echo never" timed out after 1000 ms/);
    // the server-side guard kills it (TERM at 1 s)
    let left = "x";
    for (let i = 0; i < 40 && left; i++) {
      left = (await hostExec(lab(), "k8s-2", "ps -eo args | grep '^sleep 41' || true")).stdout.trim();
      if (left) await sleep(100);
    }
    expect(left).toBe("");
    // the connection is still usable
    expect((await h.exec("echo ok")).stdout).toBe("ok\n");
  });

  test("host key mismatch: HostKeyMismatchError naming node and both fingerprints, no retry", async () => {
    const st = lab();
    const wrongKey = st.hosts.find((x) => x.name === "k8s-2")!.hostKey;
    const t = { ...target("k8s-1"), hostKey: wrongKey, retries: 5 };
    const logins = async () => (await hostExec(st, "k8s-1", "grep -c 'Accepted publickey' /var/log/sshd.log || true")).stdout.trim();
    const loginsBefore = await logins();
    const err = await connect(t).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyMismatchError);
    const msg = (err as Error).message;
    expect(msg).toContain("k8s-1");
    expect(msg).toContain(`127.0.0.1:${t.port}`);
    expect(msg).toContain(`expected ${fingerprint(wrongKey)}`);
    expect(msg).toContain(`presented ${fingerprint(st.hosts[0].hostKey)}`);
    expect(msg).toMatch(/pulumi config/);
    expect(stats()["k8s-1"]).toMatchObject({ connectAttempts: 1, connections: 0 }); // one attempt, no retry
    expect(await logins()).toBe(loginsBefore); // we never authenticated to the wrong host
  });

  test("auth failure: SshAuthError, no retry", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-key-"));
    try {
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "k")]);
      const err = await connect({ ...target("k8s-1"), privateKey: fs.readFileSync(path.join(dir, "k"), "utf8"), retries: 5 }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SshAuthError);
      expect((err as Error).message).toMatch(/^k8s-1 \(127\.0\.0\.1:\d+\): SSH authentication as root failed/);
      expect((err as Error).message).not.toContain("PRIVATE KEY");
      expect(stats()["k8s-1"]).toMatchObject({ connectAttempts: 1, connections: 0 }); // no retry
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("pooling: concurrent connects and 20 parallel execs share one connection", async () => {
    closeAll();
    resetStats();
    const before = (await hostExec(lab(), "k8s-3", "grep -c 'Accepted publickey' /var/log/sshd.log || true")).stdout.trim();
    const hosts = await Promise.all(Array.from({ length: 5 }, () => connect(target("k8s-3"))));
    const outs = await Promise.all(Array.from({ length: 20 }, (_, i) => hosts[i % 5].exec(`echo ${i}`)));
    expect(outs.map((o) => o.stdout.trim())).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    expect(stats()["k8s-3"]).toEqual({ connectAttempts: 1, connections: 1, commands: 20, mutatingCommands: 0 });
    const after = (await hostExec(lab(), "k8s-3", "grep -c 'Accepted publickey' /var/log/sshd.log || true")).stdout.trim();
    expect(Number(after) - Number(before || 0)).toBe(1); // the server agrees
  });

  test("retries while sshd starts late, then connects", async () => {
    closeAll();
    await stopSshd(lab(), "k8s-3");
    const t0 = Date.now();
    const restart = sleep(1500).then(() => startSshd(lab(), "k8s-3"));
    const h = await connect(target("k8s-3"));
    const took = Date.now() - t0;
    await restart;
    expect(took).toBeGreaterThanOrEqual(1500);
    expect(took).toBeLessThan(10_000);
    expect((await h.exec("hostname")).stdout).toBe("k8s-3\n");
    expect(stats()["k8s-3"].connections).toBe(1);
  });

  test("retries are bounded: sshd down and retries 1 -> SshConnectionError after 2 attempts", async () => {
    closeAll();
    await stopSshd(lab(), "k8s-3");
    try {
      const t0 = Date.now();
      const err = await connect({ ...target("k8s-3"), retries: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SshConnectionError);
      expect((err as Error).message).toMatch(/^k8s-3 \(127\.0\.0\.1:\d+\): SSH connection failed after 2 attempts/);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(500);
    } finally {
      await startSshd(lab(), "k8s-3");
    }
  });

  test("writeFile: atomic, exact mode, parent dirs; readFile roundtrip incl. binary and missing", async () => {
    const h = await connect(target("k8s-1"));
    const bin = randomBytes(200_000);
    await h.writeFile("/etc/k8sbm-test/deep/dir/blob.bin", bin, 0o640);
    expect((await h.exec("stat -c %a /etc/k8sbm-test/deep/dir/blob.bin")).stdout.trim()).toBe("640");
    expect((await h.readFile("/etc/k8sbm-test/deep/dir/blob.bin"))!.equals(bin)).toBe(true);
    await h.writeFile("/etc/k8sbm-test/deep/dir/blob.bin", "text\n", 0o755); // replace: new mode too
    expect((await h.exec("stat -c %a /etc/k8sbm-test/deep/dir/blob.bin")).stdout.trim()).toBe("755");
    expect((await h.readFile("/etc/k8sbm-test/deep/dir/blob.bin"))!.toString()).toBe("text\n");
    await h.writeFile("/etc/k8sbm-test/empty", "", 0o600);
    expect((await h.readFile("/etc/k8sbm-test/empty"))!.length).toBe(0);
    expect(await h.readFile("/etc/k8sbm-test/nope")).toBeUndefined();
    await expect(h.readFile("/etc/k8sbm-test")).rejects.toThrow(RemoteError); // a directory
    // it landed in this host's overlay only
    expect(fs.existsSync(path.join(lab().hosts[0].upperDir, "etc/k8sbm-test/empty"))).toBe(true);
    expect(fs.existsSync("/etc/k8sbm-test")).toBe(false);

    // atomic: concurrent readers only ever see a whole old or a whole new file; no temp files left
    const A = "A".repeat(300_000);
    const B = "B".repeat(300_000);
    await h.writeFile("/etc/k8sbm-test/atomic", A, 0o644);
    const writes = Array.from({ length: 6 }, (_, i) => h.writeFile("/etc/k8sbm-test/atomic", i % 2 ? A : B, 0o644));
    const reads = Array.from({ length: 12 }, () => h.readFile("/etc/k8sbm-test/atomic"));
    await Promise.all(writes);
    for (const r of await Promise.all(reads)) {
      const s = r!.toString();
      expect(s === A || s === B).toBe(true);
    }
    expect((await h.exec("ls -A /etc/k8sbm-test")).stdout.split("\n").filter((f) => f.includes("tmp"))).toEqual([]);
  });

  test("writeFile failure is a RemoteError naming the path, not the script", async () => {
    const h = await connect(target("k8s-1"));
    await h.writeFile("/etc/k8sbm-test/file", "x", 0o644);
    const err = (await h.writeFile("/etc/k8sbm-test/file/below", "x", 0o644).catch((e: unknown) => e)) as RemoteError;
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.command).toBe("write /etc/k8sbm-test/file/below (mode 0644)");
  });

  test("stats count connections, commands and mutating commands", async () => {
    closeAll();
    resetStats();
    const h = await connect(target("k8s-2"));
    await h.exec("true");
    await h.exec("touch /tmp/x", { mutates: true });
    await h.writeFile("/tmp/y", "y", 0o644);
    await h.readFile("/tmp/y");
    expect(stats()).toEqual({ "k8s-2": { connectAttempts: 1, connections: 1, commands: 4, mutatingCommands: 2 } });
  });

  test("scanHostKey returns the recorded host key", async () => {
    for (const h of lab().hosts) {
      const key = await scanHostKey({ host: h.ssh.host, port: h.ssh.port, timeoutMs: 5000 });
      expect(key).toBe(h.hostKey);
      expect(fingerprint(key)).toBe(h.fingerprint);
    }
    const rsa = await scanHostKey({ host: "127.0.0.1", port: lab().hosts[0].ssh.port, keyType: "ssh-rsa" });
    expect(rsa).toBe(lab().hosts[0].hostKeys.rsa);
  });

  test("pinning an RSA key works (the right host key algorithm is negotiated)", async () => {
    const h = await connect({ ...target("k8s-1"), hostKey: lab().hosts[0].hostKeys.rsa });
    expect((await h.exec("hostname")).stdout).toBe("k8s-1\n");
  });

  test("non-root user goes through sudo -n", async () => {
    const user = lab().sudoUser;
    if (!user) {
      console.warn("sudo is not installed: skipping the sudo path");
      return;
    }
    const h = await connect({ ...target("k8s-2"), user });
    expect((await h.exec("id -u")).stdout).toBe("0\n");
    await h.writeFile("/root/sudo-written", "ok", 0o600);
    expect((await hostExec(lab(), "k8s-2", "stat -c '%a %U' /root/sudo-written")).stdout).toBe("600 root\n");
    expect((await h.readFile("/root/sudo-written"))!.toString()).toBe("ok");
  });

  test("forwardOut opens a TCP stream from the node into the lab network", async () => {
    const h = await connect(target("k8s-1"));
    const k8s2 = lab().hosts[1].ifaces.wan0.address;
    const stream = await h.forwardOut(k8s2, 22);
    const banner = await new Promise<string>((resolve, reject) => {
      stream.once("data", (d: Buffer) => resolve(d.toString()));
      stream.once("error", reject);
    });
    stream.destroy();
    expect(banner).toMatch(/^SSH-2\.0-OpenSSH/);
  });

  test("a process using the layer exits on its own (idle sockets unref'd) and appends K8SBM_SSH_STATS", async () => {
    const statsFile = path.join(os.tmpdir(), `k8sbm-stats-${process.pid}.jsonl`);
    fs.rmSync(statsFile, { force: true });
    const targetFile = path.join(os.tmpdir(), `k8sbm-target-${process.pid}.json`);
    fs.writeFileSync(targetFile, JSON.stringify(target("k8s-1")), { mode: 0o600 });
    const script = `
      const { connect } = require(${JSON.stringify(path.resolve(__dirname, "../../providers/ssh"))});
      (async () => {
        const h = await connect(JSON.parse(require("fs").readFileSync(${JSON.stringify(targetFile)}, "utf8")));
        await h.exec("true");
        await h.exec("true", { mutates: true });
      })().catch((e) => { console.error(e.message); process.exit(1); });`;
    try {
      const t0 = Date.now();
      const code = await new Promise<number | null>((resolve) => {
        const c = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", script], {
          env: { ...process.env, K8SBM_SSH_STATS: statsFile },
          stdio: ["ignore", "inherit", "inherit"],
        });
        const killer = setTimeout(() => c.kill("SIGKILL"), 30_000);
        c.on("exit", (code) => {
          clearTimeout(killer);
          resolve(code);
        });
      });
      expect(code).toBe(0);
      expect(Date.now() - t0).toBeLessThan(25_000);
      // one line per event, written as it happens (provider processes are killed, not exited)
      const events = fs
        .readFileSync(statsFile, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(events.every((e) => typeof e.pid === "number" && e.host === "k8s-1")).toBe(true);
      expect(events.map((e) => e.event).sort()).toEqual(["commands", "commands", "connectAttempts", "connections", "mutatingCommands"]);
    } finally {
      fs.rmSync(statsFile, { force: true });
      fs.rmSync(targetFile, { force: true });
    }
  });
});
