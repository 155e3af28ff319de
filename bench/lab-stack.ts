// Benchmark: the lab stack with 4 and 16 hosts through the real CLI. Prints wall times of the
// first `up`, a no-op `up`, a `preview`, a no-op `up --refresh`, and per host in the no-op runs
// the SSH connections, commands and commands that changed something (the SSH layer's counters,
// K8SBM_SSH_STATS). Usage: npm run bench [-- 4 16]
import * as fs from "fs";
import * as path from "path";
import { down, up } from "../test/lab/lab";
import { LabStack, labStackConfig } from "../test/lab/stack";
import type { HostStats } from "../providers/ssh/types";

const BASE_PORT = 22100;

/** Per host, summed over the provider processes of one CLI run (one event per line). */
function readStats(file: string): Record<string, HostStats> {
  const sum: Record<string, HostStats> = {};
  if (!fs.existsSync(file)) return sum;
  for (const line of fs.readFileSync(file, "utf8").split("\n").filter(Boolean)) {
    const { host, event } = JSON.parse(line) as { host: string; event: keyof HostStats };
    (sum[host] ??= { connections: 0, commands: 0, mutatingCommands: 0 })[event]++;
  }
  fs.rmSync(file, { force: true });
  return sum;
}

function perHost(stats: Record<string, HostStats>, n: number): string {
  const v = Object.values(stats);
  const max = (k: keyof HostStats) => Math.max(0, ...v.map((s) => s[k]));
  const total = (k: keyof HostStats) => v.reduce((a, s) => a + s[k], 0);
  return `hosts contacted ${v.length}/${n}, per host max: connections ${max("connections")}, commands ${max("commands")}, changing commands ${max("mutatingCommands")} (total changing ${total("mutatingCommands")})`;
}

async function bench(n: number): Promise<void> {
  const lab = await up(n, "bench", { basePort: BASE_PORT });
  const statsFile = path.join(lab.stateDir, "ssh-stats.jsonl");
  const stack = new LabStack(labStackConfig({ basePort: BASE_PORT, hosts: n }), { K8SBM_SSH_STATS: statsFile });
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
  const sizes = process.argv.slice(2).map(Number).filter((x) => x > 0);
  for (const n of sizes.length ? sizes : [4, 16]) await bench(n);
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
