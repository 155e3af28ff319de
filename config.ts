// The one place that reads pulumi.Config: raw stack config -> validated ClusterSpec + secrets.
// Any problem fails here, at preview, before a host is touched.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, parseStackConfig } from "./model/parse";
import type { ClusterSpec } from "./model/model";
import { SECRET_KEYS, stackConfigSchema, type SecretKey } from "./model/schema";

// Not re-exported by @pulumi/pulumi's index; it tells whether a key was set with --secret.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { isConfigSecret } = require("@pulumi/pulumi/runtime/config") as { isConfigSecret: (key: string) => boolean };

export interface Secrets {
  sshPrivateKey: pulumi.Output<string>;
  vrrpPassword?: pulumi.Output<string>;
  certManagerTsigSecret?: pulumi.Output<string>;
}

export interface LoadedConfig {
  spec: ClusterSpec;
  secrets: Secrets;
}

export function loadConfig(): LoadedConfig {
  const namespace = pulumi.getProject();
  const config = new pulumi.Config();
  const prefix = `${namespace}:`;
  const allKeys = Object.keys(pulumi.runtime.allConfig())
    .filter((k) => k.startsWith(prefix))
    .map((k) => k.slice(prefix.length));
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(stackConfigSchema.shape)) {
    const v = config.getObject<unknown>(key);
    if (v !== undefined) raw[key] = v;
  }
  const secretValues = new Map<SecretKey, pulumi.Output<string>>();
  for (const key of SECRET_KEYS) {
    const v = config.getSecret(key);
    if (v !== undefined) secretValues.set(key, v);
  }
  const plaintext = [...secretValues.keys()].filter((k) => !isConfigSecret(`${namespace}:${k}`));
  let spec: ClusterSpec;
  try {
    spec = parseStackConfig(namespace, raw, new Set(secretValues.keys()), allKeys, plaintext);
  } catch (e) {
    // Pulumi's way to end a program with a message: printed as is, no stack trace, non-zero exit.
    if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
    throw e;
  }
  return {
    spec,
    secrets: {
      sshPrivateKey: secretValues.get("sshPrivateKey")!,
      vrrpPassword: secretValues.get("vrrpPassword"),
      certManagerTsigSecret: secretValues.get("certManagerTsigSecret"),
    },
  };
}
