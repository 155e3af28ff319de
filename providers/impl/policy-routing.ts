// PolicyRouting: the seed's vswitch table — routes and rules made live with `ip`, probed
// through `ip -j` so only what differs is changed, removed on delete.
import type * as pulumi from "@pulumi/pulumi";
import { shq } from "../ssh/shell";
import type { Host, SshTarget } from "../ssh/types";
import { diffOf, hostOf, type Provider } from "./common";

export interface Route {
  dest: string;
  dev: string;
  scope?: "link";
  via?: string;
  /** numeric table id; absent = main */
  table?: number;
}

export interface Rule {
  from: string;
  to?: string;
  /** numeric table id or "main" */
  table: number | "main";
  priority: number;
}

export interface PolicyRoutingInputs {
  connection: SshTarget;
  routes: Route[];
  rules: Rule[];
}

const MAIN = 254;
const tableOf = (t: number | "main" | undefined) => (t === undefined || t === "main" ? MAIN : t);
const prefixed = (d: string) => (d === "default" || d.includes("/") ? d : `${d}/32`);

export function routeKey(r: Route): string {
  return [prefixed(r.dest), r.dev, r.via ?? "", tableOf(r.table)].join("|");
}

export function ruleKey(r: Rule): string {
  return [r.priority, prefixed(r.from === "all" ? "0.0.0.0/0" : r.from), prefixed(r.to ?? "0.0.0.0/0"), tableOf(r.table)].join("|");
}

interface IpRoute {
  dst: string;
  dev?: string;
  gateway?: string;
  table?: string | number;
}
interface IpRule {
  priority: number;
  src?: string;
  srclen?: number;
  dst?: string;
  dstlen?: number;
  table?: string;
}

const tableNum = (t: string | number | undefined): number =>
  t === undefined || t === "main" ? MAIN : t === "local" ? 255 : t === "default" ? 253 : Number(t);

export function liveRouteKeys(json: string): Set<string> {
  const routes = JSON.parse(json || "[]") as IpRoute[];
  return new Set(
    routes.map((r) => [prefixed(r.dst === "default" ? "default" : r.dst), r.dev ?? "", r.gateway ?? "", tableNum(r.table)].join("|")),
  );
}

export function liveRuleKeys(json: string): Set<string> {
  const rules = JSON.parse(json || "[]") as IpRule[];
  const cidr = (a: string | undefined, len: number | undefined) => (!a || a === "all" ? "0.0.0.0/0" : `${a}/${len ?? 32}`);
  return new Set(rules.map((r) => [r.priority, cidr(r.src, r.srclen), cidr(r.dst, r.dstlen), tableNum(r.table)].join("|")));
}

export function routeArgs(r: Route): string {
  return [r.dest, r.via ? `via ${r.via}` : "", `dev ${r.dev}`, r.scope ? `scope ${r.scope}` : "", r.table ? `table ${r.table}` : ""]
    .filter(Boolean)
    .join(" ");
}

export function ruleArgs(r: Rule): string {
  return [`from ${r.from}`, r.to ? `to ${r.to}` : "", `lookup ${r.table}`, `priority ${r.priority}`].filter(Boolean).join(" ");
}

/** Commands that add what is missing. Exported for planning tests. */
export function planRouting(want: { routes: Route[]; rules: Rule[] }, routes: Set<string>, rules: Set<string>): string[] {
  return [
    ...want.routes.filter((r) => !routes.has(routeKey(r))).map((r) => `ip -4 route replace ${routeArgs(r)}`),
    // another rule at our priority would shadow ours: replace it
    ...want.rules
      .filter((r) => !rules.has(ruleKey(r)))
      .map((r) => `{ ip -4 rule del priority ${r.priority} 2>/dev/null; ip -4 rule add ${ruleArgs(r)}; }`),
  ];
}

// -N: table ids, not names from rt_tables (which we may have just written)
const PROBE = `ip -N -j -4 route show table all; echo; echo '@@'; ip -N -j -4 rule show`;

async function probe(host: Host): Promise<{ routes: Set<string>; rules: Set<string> }> {
  const [routes, rules] = (await host.exec(PROBE)).stdout.split("@@");
  return { routes: liveRouteKeys(routes.trim()), rules: liveRuleKeys(rules.trim()) };
}

async function apply(inputs: PolicyRoutingInputs): Promise<void> {
  const host = await hostOf(inputs.connection);
  const live = await probe(host);
  const cmds = planRouting(inputs, live.routes, live.rules);
  if (cmds.length) await host.exec(cmds.join(" && "), { mutates: true });
}

export const provider: Provider<PolicyRoutingInputs, PolicyRoutingInputs> = {
  async create(inputs: PolicyRoutingInputs) {
    await apply(inputs);
    return { id: `${inputs.connection.name}:policy-routing`, outs: inputs };
  },
  async diff(_id, olds: PolicyRoutingInputs, news: PolicyRoutingInputs) {
    return diffOf(olds as never, news as never, ["routes", "rules"]);
  },
  // Drift: report only the routes and rules still present.
  async read(id, props: PolicyRoutingInputs) {
    const live = await probe(await hostOf(props.connection));
    return {
      id,
      props: {
        ...props,
        routes: props.routes.filter((r) => live.routes.has(routeKey(r))),
        rules: props.rules.filter((r) => live.rules.has(ruleKey(r))),
      },
    };
  },
  async update(_id, olds: PolicyRoutingInputs, news: PolicyRoutingInputs) {
    const host = await hostOf(news.connection);
    const keepRoutes = new Set(news.routes.map(routeKey));
    const keepRules = new Set(news.rules.map(ruleKey));
    const drop = [
      ...olds.rules.filter((r) => !keepRules.has(ruleKey(r))).map((r) => `ip -4 rule del ${ruleArgs(r)} 2>/dev/null || true`),
      ...olds.routes.filter((r) => !keepRoutes.has(routeKey(r))).map((r) => `ip -4 route del ${routeArgs(r)} 2>/dev/null || true`),
    ];
    if (drop.length) await host.exec(drop.join("; "), { mutates: true });
    await apply(news);
    return { outs: news };
  },
  async delete(_id, props: PolicyRoutingInputs) {
    const host = await hostOf(props.connection);
    const cmds = [
      ...props.rules.map((r) => `ip -4 rule del ${ruleArgs(r)} 2>/dev/null || true`),
      ...props.routes.map((r) => `ip -4 route del ${routeArgs(r)} 2>/dev/null || true`),
    ];
    await host.exec(cmds.join("; "), { mutates: true });
  },
};
