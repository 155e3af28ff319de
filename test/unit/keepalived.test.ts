import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { planVrrp, type NodeVrrpPlan } from "../../plan/vrrp";
import {
  APISERVER_MANIFEST,
  bootstrapsVip,
  checkApiserverScript,
  keepalivedConf,
  keepalivedOptions,
  type KeepalivedOptions,
} from "../../render/keepalived";
import { devSpec, devVrrpPassword } from "../fixtures/dev";

/** A temporary directory, removed when the file's tests are done. */
const tmpDirs: string[] = [];
const tmpDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "chk-"));
  tmpDirs.push(d);
  return d;
};
afterAll(() => tmpDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

// ---- a tiny keepalived.conf parser: blocks `name args {`, statements `name args`, comments # ! ----
interface KNode {
  keyword: string;
  args: string[];
  children?: KNode[];
}

function parseKeepalived(src: string): KNode[] {
  const root: KNode = { keyword: "(root)", args: [], children: [] };
  const stack = [root];
  for (const raw of src.split("\n")) {
    const line = raw.replace(/[#!].*$/, "").trim();
    if (!line) continue;
    if (line === "}") {
      stack.pop();
      if (!stack.length) throw new Error("unbalanced }");
      continue;
    }
    const opens = line.endsWith("{");
    const words = (opens ? line.slice(0, -1) : line).trim().split(/\s+/);
    const node: KNode = { keyword: words[0], args: words.slice(1) };
    stack[stack.length - 1].children!.push(node);
    if (opens) {
      node.children = [];
      stack.push(node);
    }
  }
  if (stack.length !== 1) throw new Error("unclosed block");
  return root.children!;
}

const child = (n: KNode, kw: string) => n.children!.find((c) => c.keyword === kw);
const value = (n: KNode, kw: string) => child(n, kw)?.args.join(" ");
const instances = (conf: KNode[]) => conf.filter((n) => n.keyword === "vrrp_instance");

const spec = devSpec();
const plans = planVrrp(spec);
const opts = keepalivedOptions(spec, devVrrpPassword);
const planOf = (name: string): NodeVrrpPlan => plans.find((p) => p.node === name)!;
const parsed = (name: string, o: KeepalivedOptions = opts) => parseKeepalived(keepalivedConf(planOf(name), o));

describe("keepalived.conf for the dev stack", () => {
  test("only k8s-1..3 run keepalived (k8s-4 is a plain worker)", () => {
    expect(plans.map((p) => p.node)).toEqual(["k8s-1", "k8s-2", "k8s-3"]);
  });

  test("external VIP priorities follow the seed's rotation table", () => {
    const table: Record<string, Record<string, number>> = {};
    for (const name of ["k8s-1", "k8s-2", "k8s-3"])
      table[name] = Object.fromEntries(
        instances(parsed(name))
          .filter((i) => i.args[0].startsWith("wan_"))
          .map((i) => [child(i, "virtual_ipaddress")!.children![0].keyword, Number(value(i, "priority"))]),
      );
    expect(table).toEqual({
      "k8s-1": { "10.118.11.20": 100, "10.118.11.21": 99, "10.118.11.22": 98 },
      "k8s-2": { "10.118.11.20": 98, "10.118.11.21": 100, "10.118.11.22": 99 },
      "k8s-3": { "10.118.11.20": 99, "10.118.11.21": 98, "10.118.11.22": 100 },
    });
  });

  // The seed had 100/99/99; the tie made the failover target a race, so succession is 100/99/89
  // (successionStep 10: a skew-time gap of 39 ms, not 3.9 ms, between the next two candidates).
  test("router ids: wan_0..2 = 1..3 on every node, control_plane = 5 with priorities 100/99/89", () => {
    for (const [name, cpPrio] of [
      ["k8s-1", 100],
      ["k8s-2", 99],
      ["k8s-3", 89],
    ] as const) {
      const ids = Object.fromEntries(instances(parsed(name)).map((i) => [i.args[0], Number(value(i, "virtual_router_id"))]));
      expect(ids).toEqual({ control_plane: 5, wan_0: 1, wan_1: 2, wan_2: 3 });
      const cp = instances(parsed(name)).find((i) => i.args[0] === "control_plane")!;
      expect(Number(value(cp, "priority"))).toBe(cpPrio);
      expect(child(cp, "virtual_ipaddress")!.children!.map((c) => c.keyword)).toEqual(["10.118.12.100/24"]);
    }
  });

  test("instances are listed in the seed's order (by rank): k8s-2 lists wan_1, wan_2, wan_0", () => {
    expect(instances(parsed("k8s-2")).map((i) => i.args[0])).toEqual(["control_plane", "wan_1", "wan_2", "wan_0"]);
  });

  test("every instance is the seed's block: BACKUP on wan1, advert_int 1, AH with the password", () => {
    for (const name of ["k8s-1", "k8s-2", "k8s-3"])
      for (const i of instances(parsed(name))) {
        expect(value(i, "state")).toBe("BACKUP");
        expect(value(i, "interface")).toBe("wan1");
        expect(value(i, "advert_int")).toBe("1");
        const auth = child(i, "authentication")!;
        expect(value(auth, "auth_type")).toBe("AH");
        expect(value(auth, "auth_pass")).toBe("somepass");
        expect(child(i, "unicast_peer")).toBeUndefined();
      }
  });

  test("global_defs: router_id = node name, script security on, the check runs as keepalived_script", () => {
    const g = parsed("k8s-3").find((n) => n.keyword === "global_defs")!;
    expect(value(g, "router_id")).toBe("k8s-3");
    expect(child(g, "enable_script_security")).toBeDefined();
    expect(value(g, "script_user")).toBe("keepalived_script");
  });

  test("no script, no script_user", () => {
    const conf = keepalivedConf(planOf("k8s-1"), { ...opts, healthCheck: { ...opts.healthCheck, enabled: false } });
    expect(conf).not.toContain("script_user");
    expect(conf).toContain("enable_script_security");
  });

  test("only control_plane tracks the apiserver check", () => {
    const conf = parsed("k8s-1");
    const script = conf.find((n) => n.keyword === "vrrp_script")!;
    expect(script.args).toEqual(["chk_apiserver"]);
    expect(value(script, "script")).toBe('"/etc/keepalived/check-apiserver.sh"');
    expect([value(script, "interval"), value(script, "timeout"), value(script, "fall"), value(script, "rise")]).toEqual([
      "1",
      "1",
      "3",
      "2",
    ]);
    for (const i of instances(conf))
      expect(child(i, "track_script")?.children?.map((c) => c.keyword)).toEqual(
        i.args[0] === "control_plane" ? ["chk_apiserver"] : undefined,
      );
  });
});

describe("keepalived.conf options", () => {
  test("authType none: no authentication block, no password needed", () => {
    for (const i of instances(parsed("k8s-1", { ...opts, authType: "none", password: undefined })))
      expect(child(i, "authentication")).toBeUndefined();
  });

  test("PASS is rendered as auth_type PASS", () => {
    const i = instances(parsed("k8s-1", { ...opts, authType: "PASS" }))[0];
    expect(value(child(i, "authentication")!, "auth_type")).toBe("PASS");
  });

  test("unicast: source = own wan1 address, peers = the other holders, sorted", () => {
    const conf = parsed("k8s-2", { ...opts, unicast: true });
    for (const i of instances(conf)) {
      expect(value(i, "unicast_src_ip")).toBe("10.118.12.21");
      expect(child(i, "unicast_peer")!.children!.map((c) => c.keyword)).toEqual(["10.118.12.20", "10.118.12.22"]);
    }
  });

  test("unicast: adverts from a source that is not a peer are dropped (vrrp_check_unicast_src)", () => {
    const globals = (conf: KNode[]) => conf.find((n) => n.keyword === "global_defs")!;
    expect(child(globals(parsed("k8s-2", { ...opts, unicast: true })), "vrrp_check_unicast_src")).toBeDefined();
    // multicast has no peer list to check against
    expect(child(globals(parsed("k8s-2", opts)), "vrrp_check_unicast_src")).toBeUndefined();
  });

  test("preemption: the API VIP is not taken back (nopreempt); external IPs after preempt_delay", () => {
    const conf = instances(parsed("k8s-1", opts));
    const cp = conf.find((i) => i.args?.[0] === "control_plane")!;
    expect(child(cp, "nopreempt")).toBeDefined();
    expect(value(cp, "preempt_delay")).toBeUndefined();
    for (const i of conf.filter((x) => x !== cp)) {
      expect(child(i, "nopreempt")).toBeUndefined();
      expect(value(i, "preempt_delay")).toBe("30");
    }
  });

  test("preemption as in the seed: preempt on, no delay", () => {
    const conf = instances(parsed("k8s-1", { ...opts, controlPlanePreempt: true, externalPreemptDelay: 0 }));
    for (const i of conf) {
      expect(child(i, "nopreempt")).toBeUndefined();
      expect(value(i, "preempt_delay")).toBeUndefined();
    }
  });

  test("health check disabled: no vrrp_script, no track_script", () => {
    const conf = parsed("k8s-1", { ...opts, healthCheck: { ...opts.healthCheck, enabled: false } });
    expect(conf.find((n) => n.keyword === "vrrp_script")).toBeUndefined();
    for (const i of instances(conf)) expect(child(i, "track_script")).toBeUndefined();
  });

  test("a missing password is an error when authentication is on", () => {
    expect(() => keepalivedConf(planOf("k8s-1"), { ...opts, password: undefined })).toThrow(/vrrpPassword is required/);
  });

  test.each(["two words", "has#hash", "bang!", 'quo"te', ""])("a password keepalived would misread is rejected: %j", (pw) => {
    expect(() => keepalivedConf(planOf("k8s-1"), { ...opts, password: pw })).toThrow(/vrrpPassword/);
  });

  test("output is deterministic and ends with one newline", () => {
    const a = keepalivedConf(planOf("k8s-1"), opts);
    expect(keepalivedConf(planOf("k8s-1"), opts)).toBe(a);
    expect(a.endsWith("}\n")).toBe(true);
    expect(a.startsWith("# Managed by k8s-baremetal (Pulumi). Local edits are reverted.\n")).toBe(true);
  });
});

describe("check-apiserver.sh", () => {
  const node = spec.nodes[0];
  const script = checkApiserverScript(node, 6443, 2);

  test("probes the node's own wan1 address /readyz with the timeout, wget as fallback", () => {
    expect(script).toContain('url="https://10.118.12.20:6443/readyz"');
    expect(script).toContain("curl -fsk --max-time 2");
    expect(script).toContain("wget -q -T 2");
    expect(script.startsWith("#!/bin/sh\n")).toBe(true);
  });

  test("is valid POSIX sh", () => {
    execFileSync("sh", ["-n"], { input: script });
  });

  test("without an apiserver manifest: the first control plane passes (bootstrap), the others fail", () => {
    const dir = tmpDir();
    const absent = (s: string) => s.replace(APISERVER_MANIFEST, path.join(dir, "absent.yaml"));
    expect(spawnSync("sh", ["-c", absent(script)]).status).toBe(0);
    const other = spawnSync("sh", ["-c", absent(checkApiserverScript(spec.nodes[1], 6443, 2, false))], { encoding: "utf8" });
    expect(other.status).toBe(1);
    expect(other.stderr).toContain("check-apiserver: no ");
    // which nodes bootstrap: the first control plane of a kubeadm stack; every one without kubeadm
    expect(spec.controlPlanes.map((n) => bootstrapsVip(spec, n))).toEqual([true, false, false]);
    const keepalivedOnly = { ...spec, config: { ...spec.config, layers: { ...spec.config.layers, kubernetes: false } } };
    expect(spec.controlPlanes.map((n) => bootstrapsVip(keepalivedOnly, n))).toEqual([true, true, true]);
  });

  // keepalived runs it as keepalived_script: a 0700 directory (kubeadm's mode) hides the manifest
  const asNobody = process.getuid?.() === 0 ? test : test.skip;
  asNobody("fails, not passes, when its user cannot search the manifest's directory", () => {
    const dir = tmpDir();
    fs.chmodSync(dir, 0o755);
    fs.mkdirSync(path.join(dir, "manifests"), { mode: 0o700 });
    const manifest = path.join(dir, "manifests", "kube-apiserver.yaml");
    fs.writeFileSync(manifest, "");
    const s = script.replace(APISERVER_MANIFEST, manifest).replace("10.118.12.20", "127.0.0.1");
    const r = spawnSync("sh", ["-c", s], { uid: 65534, gid: 65534, encoding: "utf8", timeout: 20000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`cannot search ${path.join(dir, "manifests")}`);
    // searchable (what the program grants): the script goes on to probe the apiserver
    fs.chmodSync(path.join(dir, "manifests"), 0o711);
    const probed = spawnSync("sh", ["-c", s.replace(":6443/", ":1/")], { uid: 65534, gid: 65534, encoding: "utf8", timeout: 20000 });
    expect(probed.stderr).not.toContain("cannot search");
    expect(probed.status).not.toBe(0); // nothing answers on port 1
  });

  test("fails when the manifest exists and the apiserver does not answer", () => {
    const dir = tmpDir();
    const manifest = path.join(dir, "kube-apiserver.yaml");
    fs.writeFileSync(manifest, "");
    const s = checkApiserverScript(node, 1, 1).replace(APISERVER_MANIFEST, manifest).replace("10.118.12.20", "127.0.0.1");
    expect(spawnSync("sh", ["-c", s], { timeout: 20000 }).status).not.toBe(0);
  });
});

describe("VRRP version", () => {
  test("VRRPv3 without authentication (sub-second adverts possible); v2 with AH/PASS", () => {
    const v3 = keepalivedConf(planOf("k8s-1"), { ...opts, authType: "none", password: undefined, advertInt: 0.5 });
    expect(v3).toMatch(/^ {4}vrrp_version 3$/m);
    expect(v3).toMatch(/^ {4}advert_int 0\.5$/m);
    expect(keepalivedConf(planOf("k8s-1"), opts)).not.toContain("vrrp_version");
  });
});
