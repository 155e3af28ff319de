// Benchmark: bare lab hosts to a cluster that carries traffic — `pulumi up` of 3 control planes
// and 1 worker with cilium (its Helm release through the SSH tunnel) on `testbed up --kube
// --cilium` hosts, then every node Ready and every agent healthy — through the real CLI. Prints
// wall times of the lab's start, the first `up`, all nodes Ready, a no-op `up`, a `preview` and
// `destroy`, and where the no-op `up` and `preview` spend their time (bench/timing.ts). The failover figures with cilium come from test/e2e/cilium.test.ts (it prints them).
// Usage: npm run bench:cilium
import * as path from "path";
import { down, hostExec, up } from "../testbed";
import { ciliumImages } from "../testbed/node-image";
import { TestbedStack, liveCilium, seedNodes, testbedStackConfig } from "../testbed/stack";
import { timed, timedTable, timingEnv } from "./timing";

const LAB = "bench-cilium";
const BASE_PORT = 22150;

async function main(): Promise<void> {
  const row = (what: string, seconds: number) => console.log(`${what.padEnd(44)} ${seconds.toFixed(1).padStart(6)} s`);
  const t0 = Date.now();
  const lab = await up(4, LAB, { basePort: BASE_PORT, kube: true, cilium: true });
  row("lab hosts up (images imported at first up)", (Date.now() - t0) / 1000);
  const timing = path.join(lab.stateDir, "timing.jsonl");
  const stack = new TestbedStack(
    testbedStackConfig({
      basePort: BASE_PORT,
      extra: { ...liveCilium(path.join(ciliumImages(), "chart", "cilium")), nodes: seedNodes(lab) },
    }),
    timingEnv(timing),
  );
  try {
    stack.init(lab, "benchpw1", { hostKeys: false });
    const t1 = Date.now();
    row("first up (init, 2 joins, cilium, worker)", stack.run(["up", "--yes", "--skip-preview"]).seconds);
    for (;;) {
      const out = (
        await hostExec(
          lab,
          "k8s-1",
          `kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}'`,
        )
      ).stdout;
      if (out.split("\n").filter((l) => l === "True").length === 4) break;
      if (Date.now() - t1 > 30 * 60_000) throw new Error(`nodes not Ready after 30 min:\n${out}`);
      await new Promise((r) => setTimeout(r, 2000));
    }
    row("bare hosts to 4 nodes Ready with cilium", (Date.now() - t1) / 1000);
    const noop = timed(timing, () => stack.run(["up", "--yes", "--skip-preview"]));
    row("no-op up", noop.seconds);
    const preview = timed(timing, () => stack.run(["preview", "--expect-no-changes"]));
    row("preview", preview.seconds);
    console.log(`\n${timedTable(["live cluster + cilium no-op up", "preview"], [noop, preview])}\n`);
    row("destroy", stack.run(["destroy", "--yes", "--skip-preview", "--run-program"]).seconds);
  } finally {
    stack.remove();
    await down(LAB);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
