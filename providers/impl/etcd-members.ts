// The live etcd member list and each member's health, read on a control plane through etcd's
// own HTTP gateway with the apiserver's etcd client certificate (curl is on every node; no
// etcdctl needed), and a member's removal the same way.
import { q } from "../os/configurer";
import type { EtcdMember } from "../../plan/etcd";
import type { Host } from "../ssh/types";

const PKI = "/etc/kubernetes/pki";
const CURL = `curl -sS --max-time 5 --cacert ${PKI}/etcd/ca.crt --cert ${PKI}/apiserver-etcd-client.crt --key ${PKI}/apiserver-etcd-client.key`;
const LOCAL = "https://127.0.0.1:2379";

export const memberListCommand = `${CURL} --fail-with-body -X POST -d '{}' ${LOCAL}/v3/cluster/member/list`;
export const memberRemoveCommand = (id: string) => `${CURL} --fail-with-body -X POST -d ${q(JSON.stringify({ ID: id }))} ${LOCAL}/v3/cluster/member/remove`;
/** one line per URL: "<url> ok|fail" */
export const healthCommand = (urls: string[]) =>
  `for u in ${urls.map(q).join(" ")}; do if ${CURL} "$u/health" 2>/dev/null | grep -q '"health":"true"'; then echo "$u ok"; else echo "$u fail"; fi; done`;

interface ListedMember {
  ID?: string;
  name?: string;
  peerURLs?: string[];
  clientURLs?: string[];
  isLearner?: boolean;
}

/** Parses the gateway's member list. A member added but never started has no name or client URL yet. */
export function parseMemberList(json: string): Omit<EtcdMember, "healthy">[] {
  let doc: { members?: ListedMember[] };
  try {
    doc = JSON.parse(json) as { members?: ListedMember[] };
  } catch {
    throw new Error(`etcd's member list is not JSON: ${json.slice(0, 200)}`);
  }
  return (doc.members ?? []).map((m) => ({
    id: String(m.ID ?? ""),
    name: m.name || `(unstarted ${m.peerURLs?.[0] ?? m.ID})`,
    clientURL: m.clientURLs?.[0] ?? "",
  }));
}

export function parseHealth(out: string): Map<string, boolean> {
  return new Map(
    out
      .split("\n")
      .map((l) => l.trim().split(" "))
      .filter((p) => p.length === 2)
      .map(([u, s]) => [u, s === "ok"]),
  );
}

/** Members with their health, as seen from `host` (a control plane with a local etcd). */
export async function etcdMembers(host: Host): Promise<EtcdMember[]> {
  const listed = parseMemberList((await host.exec(memberListCommand)).stdout);
  const urls = listed.map((m) => m.clientURL).filter(Boolean);
  const health = urls.length ? parseHealth((await host.exec(healthCommand(urls))).stdout) : new Map<string, boolean>();
  return listed.map((m) => ({ ...m, healthy: !!m.clientURL && health.get(m.clientURL) === true }));
}

export async function removeMember(host: Host, member: EtcdMember): Promise<void> {
  await host.exec(memberRemoveCommand(member.id), { mutates: true });
}
