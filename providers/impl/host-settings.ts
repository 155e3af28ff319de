// HostSettings: the live kernel state the config files describe — modules loaded, sysctl
// values, mounts. Files make it persistent; this makes it true now. Delete restores what was
// there before (values, mounts, modules the program loaded).
import type * as pulumi from "@pulumi/pulumi";
import { shq } from "../ssh/shell";
import type { Host, SshTarget } from "../ssh/types";
import { diffOf, hostOf, type Provider } from "./common";

export interface Mount {
  source: string;
  target: string;
  fstype: string;
  options: string;
}

export interface HostSettingsInputs {
  connection: SshTarget;
  modules: string[];
  sysctl: Record<string, string>;
  mounts: Mount[];
}

export interface LiveSettings {
  modules: string[];
  sysctl: Record<string, string>;
  mounts: Mount[];
}

export interface HostSettingsOutputs extends HostSettingsInputs {
  /** what was there before the program changed it */
  restore: { sysctl: Record<string, string>; modules: string[]; mounts: string[] };
}

// A module built into the kernel is not in /proc/modules and cannot be modprobed where the
// kernel ships no module tree; what it provides shows it is there.
const BUILTIN_EVIDENCE: Record<string, string> = { br_netfilter: "/proc/sys/net/bridge" };

function builtinProbe(m: string): string {
  const evidence = BUILTIN_EVIDENCE[m] ? ` || [ -e ${shq(BUILTIN_EVIDENCE[m])} ]` : "";
  return `{ [ -d /sys/module/${shq(m)} ] || grep -qs ${shq(`/${m}.ko`)} "/lib/modules/$(uname -r)/modules.builtin"${evidence}; } && echo ${shq(m)}`;
}

// One command reads everything: modules, sysctl values, mount targets.
export function probeCommand(want: HostSettingsInputs): string {
  const keys = Object.keys(want.sysctl);
  return [
    `echo '@modules'; awk '{print $1}' /proc/modules${want.modules.map((m) => `; ${builtinProbe(m)}`).join("")}`,
    `echo '@sysctl'; for k in ${keys.map(shq).join(" ")}; do printf '%s=%s\\n' "$k" "$(sysctl -n "$k" 2>/dev/null)"; done`,
    `echo '@mounts'; awk '{print $2" "$3}' /proc/self/mounts`,
  ].join("; ");
}

export function parseProbe(out: string, want: HostSettingsInputs): LiveSettings {
  const sections = new Map<string, string[]>();
  let cur = "";
  for (const line of out.split("\n")) {
    if (line.startsWith("@")) sections.set((cur = line.slice(1)), []);
    else if (line && cur) sections.get(cur)!.push(line);
  }
  const loaded = new Set(sections.get("modules") ?? []);
  const sysctl = Object.fromEntries(
    (sections.get("sysctl") ?? []).map((l) => [
      l.slice(0, l.indexOf("=")),
      l
        .slice(l.indexOf("=") + 1)
        .replace(/\s+/g, " ")
        .trim(),
    ]),
  );
  const mounted = new Set((sections.get("mounts") ?? []).map((l) => l));
  return {
    modules: want.modules.filter((m) => loaded.has(m) || loaded.has(m.replace(/-/g, "_"))),
    sysctl: Object.fromEntries(Object.keys(want.sysctl).map((k) => [k, sysctl[k] ?? ""])),
    mounts: want.mounts.filter((m) => mounted.has(`${m.target} ${m.fstype}`)),
  };
}

/** The commands that turn `live` into `want`. Exported for planning tests. */
export function planSettings(want: HostSettingsInputs, live: LiveSettings): string[] {
  const cmds: string[] = [];
  for (const m of want.modules) if (!live.modules.includes(m)) cmds.push(`modprobe ${shq(m)}`);
  for (const [k, v] of Object.entries(want.sysctl)) if (live.sysctl[k] !== v) cmds.push(`sysctl -qw ${shq(`${k}=${v}`)}`);
  for (const m of want.mounts)
    if (!live.mounts.some((l) => l.target === m.target))
      cmds.push(`mkdir -p ${shq(m.target)} && mount -t ${shq(m.fstype)} -o ${shq(m.options)} ${shq(m.source)} ${shq(m.target)}`);
  return cmds;
}

async function probe(host: Host, want: HostSettingsInputs): Promise<LiveSettings> {
  return parseProbe((await host.exec(probeCommand(want))).stdout, want);
}

async function apply(host: Host, want: HostSettingsInputs, live: LiveSettings): Promise<void> {
  const cmds = planSettings(want, live);
  if (cmds.length) await host.exec(cmds.join(" && "), { mutates: true });
}

export const provider: Provider<HostSettingsInputs, HostSettingsOutputs> = {
  async create(inputs: HostSettingsInputs) {
    const host = await hostOf(inputs.connection);
    const live = await probe(host, inputs);
    await apply(host, inputs, live);
    const restore = {
      sysctl: Object.fromEntries(Object.entries(live.sysctl).filter(([k, v]) => v !== "" && v !== inputs.sysctl[k])),
      modules: inputs.modules.filter((m) => !live.modules.includes(m)),
      mounts: inputs.mounts.filter((m) => !live.mounts.includes(m)).map((m) => m.target),
    };
    const outs: HostSettingsOutputs = { ...inputs, restore };
    return { id: `${inputs.connection.name}:settings`, outs };
  },
  async diff(_id, olds: HostSettingsOutputs, news: HostSettingsInputs) {
    return diffOf(olds as never, news as never, ["modules", "sysctl", "mounts"]);
  },
  async read(id, props: HostSettingsOutputs) {
    const live = await probe(await hostOf(props.connection), props);
    return { id, props: { ...props, ...live } };
  },
  async update(_id, olds: HostSettingsOutputs, news: HostSettingsInputs) {
    const host = await hostOf(news.connection);
    await apply(host, news, await probe(host, news));
    return { outs: { ...news, restore: olds.restore } };
  },
  async delete(_id, props: HostSettingsOutputs) {
    const host = await hostOf(props.connection);
    const cmds = [
      ...Object.entries(props.restore.sysctl).map(([k, v]) => `sysctl -qw ${shq(`${k}=${v}`)}`),
      ...props.restore.mounts.map((t) => `umount ${shq(t)} 2>/dev/null || true`),
      // best effort: a module something else now uses stays loaded
      ...props.restore.modules.map((m) => `modprobe -r ${shq(m)} 2>/dev/null || true`),
    ];
    if (cmds.length) await host.exec(cmds.join("; "), { mutates: true });
  },
};
