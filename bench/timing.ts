// Where one CLI run's time goes, from the events its processes append to K8SBM_TIMING:
// scripts/pulumi and the language host (tools/pulumi-language-nodejs) mark their start, and
// every Node.js process of the run loads bench/timing-preload.js (NODE_OPTIONS), which marks
// process starts and exits, package and program loads, TypeScript compilation, closure
// serialisation, provider method calls and SSH connects and commands.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export interface TimingEvent {
  /** epoch milliseconds */
  t: number;
  pid: number;
  proc: string;
  ev: string;
  [k: string]: unknown;
}

/** The events of one run; the file is consumed. */
export function readTiming(file: string): TimingEvent[] {
  if (!fs.existsSync(file)) return [];
  const evs = fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TimingEvent)
    .sort((a, b) => a.t - b.t);
  fs.rmSync(file, { force: true });
  return evs;
}

export interface Row {
  phase: string;
  /** milliseconds on the run's critical path (undefined: a detail that overlaps other rows) */
  ms?: number;
  note?: string;
}

const num = (v: unknown) => (typeof v === "number" ? v : 0);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const avg = (xs: number[]) => (xs.length ? sum(xs) / xs.length : 0);

/**
 * The breakdown of one run that started (bench side) at t0 and ended at t1, epoch ms. The
 * critical-path rows add up to the wall time; the indented rows detail one of them.
 */
export function breakdown(evs: TimingEvent[], t0: number, t1: number): Row[] {
  const find = (proc: string, ev: string) => evs.find((e) => e.proc === proc && e.ev === ev);
  const rows: Row[] = [];
  const script = find("scripts/pulumi", "exec");
  const lang = find("langhost", "start");
  const prog = find("program", "start");
  const progExit = find("program", "exit");
  const entry = evs.find((e) => e.proc === "program" && e.ev === "load" && e.what === "program");
  if (!script || !lang || !prog || !progExit || !entry) {
    rows.push({ phase: "(no timing events: was the run instrumented?)", ms: t1 - t0 });
    return rows;
  }
  const entryStart = entry.t - num(entry.ms);
  rows.push({ phase: "scripts/pulumi (bash, CLI and plugin checks)", ms: script.t - t0 });
  rows.push({ phase: "CLI start (engine: stack, state, secrets) until the language host starts", ms: lang.t - script.t });
  rows.push({ phase: "language host start until the program's node starts", ms: prog.t - lang.t });
  rows.push({ phase: "Node.js + Pulumi run script start (@pulumi/pulumi, inspector hooks)", ms: entryStart - prog.t });
  rows.push({ phase: "program load (compile, modules, top-level registration calls)", ms: num(entry.ms) });
  const progLoads = evs.filter(
    (e) => e.proc === "program" && e.ev === "load" && e.what !== "program" && e.t >= entryStart && e.t <= entry.t,
  );
  // depth: how many watched loads enclose this one (the program's entry is the outermost)
  const top = progLoads.filter((e) => num(e.depth) === 1);
  const tsMs = num(progExit.ts);
  rows.push({ phase: "  TypeScript compile (or cache reads)", note: `${fmt(tsMs)} over ${num(progExit.tsFiles)} files` });
  for (const e of top) rows.push({ phase: `  loading ${String(e.what)}`, note: fmt(num(e.ms)) });
  rows.push({ phase: "registration, engine steps and provider calls, until the program exits", ms: progExit.t - entry.t });

  const providers = [...new Set(evs.filter((e) => e.proc === "provider").map((e) => e.pid))];
  const starts = providers.map((pid) => {
    const s = evs.find((e) => e.pid === pid && e.ev === "start")!;
    const l = evs.find((e) => e.pid === pid && e.ev === "listening");
    return l ? l.t - s.t : NaN;
  });
  const launchers = evs.filter((e) => e.proc === "node-eval" && e.ev === "start");
  const launcherMs = launchers.map((s) => {
    const x = evs.find((e) => e.pid === s.pid && e.ev === "exit");
    return x ? x.t - s.t : NaN;
  });
  rows.push({
    phase: "  dynamic-provider processes",
    note:
      `${providers.length} started, ${starts.map(fmt).join(", ")} each from node start to listening` +
      (launchers.length ? `; plus ${launchers.length} launcher node -e (${launcherMs.map(fmt).join(", ")})` : ""),
  });
  const impl = evs.filter((e) => e.proc === "provider" && e.ev === "load");
  if (impl.length) {
    const implTop = impl.filter((e) => String(e.what).startsWith("impl:"));
    rows.push({
      phase: "  provider code load (providers/impl, ssh2, ts)",
      note: `${implTop.length} modules, ${fmt(sum(implTop.map((e) => num(e.ms))))} in all; provider TS ${fmt(sum(evs.filter((e) => e.proc === "provider" && e.ev === "exit").map((e) => num(e.ts))))}`,
    });
  }
  const rpcs = evs.filter((e) => e.ev === "rpc");
  if (rpcs.length) {
    const by = new Map<string, number[]>();
    for (const r of rpcs) by.set(String(r.method), [...(by.get(String(r.method)) ?? []), num(r.ms)]);
    rows.push({
      phase: "  provider calls",
      note: [...by].map(([m, xs]) => `${xs.length} ${m} (avg ${fmt(avg(xs))}, max ${fmt(Math.max(...xs))})`).join(", "),
    });
    const first = Math.min(...rpcs.map((r) => num(r.t0)));
    const last = Math.max(...rpcs.map((r) => r.t));
    rows.push({ phase: "  first to last provider call", note: fmt(last - first) });
  }
  const conns = evs.filter((e) => e.ev === "ssh-connect").map((e) => num(e.ms));
  const execs = evs.filter((e) => e.ev === "ssh-exec").map((e) => num(e.ms));
  rows.push({
    phase: "  SSH connect + probe",
    note: `${conns.length} connects (avg ${fmt(avg(conns))}, max ${fmt(Math.max(0, ...conns))}), ${execs.length} commands (avg ${fmt(avg(execs))})`,
  });
  const ser = evs.filter((e) => e.ev === "serialize");
  const serSpan = ser.length ? Math.max(...ser.map((e) => e.t)) - Math.min(...ser.map((e) => num(e.t0) || e.t - num(e.ms))) : 0;
  rows.push({
    phase: "  closure serialisation of providers (program)",
    note: `${ser.length} calls, concurrent, over ${fmt(serSpan)} (first start to last end)`,
  });
  rows.push({ phase: "engine finish after the program (snapshot, summary, plugin shutdown)", ms: t1 - progExit.t });
  return rows;
}

/** A text table of several runs' breakdowns side by side (same phases, same order). */
export function table(titles: string[], runs: { rows: Row[]; wall: number; load: number }[]): string {
  const phases: string[] = [];
  for (const r of runs) for (const row of r.rows) if (!phases.includes(row.phase)) phases.push(row.phase);
  const cell = (r: { rows: Row[] }, p: string) => {
    const row = r.rows.find((x) => x.phase === p);
    if (!row) return "";
    return row.ms !== undefined ? fmt(row.ms) : (row.note ?? "");
  };
  const lines = [`| phase | ${titles.join(" | ")} |`, `|---|${titles.map(() => "---").join("|")}|`];
  for (const p of phases) lines.push(`| ${p} | ${runs.map((r) => cell(r, p)).join(" | ")} |`);
  lines.push(`| **wall time** | ${runs.map((r) => `**${fmt(r.wall)}**`).join(" | ")} |`);
  lines.push(`| load (1-min average) at start | ${runs.map((r) => r.load.toFixed(2)).join(" | ")} |`);
  return lines.join("\n");
}

/** The environment that instruments a run: its processes append events to `file` (K8SBM_TIMING). */
export function timingEnv(file: string): Record<string, string> {
  const preload = path.join(__dirname, "timing-preload.js");
  return { K8SBM_TIMING: file, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${preload}`.trim() };
}

/** A run's wall time, the machine's load when it started and its breakdown. */
export interface Timed {
  seconds: number;
  load: number;
  rows: Row[];
}

/** Runs `run` (one CLI command) and adds its load at start and breakdown from `file`'s events. */
export function timed<R extends { seconds: number }>(file: string, run: () => R): R & Timed {
  readTiming(file);
  const load = os.loadavg()[0];
  const t0 = Date.now();
  const r = run();
  return { ...r, load, rows: breakdown(readTiming(file), t0, Date.now()) };
}

/** `table` of timed runs. */
export function timedTable(titles: string[], runs: Timed[]): string {
  return table(
    titles,
    runs.map((m) => ({ rows: m.rows, wall: m.seconds * 1000, load: m.load })),
  );
}
