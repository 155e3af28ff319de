// Helpers shared by the renderers. Pure: no Pulumi, no I/O.

/** The first comment line of every rendered file whose format allows comments. */
export const HEADER = "Managed by k8s-baremetal (Pulumi). Local edits are reverted.";

/** `# Managed by …` for shell-like, YAML, INI and keepalived files. */
export const HASH_HEADER = `# ${HEADER}`;

/** Join lines into file text with exactly one trailing newline. */
export function text(lines: readonly string[]): string {
  return lines.join("\n").replace(/\n+$/, "") + "\n";
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** A deep copy with every object's keys sorted (array order is kept: it is meaningful). */
export function sortKeysDeep<T>(v: T): T {
  if (Array.isArray(v)) return v.map(sortKeysDeep) as unknown as T;
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeysDeep(v[k]);
    return out as T;
  }
  return v;
}

/**
 * Deep merge for configuration values: plain objects merge key by key, everything else
 * (scalars, arrays, null) in `override` replaces what `base` has.
 */
export function deepMerge(base: Record<string, unknown>, override: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) {
    const cur = out[k];
    out[k] = isPlainObject(cur) && isPlainObject(v) ? deepMerge(cur, v) : v;
  }
  return out;
}

/** Escape text for an XML attribute value or element content. */
export function xmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/** Compare dotted IPv4 strings numerically (non-IPs sort after IPs, alphabetically). */
export function compareAddresses(a: string, b: string): number {
  const num = (s: string) => (/^\d+\.\d+\.\d+\.\d+$/.test(s) ? s.split(".").reduce((acc, p) => acc * 256 + Number(p), 0) : undefined);
  const x = num(a);
  const y = num(b);
  if (x !== undefined && y !== undefined) return x - y;
  if (x !== undefined) return -1;
  if (y !== undefined) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Reject a word that a shell (or keepalived's tokenizer) would split or interpret. Used for
 * values we place unquoted or inside double quotes in generated config.
 */
export function assertSafeWord(what: string, value: string, extra = ""): void {
  const bad = new RegExp(`[\\s"'\`$\\\\${extra}]`);
  if (value === "" || bad.test(value))
    throw new Error(
      `${what} must be non-empty and contain no whitespace, quotes, '$', '\\' or backticks${extra ? ` or any of ${extra}` : ""}`,
    );
}
