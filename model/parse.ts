// Turn raw stack config (as Pulumi hands it over) into a validated ClusterSpec, or fail with
// every problem at once, each naming its key.
import type { ZodIssue } from "zod";
import { checkStackConfig, type Finding } from "./checks";
import { resolveCluster, type ClusterSpec } from "./model";
import { SECRET_KEYS, stackConfigSchema, type SecretKey } from "./schema";

export class ConfigError extends Error {
  constructor(
    readonly namespace: string,
    readonly findings: Finding[],
  ) {
    super(
      `invalid stack configuration (${findings.length} problem${findings.length === 1 ? "" : "s"}):\n` +
        findings.map((f) => `  - ${namespace}:${f.key}: ${f.message}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

function issuePath(path: (string | number)[]): string {
  return path.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), "");
}

function zodFindings(issues: ZodIssue[]): Finding[] {
  return issues.flatMap((i) => {
    if (i.code === "unrecognized_keys")
      return i.keys.map((k) => ({
        key: issuePath([...i.path, k]),
        message: "is not a known key (typo?); see Pulumi.yaml for the documented keys",
      }));
    return [{ key: issuePath(i.path) || "(root)", message: i.message }];
  });
}

function dedupe(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const id = `${f.key}\u0000${f.message}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

const KNOWN_TOP_KEYS = new Set<string>([...Object.keys(stackConfigSchema.shape), ...SECRET_KEYS]);

/**
 * @param raw the project's config values (secrets excluded), keyed without the namespace
 * @param secrets which secret keys are set
 * @param allKeys every key set in the namespace (to catch typos of top-level keys)
 * @param plaintextSecrets secret keys that were set without --secret
 */
export function parseStackConfig(
  namespace: string,
  raw: Record<string, unknown>,
  secrets: ReadonlySet<SecretKey>,
  allKeys: readonly string[] = Object.keys(raw),
  plaintextSecrets: readonly SecretKey[] = [],
): ClusterSpec {
  const unknown: Finding[] = [
    ...allKeys
      .filter((k) => !KNOWN_TOP_KEYS.has(k))
      .map((k) => ({ key: k, message: "is not a known key (typo?); see Pulumi.yaml for the documented keys" })),
    ...plaintextSecrets.map((k) => ({
      key: k,
      message: `is stored in plain text; set it again with: pulumi config set --secret ${k} ...`,
    })),
  ];
  const parsed = stackConfigSchema.safeParse(raw);
  // A top-level typo is reported both from allKeys and by the strict schema: keep one finding.
  if (!parsed.success) throw new ConfigError(namespace, dedupe([...unknown, ...zodFindings(parsed.error.issues)]));
  const findings = [...unknown, ...checkStackConfig(parsed.data, secrets)];
  if (findings.length) throw new ConfigError(namespace, findings);
  return resolveCluster(parsed.data);
}
