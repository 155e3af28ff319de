// Benchmark: the cluster lifecycle on a live testbed cluster (`testbed up --kube`: our builds of
// containerd, kubelet, etcd and the control plane) through the real CLI. Prints wall times of
// the first `up` (init + 2 control-plane joins + 1 worker), a no-op `up`, a `preview`, adding a
// worker, replacing the first control plane, and `destroy`, with the SSH layer's per-host
// counters for the no-op run and where the no-op `up` and `preview` spend their time
// (bench/timing.ts). Usage: npm run bench:cluster
import * as fs from "fs";
import * as path from "path";
import { down, up, type TestbedState } from "../testbed";
import { LIVE_CLUSTER, TestbedStack, testbedStackConfig } from "../testbed/stack";
import { perHost, readStats } from "./ssh-stats";
import { timed, timedTable, timingEnv } from "./timing";

const LAB = "bench-cluster";
const BASE_PORT = 22140;
const CP = ["control-plane", "balancer"];

function nodes(lab: TestbedState, spec: [number, string[]][]) {
  return spec.map(([i, roles]) => {
    const h = lab.hosts[i - 1];
    return {
      name: h.name,
      roles,
      ssh: { host: "127.0.0.1", port: h.ssh.port, hostKey: h.hostKey },
      wan0: { interface: "wan0", address: h.ifaces.wan0.cidr },
      wan1: { interface: "wan1", address: h.ifaces.wan1.cidr },
    };
  });
}

function setNodes(stack: TestbedStack, list: ReturnType<typeof nodes>): void {
  stack.editConfig((c) => (c.nodes = list));
}

async function main(): Promise<void> {
  const lab = await up(6, LAB, { basePort: BASE_PORT, kube: true });
  const stats = path.join(lab.stateDir, "ssh-stats.jsonl");
  const timing = path.join(lab.stateDir, "timing.jsonl");
  const stack = new TestbedStack(
    testbedStackConfig({
      basePort: BASE_PORT,
      extra: LIVE_CLUSTER,
    }),
    { K8SBM_SSH_STATS: stats, ...timingEnv(timing) },
  );
  const row = (what: string, seconds: number, extra = "") =>
    console.log(`${what.padEnd(44)} ${seconds.toFixed(1).padStart(6)} s  ${extra}`);
  try {
    setNodes(
      stack,
      nodes(lab, [
        [1, CP],
        [2, CP],
        [3, CP],
        [4, ["worker"]],
      ]),
    );
    stack.init(lab, "benchpw1", { hostKeys: false });
    row("first up (init, 2 control-plane joins, worker)", stack.run(["up", "--yes", "--skip-preview"]).seconds);
    fs.rmSync(stats, { force: true });
    const noop = timed(timing, () => stack.run(["up", "--yes", "--skip-preview"]));
    row("no-op up", noop.seconds, perHost(readStats(stats)));
    const preview = timed(timing, () => stack.run(["preview", "--expect-no-changes"]));
    row("preview", preview.seconds);
    console.log(`\n${timedTable(["live cluster no-op up", "live cluster preview"], [noop, preview])}\n`);
    setNodes(
      stack,
      nodes(lab, [
        [1, CP],
        [2, CP],
        [3, CP],
        [4, ["worker"]],
        [6, ["worker"]],
      ]),
    );
    row("add a worker", stack.run(["up", "--yes", "--skip-preview"]).seconds);
    setNodes(
      stack,
      nodes(lab, [
        [2, CP],
        [3, CP],
        [5, CP],
        [4, ["worker"]],
        [6, ["worker"]],
      ]),
    );
    row("replace the first control plane", stack.run(["up", "--yes", "--skip-preview"]).seconds);
    row("destroy", stack.run(["destroy", "--yes", "--skip-preview"]).seconds);
  } finally {
    stack.remove();
    await down(LAB);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
