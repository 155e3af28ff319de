// The cilium residue a reset removes (ciliumCleanupCommand), run for real in a network namespace
// set up as an agent leaves a node: its links, a pod's veth, its direct route to another node's
// pod CIDR (proto kernel with a gateway) and its iptables chain — beside an operator's route,
// link and rule that must stay.
import { execFileSync } from "child_process";
import { describeTestbed } from "../testbed";
import { ciliumCleanupCommand } from "../../providers/impl/kubeadm-commands";

const NS = `k8sbm-cilclean-${process.pid}`;
const ip = (...a: string[]) => execFileSync("ip", ["-n", NS, ...a], { encoding: "utf8" });
const inNs = (cmd: string) => execFileSync("ip", ["netns", "exec", NS, "sh", "-c", cmd], { encoding: "utf8" });

describeTestbed("cilium cleanup on reset", () => {
  beforeAll(() => {
    execFileSync("ip", ["netns", "add", NS]);
    ip("link", "add", "wan1", "type", "veth", "peer", "name", "peer1");
    ip("addr", "add", "10.118.12.20/24", "dev", "wan1");
    for (const l of ["wan1", "peer1"]) ip("link", "set", l, "up");
    ip("link", "add", "cilium_host", "type", "veth", "peer", "name", "cilium_net");
    ip("link", "add", "lxc0f3a", "type", "veth", "peer", "name", "eth9");
    ip("route", "add", "10.244.1.0/24", "via", "10.118.12.21", "dev", "wan1", "proto", "kernel");
    ip("route", "add", "192.0.2.0/24", "via", "10.118.12.1", "dev", "wan1"); // the operator's
    inNs(
      "iptables-legacy -N CILIUM_INPUT && iptables-legacy -A INPUT -j CILIUM_INPUT && iptables-legacy -A INPUT -p tcp --dport 22 -j ACCEPT",
    );
  });
  afterAll(() => execFileSync("ip", ["netns", "del", NS]));

  test("removes cilium's links, routes and chains; keeps the rest", () => {
    inNs(ciliumCleanupCommand);
    const links = ip("-o", "link", "show");
    expect(links).not.toMatch(/cilium_|lxc/);
    expect(links).toMatch(/wan1@peer1/);
    const routes = ip("-4", "route", "show");
    expect(routes).not.toContain("10.244.1.0/24");
    expect(routes).toContain("192.0.2.0/24 via 10.118.12.1");
    expect(routes).toContain("10.118.12.0/24 dev wan1 proto kernel");
    const rules = inNs("iptables-legacy-save");
    expect(rules).not.toContain("CILIUM");
    expect(rules).toContain("--dport 22 -j ACCEPT");
    // a second run finds nothing to do and still succeeds
    inNs(ciliumCleanupCommand);
  });
});
