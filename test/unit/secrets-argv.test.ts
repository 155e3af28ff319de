// Secrets never in argv, temp files gone on every way out (issue 16).
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as k from "../../providers/impl/kubeadm-commands";
import { uploadCerts } from "../../providers/impl/membership";
import { wrapCommand } from "../../providers/ssh/shell";
import type { ExecOptions, Host } from "../../providers/ssh/types";

const KEY = "0123456789abcdef".repeat(4);

function recordingHost(): Host & { calls: { command: string; opts?: ExecOptions }[] } {
  const calls: { command: string; opts?: ExecOptions }[] = [];
  return {
    name: "k8s-1",
    calls,
    async exec(command, opts) {
      calls.push({ command, opts });
      return { stdout: "", stderr: "", code: 0 };
    },
    readFile: async () => undefined,
    writeFile: async () => undefined,
    forwardOut: async () => {
      throw new Error("unused");
    },
  };
}

describe("the certificate key", () => {
  test("travels on stdin, never in the command line (as root or through sudo)", async () => {
    const h = recordingHost();
    await uploadCerts(h, KEY);
    expect(h.calls).toHaveLength(1);
    const [{ command, opts }] = h.calls;
    expect(opts?.stdin).toBe(`${KEY}\n`);
    for (const user of ["root", "admin"]) expect(wrapCommand(command, user, 60_000)).not.toContain(KEY);
    expect(opts?.redactedAs).not.toContain(KEY);
  });
  test("that is not 64 hex digits is refused before anything runs", async () => {
    const h = recordingHost();
    await expect(uploadCerts(h, "abc'; reboot; '")).rejects.toThrow(/not 64 hex digits/);
    expect(h.calls).toHaveLength(0);
  });
});

describe("temp files", () => {
  // The prelude every temp file gets, run by a real sh; the signal goes to the process group,
  // as `timeout` sends it.
  test.each(["SIGTERM", "SIGHUP", "SIGINT"] as const)("are removed when the command gets %s", async (signal) => {
    const sh = spawn("sh", ["-c", `f=$(mktemp) && ${k.removeOnExit('"$f"')} && echo "$f" && sleep 30`], {
      detached: true,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const file = await new Promise<string>((resolve) => sh.stdout.once("data", (d: Buffer) => resolve(d.toString().trim())));
    expect(fs.existsSync(file)).toBe(true);
    const exited = new Promise((r) => sh.once("exit", r));
    process.kill(-sh.pid!, signal);
    await exited;
    expect(fs.existsSync(file)).toBe(false);
  });
  test("every kubeadm command with a temp kubeconfig uses that prelude", () => {
    for (const c of [k.LOCAL_KUBECONFIG, k.uploadCertsCommand]) {
      expect(c).toContain("trap 'exit 143' TERM");
      expect(c).not.toMatch(/trap '[^']*' EXIT &&(?! trap 'exit 129' HUP)/);
    }
  });
});
