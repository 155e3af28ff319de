// The one place that reads pulumi.Config: raw stack config -> validated ClusterSpec + secrets.
// Any problem fails here, at preview, before a host is touched.
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
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

/** A snapshot to restore from (etcdBackup.restoreFrom): its files here, checked against their sha256. */
export interface RestoreFiles {
  snapshot: string;
  pki: string;
  sha256: string;
  pkiSha256: string;
}

export interface LoadedConfig {
  spec: ClusterSpec;
  secrets: Secrets;
  restore?: RestoreFiles;
}

/**
 * etcdBackup.restoreFrom's snapshot, its CA archive and the sha256 of both (the files the
 * snapshot script writes side by side), read and checked here, so a wrong or damaged file fails
 * at preview.
 */
export function restoreFiles(namespace: string, from: string): RestoreFiles {
  const snapshot = path.resolve(from);
  const pki = `${snapshot}.pki.tar`;
  const sumsFile = `${snapshot}.sha256`;
  for (const f of [snapshot, pki, sumsFile])
    if (!fs.existsSync(f))
      throw new ConfigError(namespace, [
        {
          key: "etcdBackup.restoreFrom",
          message: `${f} does not exist: name a snapshot this program took (etcdSnapshot output, or one from a control plane's etcdBackup.directory) with its .pki.tar and .sha256 beside it`,
        },
      ]);
  const sums = new Map(
    fs
      .readFileSync(sumsFile, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => [l.split(/\s+/)[1], l.split(/\s+/)[0]]),
  );
  const hash = (f: string) => createHash("sha256").update(fs.readFileSync(f)).digest("hex");
  const out = { snapshot, pki, sha256: hash(snapshot), pkiSha256: hash(pki) };
  for (const [f, sum] of [
    [snapshot, out.sha256],
    [pki, out.pkiSha256],
  ])
    if (sums.get(path.basename(f)) !== sum)
      throw new ConfigError(namespace, [
        {
          key: "etcdBackup.restoreFrom",
          message: `${f} does not match its sha256 in ${sumsFile}: damaged or replaced; restore from an intact one`,
        },
      ]);
  return out;
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
  let restore: RestoreFiles | undefined;
  try {
    spec = parseStackConfig(namespace, raw, new Set(secretValues.keys()), allKeys, plaintext);
    if (spec.config.etcdBackup.restoreFrom) restore = restoreFiles(namespace, spec.config.etcdBackup.restoreFrom);
  } catch (e) {
    // Pulumi's way to end a program with a message: printed as is, no stack trace, non-zero exit.
    if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
    throw e;
  }
  return {
    spec,
    restore,
    secrets: {
      sshPrivateKey: secretValues.get("sshPrivateKey")!,
      vrrpPassword: secretValues.get("vrrpPassword"),
      certManagerTsigSecret: secretValues.get("certManagerTsigSecret"),
    },
  };
}
