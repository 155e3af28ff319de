// Shared by the provider implementations: the provider contract, reaching the host, diffing.
import type * as pulumi from "@pulumi/pulumi";
import { connect } from "../ssh";
import { SshConnectionError } from "../ssh/errors";
import type { Host, SshTarget } from "../ssh/types";

/**
 * A dynamic provider over plain inputs I and the state O it records. Each implementation
 * exports `provider: Provider<I, O>`; providers/resources.ts derives the Pulumi-side resource
 * class from that one declaration.
 */
export interface Provider<I, O> {
  check?(olds: O, news: I): Promise<pulumi.dynamic.CheckResult>;
  create(inputs: I): Promise<{ id: string; outs: O }>;
  diff(id: string, olds: O, news: I): Promise<pulumi.dynamic.DiffResult>;
  /** props {} when the resource is gone */
  read(id: string, props: O): Promise<{ id: string; props: O | Record<string, never> }>;
  update?(id: string, olds: O, news: I): Promise<{ outs: O }>;
  /** required: the generic stub calls it for every kind, so a kind that keeps what it made says so */
  delete(id: string, props: O): Promise<void>;
}

// ---- nodes declared unreachable (stack config `unreachableNodes`) ----------------------------
// The engine hands a dynamic provider the whole stack configuration (configure); the stub in
// providers/dynamic.ts passes it here. A node listed there is never contacted: its resources are
// dropped from the state on delete, and its membership leaves through a live control plane.
const unreachable = new Set<string>();

/** From the stack's `k8s-baremetal:unreachableNodes` (a JSON list of node names, or absent). */
export function setUnreachableNodes(json: string | undefined): void {
  unreachable.clear();
  for (const n of json ? (JSON.parse(json) as string[]) : []) unreachable.add(n);
}

export const isUnreachable = (name: string): boolean => unreachable.has(name);

/** Kinds whose delete still runs for an unreachable node: a membership leaves through a live control plane. */
const DELETES_WITHOUT_THE_NODE = new Set(["kubeadm-join", "kubeadm-init", "etcd-snapshot"]);

/** This delete is skipped: the resource is on a node declared unreachable; the state forgets it. */
export function forgottenOnDelete(kind: string, props: { connection?: { name?: string } }): boolean {
  return !DELETES_WITHOUT_THE_NODE.has(kind) && !!props.connection?.name && unreachable.has(props.connection.name);
}

/** Connects with the fields SshTarget knows (state may carry others). */
export function hostOf(t: SshTarget): Promise<Host> {
  if (unreachable.has(t.name))
    return Promise.reject(
      new SshConnectionError(t.name, `${t.host}:${t.port ?? 22}`, "not contacted: the node is listed in unreachableNodes"),
    );
  return connect({
    name: t.name,
    host: t.host,
    port: t.port,
    user: t.user,
    privateKey: t.privateKey,
    hostKey: t.hostKey,
    connectTimeoutMs: t.connectTimeoutMs,
    retries: t.retries,
    bootWaitMs: t.bootWaitMs,
    ...(t.via ? { via: t.via } : {}),
  });
}

/** How an input not known yet (preview, before its source resource runs) reaches a dynamic provider. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** Stable JSON: object keys sorted, so equal values compare equal. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === "object" && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : val,
  );
}

export function changed(olds: Record<string, unknown>, news: Record<string, unknown>, keys: readonly string[]): string[] {
  return keys.filter((k) => canonical(olds[k]) !== canonical(news[k]));
}

/**
 * A diff over the keys we own plus the connection (when present): a re-pinned host key or a
 * new address must reach the state, since read and delete only see the stored connection.
 * Updates are idempotent, so such an update changes nothing on a converged host. Unknown values
 * (preview) compare unequal, so they show as changes.
 */
export function diffOf(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
  updateKeys: readonly string[],
  replaceKeys: readonly string[] = [],
): pulumi.dynamic.DiffResult {
  const replaces = changed(olds, news, replaceKeys);
  const updates = changed(olds, news, "connection" in news ? [...updateKeys, "connection"] : updateKeys);
  return {
    changes: replaces.length + updates.length > 0,
    replaces,
    deleteBeforeReplace: replaces.length > 0,
    stables: [],
  };
}
