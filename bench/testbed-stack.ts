// Benchmark: the testbed stack (host preparation + keepalived + policy routing, no Kubernetes)
// with N hosts through the real CLI. Prints wall times of the first `up`, a no-op `up`, a
// `preview`, a no-op `up --refresh` and a preview that fails on its config; per host in the
// no-op runs the SSH connections, commands and changing commands (the SSH layer's counters,
// K8SBM_SSH_STATS); and for the no-op `up` and `preview` the breakdown of where the time goes
// (bench/timing.ts, from K8SBM_TIMING events). Each figure comes with the machine's load.
//
// Usage: npm run bench [-- 4 16] [--runs N] [--program DIR] [--compat DIR] [--no-breakdown]
//   --runs N       no-op `up` and `preview` N times each (the median run is shown; default 3)
//   --program DIR  run another checkout's program (e.g. the previous commit, for before/after)
//   --compat DIR   first `up` with DIR's program, the rest with this one: the no-op runs must
//                  change nothing (state written by the old program reads the same)
//   --no-breakdown no instrumentation (NODE_OPTIONS preload), plain wall times
//   --up-only      only the first and the no-op `up` (the scale run: npm run bench -- 4 64 --up-only)
//   --jump         every node but the first reached through the first (ssh.jumpHost): the cost
//                  of a bastion, against the same run without it
import * as fs from "fs";
import * as path from "path";
import { down, up } from "../testbed";
import { behindJumpHost, ROOT, TestbedStack, testbedStackConfig } from "../testbed/stack";
import { perHost, readStats } from "./ssh-stats";
import { timed, timedTable, timingEnv, type Timed } from "./timing";

const LAB = "bench";
/** hosts listen on 23101… (the e2e suites and bench:cluster use 220xx-221xx) */
const BASE_PORT = 23100;

interface Opts {
  sizes: number[];
  runs: number;
  program?: string;
  compat?: string;
  instrument: boolean;
  upOnly: boolean;
  jump: boolean;
}

function parse(argv: string[]): Opts {
  const o: Opts = { sizes: [], runs: 3, instrument: true, upOnly: false, jump: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--runs") o.runs = Number(argv[++i]);
    else if (a === "--program") o.program = path.resolve(argv[++i]);
    else if (a === "--compat") o.compat = path.resolve(argv[++i]);
    else if (a === "--no-breakdown") o.instrument = false;
    else if (a === "--up-only") o.upOnly = true;
    else if (a === "--jump") o.jump = true;
    else if (Number(a) > 0) o.sizes.push(Number(a));
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.sizes.length) o.sizes = [4, 16];
  return o;
}

interface Measured extends Timed {
  out: string;
  code: number;
}

const median = <T>(xs: T[], key: (x: T) => number): T => [...xs].sort((a, b) => key(a) - key(b))[Math.floor((xs.length - 1) / 2)];
const s = (x: number) => `${x.toFixed(1)} s`;

async function bench(n: number, o: Opts, summary: string[], breakdowns: { title: string; m: Measured }[]): Promise<void> {
  const lab = await up(n, LAB, { basePort: BASE_PORT });
  const statsFile = path.join(lab.stateDir, "ssh-stats.jsonl");
  const timingFile = path.join(lab.stateDir, "timing.jsonl");
  const env: Record<string, string> = { K8SBM_SSH_STATS: statsFile };
  if (o.instrument) {
    Object.assign(env, timingEnv(timingFile));
  }
  const stack = new TestbedStack(testbedStackConfig({ basePort: BASE_PORT, hosts: n }), env);
  stack.projectDir = o.compat ?? o.program ?? ROOT;
  const measure = (args: string[], allowFail = false): Measured => {
    const m = timed(timingFile, () => stack.run(args, { allowFail }));
    return { ...m, rows: o.instrument ? m.rows : [] };
  };
  try {
    stack.init(lab, "benchpw1");
    if (o.jump) stack.editConfig(behindJumpHost(lab));
    const first = measure(["up", "--yes", "--skip-preview"]);
    readStats(statsFile);
    stack.projectDir = o.program ?? ROOT;

    const noops: Measured[] = [];
    let noopStats = {};
    for (let i = 0; i < o.runs; i++) {
      noops.push(measure(["up", "--yes", "--skip-preview"]));
      noopStats = readStats(statsFile);
    }
    if (o.upOnly) {
      const noop = median(noops, (m) => m.seconds);
      const lines = [
        `## ${n} hosts${o.jump ? " behind a jump host" : ""}, up only${o.program ? ` (program: ${o.program})` : ""}`,
        `first up              ${s(first.seconds)}   (load ${first.load.toFixed(2)})`,
        `no-op up              ${s(noop.seconds)}   (runs: ${noops.map((m) => `${s(m.seconds)} @${m.load.toFixed(1)}`).join(", ")})   ${perHost(noopStats, n)}`,
      ];
      console.log(lines.join("\n"));
      summary.push(...lines);
      if (o.instrument) breakdowns.push({ title: `${n} hosts no-op up`, m: noop });
      stack.run(["destroy", "--yes", "--skip-preview"]);
      return;
    }
    const previews: Measured[] = [];
    for (let i = 0; i < o.runs; i++) {
      previews.push(measure(["preview", "--expect-no-changes"]));
      readStats(statsFile);
    }
    const refresh = measure(["up", "--refresh", "--yes", "--skip-preview"]);
    const refreshStats = readStats(statsFile);

    // a preview that fails on its config: a misspelt top-level key
    const good = fs.readFileSync(stack.configFile, "utf8");
    fs.writeFileSync(stack.configFile, good.replace(/^config:\n/m, "config:\n  k8s-baremetal:vrrpp: {}\n"));
    const bad = measure(["preview"], true);
    fs.writeFileSync(stack.configFile, good);
    if (bad.code === 0 || !/vrrpp/.test(bad.out))
      throw new Error(`the config-error preview did not fail on the bad key:\n${bad.out.slice(-3000)}`);

    const changed = [...noops, refresh].map((m) => /(\d+) (created|updated|deleted|replaced)/.exec(m.out)).find(Boolean);
    const noop = median(noops, (m) => m.seconds);
    const preview = median(previews, (m) => m.seconds);
    const all = (ms: Measured[]) => ms.map((m) => `${s(m.seconds)} @${m.load.toFixed(1)}`).join(", ");
    const lines = [
      `## ${n} hosts${o.jump ? " behind a jump host" : ""}${o.program ? ` (program: ${o.program})` : ""}${o.compat ? ` (first up by ${o.compat})` : ""}`,
      `first up              ${s(first.seconds)}   (load ${first.load.toFixed(2)})`,
      `no-op up              ${s(noop.seconds)}   (runs: ${all(noops)})   ${perHost(noopStats, n)}`,
      `preview               ${s(preview.seconds)}   (runs: ${all(previews)})`,
      `no-op up --refresh    ${s(refresh.seconds)}   (load ${refresh.load.toFixed(2)})   ${perHost(refreshStats, n)}`,
      `config-error preview  ${s(bad.seconds)}   (load ${bad.load.toFixed(2)})`,
      `resources changed by the no-op runs: ${changed ? changed[0] : "none"}`,
    ];
    console.log(lines.join("\n"));
    summary.push(...lines);
    if (o.instrument) {
      breakdowns.push({ title: `${n} hosts no-op up`, m: noop }, { title: `${n} hosts preview`, m: preview });
      console.log(timedTable([`no-op up`, `preview`, `config-error preview`], [noop, preview, bad]));
    }
    stack.run(["destroy", "--yes", "--skip-preview"]);
  } finally {
    stack.remove();
    await down(LAB);
  }
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const summary: string[] = [];
  const breakdowns: { title: string; m: Measured }[] = [];
  for (const n of o.sizes) await bench(n, o, summary, breakdowns);
  if (breakdowns.length) {
    console.log("\n# Where the time goes (median runs)\n");
    console.log(
      timedTable(
        breakdowns.map((b) => b.title),
        breakdowns.map((b) => b.m),
      ),
    );
  }
  const dir = path.join(ROOT, "bench", "results");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `testbed-stack-${new Date().toISOString().replace(/[:.]/g, "-")}.md`);
  fs.writeFileSync(file, summary.join("\n") + "\n");
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
