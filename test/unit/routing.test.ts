import {
  IFUP_HOOK_PATH,
  LOCAL_START_PATH,
  ROUTING_SCRIPT_PATH,
  ROUTING_UNIT_PATH,
  confdNetSnippet,
  ifupHook,
  ipCommands,
  policyRoutes,
  policyRoutingScript,
  policyRules,
  routingBootFiles,
  rtTablesConf,
} from "../../render/routing";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseStackConfig } from "../../model/parse";
import { NAMESPACE, devConfigCopy, devSecretKeys, devSpec } from "../fixtures/dev";

const spec = devSpec();
const k1 = spec.nodes[0];

describe("policy routing", () => {
  test("rt_tables drop-in holds the seed's line", () => {
    expect(
      rtTablesConf(spec)
        .split("\n")
        .filter((l) => l && !l.startsWith("#")),
    ).toEqual(["1 vswitch"]);
  });

  test("routes: the seed's four routes on wan1", () => {
    expect(policyRoutes(spec, k1)).toEqual([
      { dest: "10.118.11.0/24", dev: "wan1" },
      { dest: "10.118.11.0/24", dev: "wan1", scope: "link", table: "vswitch" },
      { dest: "10.118.12.0/24", dev: "wan1", scope: "link", table: "vswitch" },
      { dest: "default", dev: "wan1", table: "vswitch", via: "10.118.11.1" },
    ]);
  });

  test("rules: pod subnet via main at 200, shadow subnet via vswitch at 201", () => {
    expect(policyRules(spec)).toEqual([
      { from: "all", to: "10.244.0.0/16", table: "main", priority: 200 },
      { from: "10.118.11.0/24", table: "vswitch", priority: 201 },
    ]);
  });

  test("ip commands", () => {
    expect(ipCommands(spec, k1)).toEqual([
      "ip route replace 10.118.11.0/24 dev wan1",
      "ip route replace 10.118.11.0/24 dev wan1 scope link table vswitch",
      "ip route replace 10.118.12.0/24 dev wan1 scope link table vswitch",
      "ip route replace default via 10.118.11.1 dev wan1 table vswitch",
      "ip rule add from all to 10.244.0.0/16 lookup main priority 200",
      "ip rule add from 10.118.11.0/24 lookup vswitch priority 201",
    ]);
  });

  test("the re-runnable script deletes our rules before adding them and is valid sh", () => {
    const s = policyRoutingScript(spec, k1);
    execFileSync("sh", ["-n"], { input: s });
    expect(s.indexOf("ip rule del priority 201")).toBeLessThan(s.indexOf("ip rule add from 10.118.11.0/24"));
  });

  test("conf.d/net form reads like the seed's routes_wan1", () => {
    const text = confdNetSnippet(spec, k1);
    expect(text).toContain(
      'routes_wan1="\n10.118.11.0/24 dev wan1\n10.118.11.0/24 dev wan1 scope link table vswitch\n10.118.12.0/24 dev wan1 scope link table vswitch\ndefault via 10.118.11.1 table vswitch\n"\n',
    );
  });

  test("uses the node's own wan1 subnet and interface, not hard-coded ones", () => {
    const raw = devConfigCopy();
    raw.nodes = raw.nodes.map((n: any, i: number) => ({ ...n, wan1: { ...n.wan1, interface: "eth1", address: `10.120.0.${20 + i}/20` } }));
    raw.vrrp.controlPlane.vip = "10.120.0.100/20";
    const s = parseStackConfig(NAMESPACE, raw, devSecretKeys);
    expect(policyRoutes(s, s.nodes[0]).map((r) => [r.dest, r.dev])).toEqual([
      ["10.118.11.0/24", "eth1"],
      ["10.118.11.0/24", "eth1"],
      ["10.120.0.0/20", "eth1"],
      ["default", "eth1"],
    ]);
  });

  test("routing disabled: nothing", () => {
    const raw = devConfigCopy();
    raw.routing.enabled = false;
    const s = parseStackConfig(NAMESPACE, raw, devSecretKeys);
    expect(ipCommands(s, s.nodes[0])).toEqual([]);
  });
});

describe("policy routing at boot", () => {
  const node = (os: string, init: string) => ({ ...k1, os, init }) as typeof k1;
  const paths = (os: string, init: string) => routingBootFiles(spec, node(os, init)).map((f) => f.path);

  test("the script, and the hook of what boots the node", () => {
    expect(paths("gentoo", "openrc")).toEqual([ROUTING_SCRIPT_PATH, LOCAL_START_PATH]);
    expect(paths("debian", "systemd")).toEqual([ROUTING_SCRIPT_PATH, IFUP_HOOK_PATH, ROUTING_UNIT_PATH]);
    expect(paths("ubuntu", "none")).toEqual([ROUTING_SCRIPT_PATH, IFUP_HOOK_PATH]);
    expect(routingBootFiles(spec, k1)[0].content).toBe(policyRoutingScript(spec, k1));
    const off = parseStackConfig(NAMESPACE, { ...devConfigCopy(), routing: { enabled: false } }, devSecretKeys);
    expect(routingBootFiles(off, off.nodes[0])).toEqual([]);
  });

  test("the ifupdown hook runs the script for the node's wan1 only (and for --all)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-ifup-"));
    try {
      const hook = ifupHook(k1).replace(ROUTING_SCRIPT_PATH, `${dir}/script`);
      fs.writeFileSync(`${dir}/script`, "echo applied\n");
      const run = (iface: string) => execFileSync("sh", ["-c", hook], { env: { IFACE: iface }, encoding: "utf8" });
      expect(run("wan1")).toBe("applied\n");
      expect(run("--all")).toBe("applied\n");
      expect(run("wan0")).toBe("");
      expect(run("lo")).toBe("");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
