// Benchmark: the testbed stack with 4 and 16 hosts through the real CLI. Prints wall times of the
// first `up`, a no-op `up`, a `preview`, a no-op `up --refresh`, and per host in the no-op runs
// the SSH connections, commands and commands that changed something (the SSH layer's counters,
// K8SBM_SSH_STATS). Usage: npm run bench [-- 4 16]
import * as fs from "fs";
import * as path from "path";
import { down, up } from "../testbed";
import { TestbedStack, testbedStackConfig } from "../testbed/stack";
import { perHost, readStats } from "./ssh-stats";

const BASE_PORT = 22100;

async function bench(n: number): Promise<void> {
  const lab = await up(n, "bench", { basePort: BASE_PORT });
  const statsFile = path.join(lab.stateDir, "ssh-stats.jsonl");
  const stack = new TestbedStack(testbedStackConfig({ basePort: BASE_PORT, hosts: n }), { K8SBM_SSH_STATS: statsFile });
  try {
    stack.init(lab, "benchpw1");
    const first = stack.run(["up", "--yes", "--skip-preview"]);
    readStats(statsFile);
    const noop = stack.run(["up", "--yes", "--skip-preview"]);
    const noopStats = readStats(statsFile);
    const preview = stack.run(["preview", "--expect-no-changes"]);
    readStats(statsFile);
    const refresh = stack.run(["up", "--refresh", "--yes", "--skip-preview"]);
    const refreshStats = readStats(statsFile);
    const changed = /(\d+) (created|updated|deleted|replaced)/.exec(noop.out + refresh.out);
    console.log(`## ${n} hosts`);
    console.log(`first up            ${first.seconds.toFixed(1)} s`);
    console.log(`no-op up            ${noop.seconds.toFixed(1)} s   ${perHost(noopStats, n)}`);
    console.log(`preview             ${preview.seconds.toFixed(1)} s`);
    console.log(`no-op up --refresh  ${refresh.seconds.toFixed(1)} s   ${perHost(refreshStats, n)}`);
    console.log(`resources changed by the no-op runs: ${changed ? changed[0] : "none"}`);
    stack.run(["destroy", "--yes", "--skip-preview"]);
  } finally {
    stack.remove();
    await down("bench");
  }
}

async function main(): Promise<void> {
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((x) => x > 0);
  for (const n of sizes.length ? sizes : [4, 16]) await bench(n);
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
