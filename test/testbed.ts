// Jest helpers for tests that need the lab (real namespaces + sshd).
// Rule: when the lab cannot run here, say why and skip — except under CI=true, where that is
// a test failure.
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import { closeAll } from "../providers/ssh";
import { down, up, type TestbedState, type UpOptions } from "../testbed";

let cached: { ok: true } | { ok: false; reason: string } | undefined;

const PATH_ENV = `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ""}`;

function probe(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== "linux") return { ok: false, reason: `needs Linux (this is ${process.platform})` };
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return { ok: false, reason: "needs root" };
  try {
    if (!/\boverlay\b/.test(fs.readFileSync("/proc/filesystems", "utf8"))) return { ok: false, reason: "overlayfs is not available" };
  } catch {
    return { ok: false, reason: "cannot read /proc/filesystems" };
  }
  const env = { ...process.env, PATH: PATH_ENV };
  const ns = `k8sbm.probe.${process.pid}`;
  try {
    execFileSync("ip", ["netns", "add", ns], { env, stdio: "pipe" });
    execFileSync("ip", ["netns", "del", ns], { env, stdio: "pipe" });
  } catch (e) {
    return {
      ok: false,
      reason: `cannot create network namespaces (ip netns add): ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`,
    };
  }
  try {
    execFileSync("unshare", ["-m", "-u", "-p", "-f", "true"], { env, stdio: "pipe" });
  } catch (e) {
    return {
      ok: false,
      reason: `cannot create mount/UTS/PID namespaces (unshare): ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`,
    };
  }
  return { ok: true };
}

/** Whether lab tests can run on this machine (cached per process). */
export function testbedAvailable(): { ok: true } | { ok: false; reason: string } {
  return (cached ??= probe());
}

export function isCI(): boolean {
  return /^(true|1)$/i.test(process.env.CI ?? "");
}

/** `describe` for lab tests: skips with a clear message when the lab can't run, fails under CI=true. */
export function describeTestbed(name: string, fn: () => void): void {
  const a = testbedAvailable();
  if (a.ok) {
    describe(name, fn);
    return;
  }
  if (isCI()) {
    describe(name, () => {
      test("the lab can run here (required under CI=true)", () => {
        throw new Error(`lab tests cannot run: ${a.reason}`);
      });
    });
    return;
  }
  // eslint-disable-next-line no-console
  console.warn(
    `SKIPPED lab tests "${name}": ${a.reason}. Lab tests need Linux, root, ip netns, unshare and overlayfs; under CI=true this fails.`,
  );
  describe.skip(name, fn);
}

/**
 * Brings a lab up in beforeAll and tears it down in afterAll (also closing pooled SSH
 * connections). Call inside describeTestbed; use the returned getter in tests.
 */
export function useTestbed(lab: string, n: number, opts: UpOptions = {}): () => TestbedState {
  let st: TestbedState | undefined;
  beforeAll(async () => {
    st = await up(n, lab, opts);
  }, 180_000);
  afterAll(async () => {
    closeAll();
    await down(lab);
  }, 120_000);
  return () => {
    if (!st) throw new Error(`lab ${lab} is not up (beforeAll failed?)`);
    return st;
  };
}

// libvirt, qemu and the ISO tool come from Debian packages installed before any lab exists
// (.ci/run): without them say so and skip — under CI=true, fail.
const LIBVIRT_TOOLS = ["libvirtd", "virtlogd", "virsh", "qemu-system-x86_64", "qemu-img", "genisoimage", "dnsmasq", "busybox", "dpkg-deb"];

/** describeTestbed for suites that run a real libvirtd in a lab host. */
export function describeLibvirt(name: string, fn: () => void): void {
  const missing = LIBVIRT_TOOLS.filter((c) => spawnSync("sh", ["-c", `PATH=${PATH_ENV} command -v ${c}`]).status !== 0);
  if (!missing.length) return describeTestbed(name, fn);
  const reason = `needs ${missing.join(", ")} (Debian: libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils genisoimage dnsmasq-base busybox-static; see .ci/run)`;
  if (isCI())
    return describe(name, () =>
      test("libvirt and qemu are installed (required under CI=true)", () => {
        throw new Error(reason);
      }),
    );
  // eslint-disable-next-line no-console
  console.warn(`SKIPPED "${name}": ${reason}`);
  describe.skip(name, fn);
}
