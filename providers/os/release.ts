// Is the host the OS the stack says it is? The package and service commands are chosen from
// the configured family and init system (configurer.ts), so a host running another OS would get
// `emerge` on Debian or `systemctl` without systemd, failing midway with a cryptic "not found".
// SshHost checks this before anything touches the host. Pure: the probe's text in, a finding out.
import type { InitSystem, OsFamily } from "../../model/schema";

/** model/schema's OS_FAMILIES, not imported: the provider process should not load zod (a unit test keeps them equal) */
export const OS_FAMILIES: readonly OsFamily[] = ["gentoo", "debian", "ubuntu"];

/** What the probe prints: os-release, then one marker line per init system found running. */
export const OS_PROBE =
  "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null; " +
  "[ -d /run/systemd/system ] && echo K8SBM_INIT=systemd; [ -d /run/openrc ] && echo K8SBM_INIT=openrc; true";

export interface OsRelease {
  id: string;
  idLike: string[];
  prettyName: string;
  /** init systems seen running (K8SBM_INIT markers) */
  inits: InitSystem[];
}

/** Parses os-release (KEY=value, values optionally quoted) and the probe's init markers. */
export function parseOsRelease(text: string): OsRelease {
  const vars = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2].trim();
    if (/^(["']).*\1$/.test(v)) v = v.slice(1, -1).replace(/\\(["$`\\])/g, "$1");
    vars.set(m[1], v);
  }
  const id = (vars.get("ID") ?? "").toLowerCase();
  return {
    id,
    idLike: (vars.get("ID_LIKE") ?? "").toLowerCase().split(/\s+/).filter(Boolean),
    prettyName: vars.get("PRETTY_NAME") ?? vars.get("NAME") ?? id,
    inits: [...new Set(text.match(/^K8SBM_INIT=(systemd|openrc)$/gm) ?? [])].map((l) => l.split("=")[1] as InitSystem),
  };
}

/** The configured family this os-release belongs to: its ID, else the first ID_LIKE we support. */
export function familyOf(r: OsRelease): OsFamily | undefined {
  return [r.id, ...r.idLike].find((x): x is OsFamily => (OS_FAMILIES as readonly string[]).includes(x));
}

/**
 * Why the host does not match the configured OS, or undefined when it does. A family matches its
 * own ID or a distribution "like" it (ID_LIKE: Raspbian is like debian, Ubuntu is like debian),
 * since the same package commands work there. init "none" matches any host; systemd or openrc
 * must be seen running. `configPath` names the node's config ("nodes[3]").
 */
export function osMismatch(probe: string, family: OsFamily, init: InitSystem, configPath = "nodes[<i>]"): string | undefined {
  const r = parseOsRelease(probe);
  if (!r.id)
    return `the host has no /etc/os-release, so the program cannot confirm it runs ${family} (configured: ${configPath}.os, or os.family)`;
  const like = [r.id, ...r.idLike];
  if (!like.includes(family)) {
    const seen = familyOf(r);
    return (
      `the host runs ${r.prettyName} (ID=${r.id}${r.idLike.length ? `, ID_LIKE=${r.idLike.join(" ")}` : ""}), but the stack configures ` +
      `os ${family} for it (${configPath}.os, or os.family); ` +
      (seen
        ? `set ${configPath}.os to ${seen} (and ${configPath}.init to its init system) if this is the right host`
        : `the program supports ${OS_FAMILIES.join(", ")} only`)
    );
  }
  if (init !== "none" && !r.inits.includes(init))
    return (
      `the stack configures init ${init} for this host (${configPath}.init, or os.init), but ${init} is not running there ` +
      `(${r.inits.length ? `found ${r.inits.join(", ")}` : "found neither systemd nor OpenRC"}); set ${configPath}.init to the host's init system`
    );
  return undefined;
}
