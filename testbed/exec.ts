// Commands inside a testbed host, from the root namespace (no SSH).
import { spawn } from "child_process";
import { testbedEnv } from "./processes";
import { hostOf, load, type TestbedState } from "./state";

export interface HostExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

/**
 * Runs `sh -c cmd` inside a lab host's namespaces (mount/UTS/net/PID and its root), from the
 * root namespace, without SSH. Rejects on non-zero exit unless allowFail. Daemons started
 * here must not keep stdout/stderr open (redirect them).
 */
export function hostExec(
  lab: string | TestbedState,
  host: string,
  cmd: string,
  opts: { stdin?: string | Buffer; allowFail?: boolean; timeoutMs?: number } = {},
): Promise<HostExecResult> {
  const st = typeof lab === "string" ? load(lab) : lab;
  const h = hostOf(st, host);
  return collect(
    "nsenter",
    ["-t", String(h.pids.init), "-m", "-u", "-n", "-p", "-r", "-w", "--", "/bin/sh", "-c", cmd],
    `${host} (testbed ${st.name})`,
    cmd,
    { ...opts, env: testbedEnv(st.name) },
  );
}

/**
 * Runs a lab command to its end, collecting its output; rejects on a non-zero exit (naming
 * `who` and the command) unless allowFail; SIGKILLed after timeoutMs (default 60 s).
 */
export function collect(
  file: string,
  args: string[],
  who: string,
  cmd: string,
  opts: { stdin?: string | Buffer; allowFail?: boolean; timeoutMs?: number; env: NodeJS.ProcessEnv },
): Promise<HostExecResult> {
  return new Promise((resolve, reject) => {
    const c = spawn(file, args, { env: opts.env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout!.on("data", (d: Buffer) => out.push(d));
    c.stderr!.on("data", (d: Buffer) => err.push(d));
    const timer = setTimeout(() => c.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    c.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    c.on("close", (code, sig) => {
      clearTimeout(timer);
      const r = { stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), code: code ?? (sig ? 128 : 1) };
      if (r.code !== 0 && !opts.allowFail) reject(new Error(`${who}: ${JSON.stringify(cmd)} exited ${r.code}: ${r.stderr.trim()}`));
      else resolve(r);
    });
    // a command that exits without reading stdin closes the pipe first: that is not an error
    c.stdin!.on("error", () => undefined);
    c.stdin!.end(opts.stdin ?? "");
  });
}

export async function stopSshd(lab: string | TestbedState, host: string): Promise<void> {
  await hostExec(lab, host, "/usr/local/sbin/k8sbm-lab-sshd stop");
}

export async function startSshd(lab: string | TestbedState, host: string): Promise<void> {
  await hostExec(lab, host, "/usr/local/sbin/k8sbm-lab-sshd start");
}
