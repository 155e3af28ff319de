import { planMembership, quorum, UnsafeMembershipChange, type EtcdMember } from "../../plan/etcd";
import { parseHealth } from "../../providers/impl/membership";

const m = (name: string, healthy = true): EtcdMember => ({
  id: String(name.length * 1000 + name.charCodeAt(name.length - 1)),
  name,
  clientURL: `https://${name}:2379`,
  healthy,
});
const three = [m("k8s-1"), m("k8s-2"), m("k8s-3")];

test("quorum is a strict majority", () => {
  expect([1, 2, 3, 4, 5].map(quorum)).toEqual([1, 2, 2, 3, 3]);
});

test("no change is a plan with no steps", () => {
  expect(planMembership(three, ["k8s-1", "k8s-2", "k8s-3"])).toEqual({ removeFirst: [], join: [], remove: [] });
});

test("growing 1 -> 3 passes through 2 members (learners are promoted once up)", () => {
  expect(planMembership([m("k8s-1")], ["k8s-1", "k8s-2", "k8s-3"]).join).toEqual(["k8s-2", "k8s-3"]);
});

test("replacing the first control plane: join the new one, then remove k8s-1", () => {
  const plan = planMembership(three, ["k8s-2", "k8s-3", "k8s-5"]);
  expect(plan.join).toEqual(["k8s-5"]);
  expect(plan.remove.map((x) => x.name)).toEqual(["k8s-1"]);
});

test("5 -> 3 in one update is allowed; 3 -> 1 would stop at 2 members and is refused", () => {
  const five = [...three, m("k8s-4"), m("k8s-5")];
  expect(planMembership(five, ["k8s-1", "k8s-2", "k8s-3"]).remove.map((x) => x.name)).toEqual(["k8s-4", "k8s-5"]);
  expect(() => planMembership(three, ["k8s-1"])).toThrow(UnsafeMembershipChange);
  expect(() => planMembership(three, ["k8s-1"])).toThrow(/removing k8s-2 would leave etcd with 2 members \(k8s-1, k8s-3\)/);
});

test("a dead member that is being replaced leaves first", () => {
  const members = [m("k8s-1"), m("k8s-2"), m("k8s-3", false)];
  const plan = planMembership(members, ["k8s-1", "k8s-2", "k8s-5"]);
  expect(plan.removeFirst.map((x) => x.name)).toEqual(["k8s-3"]);
  expect(plan.join).toEqual(["k8s-5"]);
  expect(plan.remove).toEqual([]);
});

test("a change while a wanted member is dead is refused, naming it", () => {
  const members = [m("k8s-1"), m("k8s-2"), m("k8s-3", false)];
  expect(() => planMembership(members, ["k8s-1", "k8s-2", "k8s-3", "k8s-4", "k8s-5"])).toThrow(/k8s-3 are unhealthy and still wanted/);
});

test("dead members go first; a healthy removal that then ends at 2 members is refused", () => {
  const members = [m("a"), m("b"), m("c"), m("d", false), m("e", false)];
  expect(() => planMembership(members, ["a", "b"])).toThrow(/removing c would leave etcd with 2 members/);
  const plan = planMembership(members, ["a", "b", "c"]);
  expect(plan.removeFirst.map((x) => x.name)).toEqual(["d", "e"]);
});

test("an etcd that has lost its majority is not reshaped", () => {
  // 1 of 3 healthy: removing a dead member would leave 1 healthy of 2
  const members = [m("a"), m("b", false), m("c", false)];
  expect(() => planMembership(members, ["a", "x", "y"])).toThrow(/1 healthy of 2 members, below its quorum of 2/);
});

test("etcd health lines parse by URL", () => {
  const h = parseHealth("https://10.118.12.20:2379 ok\nhttps://10.118.12.21:2379 fail\n");
  expect([...h]).toEqual([
    ["https://10.118.12.20:2379", true],
    ["https://10.118.12.21:2379", false],
  ]);
});
