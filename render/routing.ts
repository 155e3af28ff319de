// Policy routing for the external VIPs (SPEC §3): replies leave by the path the request came in.
// Pure: data, the `ip` command lines, and the seed's OpenRC /etc/conf.d/net form.
import type { ClusterSpec, NodeSpec } from "../model/model";
import { HASH_HEADER, text } from "./common";

/** iproute2 reads table names from this drop-in directory (the seed appended to /etc/iproute2/rt_tables). */
export const RT_TABLES_PATH = "/etc/iproute2/rt_tables.d/k8s-baremetal.conf";

export interface PolicyRoute {
  /** "10.118.11.0/24" or "default" */
  dest: string;
  dev: string;
  scope?: "link";
  /** table name (from the rt_tables drop-in); absent = main */
  table?: string;
  via?: string;
}

export interface PolicyRule {
  /** "all" or a CIDR */
  from: string;
  to?: string;
  table: string;
  priority: number;
}

/** The rt_tables drop-in: the seed's `1 vswitch` line, in iproute2's drop-in directory. */
export function rtTablesConf(spec: ClusterSpec): string {
  const t = spec.config.routing.table;
  return text([HASH_HEADER, "# The seed's /etc/iproute2/rt_tables line, as a drop-in: names the VIP reply table.", `${t.id} ${t.name}`]);
}

/** The seed's routes on the node's wan1 (its own wan1 subnet, not a hard-coded one). */
export function policyRoutes(spec: ClusterSpec, node: NodeSpec): PolicyRoute[] {
  const r = spec.config.routing;
  if (!r.enabled) return [];
  const dev = node.wan1.interface;
  const table = r.table.name;
  return [
    // the shadow (vSwitch) subnet is on-link on wan1 …
    { dest: r.shadowSubnet, dev },
    // … and the vswitch table knows it, the node subnet, and the vSwitch gateway as default
    { dest: r.shadowSubnet, dev, scope: "link", table },
    { dest: node.wan1.subnet, dev, scope: "link", table },
    { dest: "default", dev, table, via: r.gateway },
  ];
}

/** Rules: pod traffic always uses main; traffic from the external VIPs uses the vswitch table. */
export function policyRules(spec: ClusterSpec): PolicyRule[] {
  const r = spec.config.routing;
  if (!r.enabled) return [];
  return [
    { from: "all", to: spec.config.cluster.podSubnet, table: "main", priority: r.podRulePriority },
    { from: r.shadowSubnet, table: r.table.name, priority: r.shadowRulePriority },
  ];
}

export function routeSpec(r: PolicyRoute, withDev = true): string {
  return [
    r.dest,
    ...(r.via ? ["via", r.via] : []),
    ...(withDev ? ["dev", r.dev] : []),
    ...(r.scope ? ["scope", r.scope] : []),
    ...(r.table ? ["table", r.table] : []),
  ].join(" ");
}

export function ruleSpec(r: PolicyRule): string {
  return [`from ${r.from}`, ...(r.to ? [`to ${r.to}`] : []), `lookup ${r.table}`, `priority ${r.priority}`].join(" ");
}

/**
 * The `ip` commands that apply the routes and rules now. `ip route replace` is idempotent;
 * `ip rule add` is not (a rerun adds a duplicate or fails with "File exists"), so callers
 * that re-apply should run ipRuleDeleteCommands first (see policyRoutingScript).
 */
export function ipCommands(spec: ClusterSpec, node: NodeSpec): string[] {
  return [
    ...policyRoutes(spec, node).map((r) => `ip route replace ${routeSpec(r)}`),
    ...policyRules(spec).map((r) => `ip rule add ${ruleSpec(r)}`),
  ];
}

/** Delete every rule at our priorities (loops: removes duplicates too). For re-apply and destroy. */
export function ipRuleDeleteCommands(spec: ClusterSpec): string[] {
  return policyRules(spec).map((r) => `while ip rule del priority ${r.priority} 2>/dev/null; do :; done`);
}

/** A re-runnable shell script: same result however often it runs. */
export function policyRoutingScript(spec: ClusterSpec, node: NodeSpec): string {
  return text([
    "#!/bin/sh",
    HASH_HEADER,
    `# Policy routing for ${node.name} (the seed's routes_${node.wan1.interface} and rules).`,
    "set -e",
    ...ipRuleDeleteCommands(spec),
    ...ipCommands(spec, node),
  ]);
}

/** Where policyRoutingScript lives on the node: what the boot hooks below run. */
export const ROUTING_SCRIPT_PATH = "/etc/k8s-baremetal/policy-routing.sh";
/** ifupdown (Debian, Ubuntu) runs it for every interface it brings up: at boot and at every ifup. */
export const IFUP_HOOK_PATH = "/etc/network/if-up.d/k8s-baremetal-routing";
/** systemd: a oneshot unit after network-online.target, enabled */
export const ROUTING_UNIT = "k8s-baremetal-routing";
export const ROUTING_UNIT_PATH = `/etc/systemd/system/${ROUTING_UNIT}.service`;
/** OpenRC: the `local` service runs /etc/local.d/*.start at the end of boot */
export const LOCAL_START_PATH = "/etc/local.d/k8s-baremetal-routing.start";

/** ifupdown's hook: re-applies the node's policy routing when its wan1 interface comes up. */
export function ifupHook(node: NodeSpec): string {
  const iface = node.wan1.interface;
  return text([
    "#!/bin/sh",
    HASH_HEADER,
    `# ifupdown runs this for each interface it brings up: ${iface} up (boot, ifup) brings back the policy routing`,
    "# that taking it down removed.",
    `[ "$IFACE" = "${iface}" ] || [ "$IFACE" = "--all" ] || exit 0`,
    `exec /bin/sh ${ROUTING_SCRIPT_PATH}`,
  ]);
}

/** systemd's unit: applies the policy routing once the network is online. */
export function routingUnit(node: NodeSpec): string {
  return text([
    HASH_HEADER,
    "[Unit]",
    `Description=k8s-baremetal policy routing on ${node.wan1.interface} (the VIP reply table and its rules)`,
    "Wants=network-online.target",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    `ExecStart=/bin/sh ${ROUTING_SCRIPT_PATH}`,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
  ]);
}

/** OpenRC's local.d script: applies the policy routing at the end of boot. */
export function localStart(): string {
  return text([
    "#!/bin/sh",
    HASH_HEADER,
    "# OpenRC's local service runs this at boot, after the network.",
    `exec /bin/sh ${ROUTING_SCRIPT_PATH}`,
  ]);
}

/**
 * The files that bring the policy routing back after a reboot (the provider applies it live only):
 * the script, and the hooks of what boots this node — ifupdown's on Debian and Ubuntu (also after
 * an ifdown/ifup), the systemd unit under systemd (ROUTING_UNIT, to be enabled), local.d under
 * OpenRC. With no init system nothing boots: the script is there for whoever brings the host up.
 */
export function routingBootFiles(spec: ClusterSpec, node: NodeSpec): { id: string; path: string; content: string; mode: string }[] {
  if (!spec.config.routing.enabled) return [];
  return [
    { id: "routing-script", path: ROUTING_SCRIPT_PATH, content: policyRoutingScript(spec, node), mode: "0755" },
    ...(node.os !== "gentoo" ? [{ id: "routing-ifup", path: IFUP_HOOK_PATH, content: ifupHook(node), mode: "0755" }] : []),
    ...(node.init === "systemd" ? [{ id: "routing-unit", path: ROUTING_UNIT_PATH, content: routingUnit(node), mode: "0644" }] : []),
    ...(node.init === "openrc" ? [{ id: "routing-local", path: LOCAL_START_PATH, content: localStart(), mode: "0755" }] : []),
  ];
}

/**
 * The seed's OpenRC netifrc form (/etc/conf.d/net), for documentation and goldens. netifrc adds
 * `dev <iface>` to routes with a gateway itself, so the default route reads as in the seed.
 */
export function confdNetSnippet(spec: ClusterSpec, node: NodeSpec): string {
  const iface = node.wan1.interface;
  return text([
    HASH_HEADER,
    `routes_${iface}="`,
    ...policyRoutes(spec, node).map((r) => routeSpec(r, !r.via)),
    '"',
    `rules_${iface}="`,
    ...policyRules(spec).map(ruleSpec),
    '"',
  ]);
}
