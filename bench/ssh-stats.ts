// The SSH layer's per-host counters of one CLI run: every provider process appends one JSON
// line per event to K8SBM_SSH_STATS (the engine kills them, so nothing is written at exit).
import * as fs from "fs";
import type { HostStats } from "../providers/ssh/types";

/** Per host, summed over the provider processes of one CLI run; the file is consumed. */
export function readStats(file: string): Record<string, HostStats> {
  const sum: Record<string, HostStats> = {};
  if (!fs.existsSync(file)) return sum;
  for (const line of fs.readFileSync(file, "utf8").split("\n").filter(Boolean)) {
    const { host, event } = JSON.parse(line) as { host: string; event: keyof HostStats };
    (sum[host] ??= { connectAttempts: 0, connections: 0, commands: 0, mutatingCommands: 0 })[event]++;
  }
  fs.rmSync(file, { force: true });
  return sum;
}

/** One line: hosts contacted and the per-host maxima. */
export function perHost(stats: Record<string, HostStats>, n?: number): string {
  const v = Object.values(stats);
  const max = (k: keyof HostStats) => Math.max(0, ...v.map((s) => s[k]));
  const total = (k: keyof HostStats) => v.reduce((a, s) => a + s[k], 0);
  return (
    `${n === undefined ? "" : `hosts contacted ${v.length}/${n}, `}per host max: connections ${max("connections")}, ` +
    `commands ${max("commands")}, changing commands ${max("mutatingCommands")} (total changing ${total("mutatingCommands")})`
  );
}
