// Pure parts of the SSH layer (no lab needed).
import { execFileSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  backoffMs,
  fingerprint,
  HostKeyMismatchError,
  isTransient,
  parseKeyLine,
  RemoteError,
  SshAuthError,
  shq,
  wrapCommand,
} from "../../providers/ssh";
import { stripControl, trimOutput } from "../../providers/ssh/errors";
import { hostKeyAlgorithms } from "../../providers/ssh/hostkey";
import { TRANSFER_EXIT, writeFileScript } from "../../providers/ssh/shell";

// a fixed key and what `ssh-keygen -lf` prints for it
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMI4vshksmxpVoJCqa6DAwUkTLP/Q0CV1E72U4shbfh7";

describe("host keys", () => {
  test("fingerprint matches ssh-keygen -l", () => {
    // `ssh-keygen -l -E sha256 -f` on KEY prints this
    expect(fingerprint(KEY)).toBe("SHA256:uGJ2ACHgA6u7Xdfxjvd/xPYtvSgHwOv9vpcKeiaarZM");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-fp-"));
    try {
      // and for a freshly generated key of each type, when ssh-keygen is around
      for (const type of ["ed25519", "ecdsa", "rsa"]) {
        const f = path.join(dir, `k-${type}`);
        try {
          execFileSync("ssh-keygen", ["-q", "-t", type, "-N", "", "-f", f], { stdio: "ignore" });
        } catch {
          continue;
        }
        const line = fs.readFileSync(f + ".pub", "utf8");
        const expected = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", f + ".pub"], { encoding: "utf8" }).split(" ")[1];
        expect(fingerprint(line)).toBe(expected);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("parseKeyLine rejects junk and type/blob disagreement", () => {
    expect(parseKeyLine(KEY + " c").type).toBe("ssh-ed25519");
    expect(() => parseKeyLine("")).toThrow(/OpenSSH public key line/);
    expect(() => parseKeyLine("ssh-ed25519 !!!")).toThrow(/base64/);
    expect(() => parseKeyLine(KEY.replace("ssh-ed25519", "ssh-rsa"))).toThrow(/key data says ssh-ed25519/);
  });

  test("host key algorithms follow the pinned type", () => {
    expect(hostKeyAlgorithms("ssh-ed25519")).toEqual(["ssh-ed25519"]);
    expect(hostKeyAlgorithms("ssh-rsa")).toEqual(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
    expect(() => hostKeyAlgorithms("ssh-dss")).toThrow(/unsupported/);
  });
});

describe("commands", () => {
  test("shq survives quotes", () => {
    const s = `a'b"c $(x) \\`;
    expect(execFileSync("sh", ["-c", `printf %s ${shq(s)}`], { encoding: "utf8" })).toBe(s);
  });

  test("wrapCommand: sh -c, sudo -n when not root, timeout guard", () => {
    expect(wrapCommand("id", "root")).toBe(`sh -c 'id'`);
    expect(wrapCommand("id", "ops")).toBe(`sudo -n sh -c 'id'`);
    const w = wrapCommand("echo 'hi'; exit 3", "root", 1500);
    const r = (() => {
      try {
        return { out: execFileSync("sh", ["-c", w], { encoding: "utf8" }), code: 0 };
      } catch (e) {
        return { out: String((e as { stdout?: string }).stdout), code: (e as { status: number }).status };
      }
    })();
    expect(r).toEqual({ out: "hi\n", code: 3 });
  });

  const sent = (data: string) => ({ size: Buffer.byteLength(data), sha256: createHash("sha256").update(data).digest("hex") });

  test("writeFileScript validates path and mode", () => {
    expect(() => writeFileScript("rel/x", 0o644, sent(""))).toThrow(/absolute/);
    expect(() => writeFileScript("/x", 0o17777, sent(""))).toThrow(/mode/);
    expect(writeFileScript("/etc/x", 0o640, sent(""))).toContain("chmod 0640");
    expect(() => writeFileScript("/etc/x", 0o640, { size: 1, sha256: "x; reboot" })).toThrow(/sha256/);
  });

  test("writeFileScript replaces the file only when size and sha256 match what was sent", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-write-"));
    const target = path.join(dir, "f.conf");
    const run = (script: string, stdin: string) => {
      try {
        execFileSync("sh", ["-c", script], { input: stdin, stdio: ["pipe", "pipe", "pipe"] });
        return { code: 0, err: "" };
      } catch (e) {
        const x = e as { status: number; stderr: Buffer };
        return { code: x.status, err: x.stderr.toString() };
      }
    };
    try {
      fs.writeFileSync(target, "old\n");
      const content = "new content\n".repeat(100);
      // a transfer cut short: fewer bytes arrive than were sent
      const short = run(writeFileScript(target, 0o640, sent(content)), content.slice(0, 500));
      expect(short.code).toBe(TRANSFER_EXIT);
      expect(short.err).toMatch(/received 500 bytes, 1200 were sent; .*f\.conf was not replaced/);
      // the same size, other bytes
      const altered = run(writeFileScript(target, 0o640, sent(content)), content.replace("new", "bad"));
      expect(altered.code).toBe(TRANSFER_EXIT);
      expect(altered.err).toMatch(/sha256 differs/);
      expect(fs.readFileSync(target, "utf8")).toBe("old\n");
      expect(fs.readdirSync(dir)).toEqual(["f.conf"]); // no temp file left
      expect(run(writeFileScript(target, 0o640, sent(content)), content).code).toBe(0);
      expect(fs.readFileSync(target, "utf8")).toBe(content);
      expect(fs.statSync(target).mode & 0o7777).toBe(0o640);
      expect(fs.readdirSync(dir)).toEqual(["f.conf"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("errors and retry policy", () => {
  test("RemoteError message names node, host, command, code and trimmed stderr", () => {
    const e = new RemoteError("k8s-1", "10.118.10.20", "false", 1, "x".repeat(5000));
    expect(e.message.startsWith(`k8s-1 (10.118.10.20): command "false" exited 1: xxx`)).toBe(true);
    expect(e.message.length).toBeLessThan(2300);
    expect(trimOutput("a".repeat(3000))).toContain("chars omitted");
  });

  test("remote output reaches the terminal without control characters or escape sequences", () => {
    const hostile = "ok\x1b[2J\x1b]0;pwned\x07\x1b[31mred\x1b[0m\rover\x08\x00\x9b1m\u202eevil\ttab\nnext";
    expect(stripControl(hostile)).toBe("okredoverevil\ttab\nnext");
    const e = new RemoteError("k8s-1", "h", "false", 1, hostile, hostile);
    expect(e.message).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]/);
    expect(e.message).toContain("red");
  });

  test("backoff is exponential and capped", () => {
    expect([0, 1, 2, 3, 4, 5, 9].map(backoffMs)).toEqual([500, 1000, 2000, 4000, 8000, 8000, 8000]);
  });

  test("what is retried", () => {
    const err = (props: Record<string, unknown>) => Object.assign(new Error(String(props.message ?? "x")), props);
    expect(isTransient(err({ code: "ECONNREFUSED" }))).toBe(true);
    expect(isTransient(err({ code: "ECONNRESET" }))).toBe(true);
    expect(isTransient(err({ level: "client-timeout", message: "Timed out while waiting for handshake" }))).toBe(true);
    expect(isTransient(err({ message: "Connection lost before handshake" }))).toBe(true);
    expect(isTransient(err({ level: "client-authentication", message: "All configured authentication methods failed" }))).toBe(false);
    expect(isTransient(new HostKeyMismatchError("n", "h:22", "SHA256:a", "SHA256:b", KEY))).toBe(false);
    expect(isTransient(new SshAuthError("n", "h:22", "root", "x"))).toBe(false);
    expect(isTransient(err({ code: "ENOTFOUND" }))).toBe(false);
  });
});
