// Process, namespace and mount helpers of the testbed: run, wait, kill what is ours, unmount.
import { execFileSync, spawn, type SpawnOptions } from "child_process";
import * as fs from "fs";

export const MARKER = "K8SBM_LAB_MEMBER";
export const PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function testbedEnv(lab: string): NodeJS.ProcessEnv {
  return { PATH: PATH_ENV, HOME: "/root", LANG: "C.UTF-8", [MARKER]: lab };
}

export function run(cmd: string, args: string[], opts: { input?: string; allowFail?: boolean } = {}): string {
  try {
    return execFileSync(cmd, args, {
      input: opts.input,
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, PATH: `${PATH_ENV}:${process.env.PATH ?? ""}` },
    });
  } catch (e) {
    if (opts.allowFail) return "";
    const err = e as { stderr?: string; status?: number };
    throw new Error(`${cmd} ${args.join(" ")} failed (${err.status}): ${String(err.stderr ?? "").trim()}`);
  }
}

/** Spawns and waits; resolves with the exit code. */
export function spawnWait(cmd: string, args: string[], opts: SpawnOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, opts);
    c.on("error", reject);
    c.on("exit", (code, sig) => resolve(code ?? (sig ? 128 : 1)));
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

export function readPidFile(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, "utf8").trim());
    return Number.isInteger(n) && n > 1 ? n : undefined;
  } catch {
    return undefined;
  }
}

export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

export function isMember(pid: number, lab: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").includes(`${MARKER}=${lab}`);
  } catch {
    return false;
  }
}

export function ancestors(): Set<number> {
  const out = new Set<number>();
  let pid = process.pid;
  while (pid > 1 && !out.has(pid)) {
    out.add(pid);
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      pid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    } catch {
      break;
    }
  }
  return out;
}

const PF_KTHREAD = 0x00200000;

/**
 * A kernel thread (its stat flags say so). A kworker can show up among a lab namespace's
 * processes while it works for that namespace; no signal ends it, and it is not the lab's.
 */
export function isKernelThread(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[6]) & PF_KTHREAD) !== 0;
  } catch {
    return false;
  }
}

/** SIGKILLs the given PIDs (never this process or its ancestors, nor kernel threads) and waits until they are gone. */
export async function killAll(pids: Iterable<number>): Promise<void> {
  const spare = ancestors();
  const targets = [...new Set(pids)].filter((p) => p > 1 && !spare.has(p) && alive(p) && !isKernelThread(p));
  for (const p of targets) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  // 30 s: a process in uninterruptible I/O dies only when its I/O ends; say which ones stayed
  await waitFor("testbed processes to exit", 30_000, () => (targets.some(alive) ? undefined : true)).catch((e: Error) => {
    throw new Error(`${e.message}; still there: ${targets.filter(alive).map(procSummary).join(", ")}`);
  });
}

/** "pid (comm) state", as /proc shows it */
function procSummary(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return `${pid} ${stat.slice(stat.indexOf("("), stat.lastIndexOf(")") + 1)} ${stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)}`;
  } catch {
    return `${pid}`;
  }
}

export function listNetns(): string[] {
  return run("ip", ["netns", "list"], { allowFail: true })
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0])
    .filter(Boolean);
}

export function netnsPids(ns: string): number[] {
  return run("ip", ["netns", "pids", ns], { allowFail: true }).split(/\s+/).filter(Boolean).map(Number);
}

export function memberPids(lab: string): number[] {
  return fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((p) => isMember(p, lab));
}

/** Lazily unmounts anything still mounted below dir (deepest first) in our mount namespace. */
export function unmountBelow(dir: string): void {
  const prefix = dir.endsWith("/") ? dir : dir + "/";
  const points = fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(prefix)))
    .map((p) => p.replace(/\\040/g, " "))
    .sort((a, b) => b.length - a.length);
  for (const p of points) run("umount", ["-l", p], { allowFail: true });
}

export function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  unmountBelow(dir);
  // --one-file-system: never descend into something mounted below (belt and braces)
  run("rm", ["-rf", "--one-file-system", "--", dir]);
}
