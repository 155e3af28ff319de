// Shared by the provider implementations: reaching the host and diffing inputs.
import type * as pulumi from "@pulumi/pulumi";
import { connect } from "../ssh";
import type { Host } from "../ssh/types";

export interface Connection {
  name: string;
  host: string;
  port: number;
  user: string;
  privateKey: string;
  hostKey: string;
  connectTimeoutMs?: number;
  retries?: number;
}

export function hostOf(c: Connection): Promise<Host> {
  return connect({
    name: c.name,
    host: c.host,
    port: c.port,
    user: c.user,
    privateKey: c.privateKey,
    hostKey: c.hostKey,
    connectTimeoutMs: c.connectTimeoutMs,
    retries: c.retries,
  });
}

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
