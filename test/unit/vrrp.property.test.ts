// Property tests of the VRRP plan: the seed's rotation, generalised to any balancer/VIP count.
import fc from "fast-check";
import { expectedHolders, externalRanks, planVrrp, type NodeVrrpPlan } from "../../plan/vrrp";
import { parseStackConfig } from "../../model/parse";
import type { SecretKey } from "../../model/schema";

const CP_ROUTER_ID = 200;

function planFor(bc: number, vipCount: number, ipsPerNode: number): NodeVrrpPlan[] {
  const nodes = Array.from({ length: bc }, (_, i) => ({
    name: `n${i}`,
    roles: i === 0 ? ["control-plane", "balancer"] : ["balancer"],
    wan0: { interface: "wan0", address: `10.118.10.${20 + i}/24` },
    wan1: { interface: "wan1", address: `10.118.12.${20 + i}/24` },
  }));
  const spec = parseStackConfig(
    "t",
    {
      nodes,
      vrrp: {
        controlPlane: { routerId: CP_ROUTER_ID },
        external: { vips: Array.from({ length: vipCount }, (_, j) => `10.118.11.${20 + j}`), ipsPerNode },
      },
      cilium: { enabled: false },
      layers: { cilium: false },
    },
    new Set<SecretKey>(["sshPrivateKey"]),
  );
  return planVrrp(spec);
}

const external = (plans: NodeVrrpPlan[]) =>
  plans.flatMap((p) => p.instances.filter((i) => i.kind === "external").map((i) => ({ node: p.node, ...i })));

const byVip = (plans: NodeVrrpPlan[]) => {
  const m = new Map<string, ReturnType<typeof external>>();
  for (const i of external(plans)) m.set(i.vip, [...(m.get(i.vip) ?? []), i]);
  return m;
};

// balancers 1..9, VIPs 0..12, ipsPerNode 1..bc
const arb = fc
  .integer({ min: 1, max: 9 })
  .chain((bc) => fc.tuple(fc.constant(bc), fc.integer({ min: 0, max: 12 }), fc.integer({ min: 1, max: bc })));
const RUNS = { numRuns: 150 };

describe("planVrrp / externalRanks properties", () => {
  test("every external IP has exactly one top-priority holder, and its priorities are distinct", () => {
    fc.assert(
      fc.property(arb, ([bc, n, per]) => {
        const groups = byVip(planFor(bc, n, per));
        expect(groups.size).toBe(n);
        for (const holders of groups.values()) {
          const prios = holders.map((h) => h.priority);
          expect(new Set(prios).size).toBe(prios.length);
          expect(prios.filter((p) => p === Math.max(...prios))).toHaveLength(1);
        }
      }),
      RUNS,
    );
  });

  test("router ids: one per IP, unique across IPs, never the control plane's", () => {
    fc.assert(
      fc.property(arb, ([bc, n, per]) => {
        const ids = [...byVip(planFor(bc, n, per)).values()].map((holders) => {
          expect(new Set(holders.map((h) => h.routerId)).size).toBe(1);
          return holders[0].routerId;
        });
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids).not.toContain(CP_ROUTER_ID);
      }),
      RUNS,
    );
  });

  test("each IP has exactly min(ipsPerNode, balancers) holders", () => {
    fc.assert(
      fc.property(arb, ([bc, n, per]) => {
        for (const holders of byVip(planFor(bc, n, per)).values()) {
          expect(holders).toHaveLength(Math.min(per, bc));
          expect(new Set(holders.map((h) => h.node)).size).toBe(holders.length);
        }
      }),
      RUNS,
    );
  });

  test("top holders are spread evenly: counts differ by at most 1 (every balancer tops one when VIPs >= balancers)", () => {
    fc.assert(
      fc.property(arb, ([bc, n, per]) => {
        const plans = planFor(bc, n, per);
        const holders = expectedHolders(plans.map((p) => ({ ...p, instances: p.instances.filter((i) => i.kind === "external") })));
        const counts = Array.from({ length: bc }, (_, b) => [...holders.values()].filter((h) => h === `n${b}`).length);
        expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
        if (n >= bc) expect(Math.min(...counts)).toBeGreaterThanOrEqual(1);
      }),
      RUNS,
    );
  });

  test("losing any one balancer strands no IP when each IP has 2+ holders", () => {
    fc.assert(
      fc.property(arb, ([bc, n, per]) => {
        fc.pre(Math.min(per, bc) >= 2);
        const ranks = externalRanks(n, bc, per);
        for (let gone = 0; gone < bc; gone++)
          for (let j = 0; j < n; j++) expect(ranks.some((r) => r.vip === j && r.balancer !== gone)).toBe(true);
      }),
      RUNS,
    );
  });

  test("removing a balancer from the config and re-planning leaves every IP held", () => {
    fc.assert(
      fc.property(arb, ([bc, n, per]) => {
        fc.pre(bc >= 2);
        const groups = byVip(planFor(bc - 1, n, Math.min(per, bc - 1)));
        expect(groups.size).toBe(n);
        for (const holders of groups.values()) expect(holders.length).toBeGreaterThanOrEqual(1);
      }),
      RUNS,
    );
  });

  test("with as many VIPs as balancers it is exactly the seed's loop", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }).chain((bc) => fc.tuple(fc.constant(bc), fc.integer({ min: 1, max: bc }))),
        ([bc, per]) => {
          const plans = planFor(bc, bc, per);
          plans.forEach((p, bi) => {
            // seed: for i in range(virt_ips_per_node): ii = (i + bi) % bc -> wan_<ii>, router id ii + 1, priority 100 - i
            const seed = Array.from({ length: per }, (_, i) => {
              const ii = (i + bi) % bc;
              return { name: `wan_${ii}`, routerId: ii + 1, priority: 100 - i, vip: `10.118.11.${20 + ii}` };
            });
            expect(
              p.instances
                .filter((i) => i.kind === "external")
                .map(({ name, routerId, priority, vip }) => ({ name, routerId, priority, vip })),
            ).toEqual(seed);
          });
        },
      ),
      { numRuns: 60 },
    );
  });

  test("no balancers: no external instances (and no crash)", () => {
    expect(externalRanks(5, 0, 1)).toEqual([]);
  });
});
