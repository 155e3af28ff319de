// etcd membership planning: whether a change of the control-plane set is safe for etcd, decided
// from the live member list and each member's health before any node is touched. Pure.
//
// The order the program changes etcd in is Pulumi's: joins (creates) run before removals
// (deletes), one control plane at a time; a dead member that is being dropped is removed right
// before the first join, since adding a member while another is dead shrinks the margin
// (etcd's runtime-reconfiguration guide: remove the failed member first).

export interface EtcdMember {
  id: string;
  name: string;
  clientURL: string;
  healthy: boolean;
}

/** Members needed for a majority of n. */
export const quorum = (n: number): number => Math.floor(n / 2) + 1;

export interface MembershipPlan {
  /** dead members that are not wanted any more: removed before the first join */
  removeFirst: EtcdMember[];
  join: string[];
  /** live members that are not wanted any more, removed after the joins */
  remove: EtcdMember[];
}

export class UnsafeMembershipChange extends Error {}

const names = (ms: readonly { name: string }[]) => ms.map((m) => m.name).join(", ") || "none";

/**
 * The steps from the live `members` to the wanted control planes, or UnsafeMembershipChange
 * when a step would leave etcd without quorum or at 2 members (a 2-member etcd stops when
 * either member fails: it tolerates no more failures than 1 member, with twice the risk).
 */
export function planMembership(members: readonly EtcdMember[], wanted: readonly string[]): MembershipPlan {
  const want = new Set(wanted);
  const sickWanted = members.filter((m) => !m.healthy && want.has(m.name));
  if (sickWanted.length)
    throw new UnsafeMembershipChange(
      `etcd member(s) ${names(sickWanted)} are unhealthy and still wanted as control planes: repair them ` +
        `(or remove them from \`nodes\`) before changing the control-plane set`,
    );
  const removeFirst = members.filter((m) => !m.healthy && !want.has(m.name));
  const join = wanted.filter((n) => !members.some((m) => m.name === n));
  const remove = members.filter((m) => m.healthy && !want.has(m.name));

  // walk the steps on a model of the member list: [name, healthy]
  let now = members.map((m) => ({ name: m.name, healthy: m.healthy }));
  const quorate = (step: string) => {
    const healthy = now.filter((m) => m.healthy).length;
    if (now.length && healthy < quorum(now.length))
      throw new UnsafeMembershipChange(
        `${step} would leave etcd with ${healthy} healthy of ${now.length} members, below its quorum of ${quorum(now.length)}`,
      );
  };
  // A dead member's removal never makes things worse: it already counts against the quorum.
  for (const m of removeFirst) {
    now = now.filter((x) => x.name !== m.name);
    quorate(`removing the dead member ${m.name}`);
  }
  // kubeadm adds a member as a learner and promotes it once it has caught up: a join never
  // counts a member that is not up yet, so it passes through 2 members safely (1 -> 3).
  for (const n of join) {
    now.push({ name: n, healthy: true });
    quorate(`joining ${n}`);
  }
  for (const m of remove) {
    now = now.filter((x) => x.name !== m.name);
    if (now.length === 2)
      throw new UnsafeMembershipChange(
        `removing ${m.name} would leave etcd with 2 members (${names(now)}), which stops when either ` +
          `fails. Go between 3 and 5 members without stopping at 2: add a replacement in the same ` +
          `update as a removal, or add or remove two control planes at once`,
      );
    quorate(`removing ${m.name}`);
  }
  return { removeFirst, join, remove };
}
