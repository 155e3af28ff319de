// The admin kubeconfig the program keeps in state, hands to the kubernetes provider and exports:
// rebuilt from three parsed values of the node's /etc/kubernetes/admin.conf (the CA, the client
// certificate and key), never copied. A control plane is a machine we manage, not one we trust
// with code execution on the operator's workstation: a kubeconfig user with `exec`,
// `auth-provider`, a token file or a proxy would run or send things there. Pure.
import { X509Certificate } from "crypto";
import { parse, parseDocument, stringify } from "yaml";

export interface AdminCredentials {
  certificateAuthorityData: string;
  clientCertificateData: string;
  clientKeyData: string;
  /** the server the node's file names (only used when the caller has none of its own) */
  server: string;
}

const TOP_KEYS = new Set(["apiVersion", "kind", "clusters", "contexts", "current-context", "users", "preferences"]);
const CLUSTER_KEYS = new Set(["certificate-authority-data", "server"]);
const USER_KEYS = new Set(["client-certificate-data", "client-key-data"]);
const CONTEXT_KEYS = new Set(["cluster", "user"]);
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** https://<IPv4 | [IPv6] | DNS name>:<port> and nothing else */
export const SERVER_URL = /^https:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/;

export class KubeconfigError extends Error {
  constructor(node: string, path: string, field: string, problem: string) {
    super(
      `${node}: ${path}: ${field} ${problem}; the program accepts only a kubeadm admin.conf (one cluster with ` +
        `certificate-authority-data and server, one user with client-certificate-data and client-key-data, one ` +
        `context) and never passes anything else on. Inspect the file on ${node}: it may have been tampered with.`,
    );
    this.name = "KubeconfigError";
  }
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses a kubeadm admin.conf, refusing every field beyond the three credentials and the server. */
export function parseAdminConf(text: string, node: string, path = "/etc/kubernetes/admin.conf"): AdminCredentials {
  const fail = (field: string, problem: string): never => {
    throw new KubeconfigError(node, path, field, problem);
  };
  const doc = parseDocument(text, { uniqueKeys: true, merge: false });
  if (doc.errors.length) fail("(file)", `is not valid YAML (${doc.errors[0].message.split("\n")[0]})`);
  const root: unknown = doc.toJS({ maxAliasCount: 0 });
  if (!isMap(root)) return fail("(file)", "is not a kubeconfig mapping");
  for (const k of Object.keys(root)) if (!TOP_KEYS.has(k)) fail(k, "is not allowed");
  if (root.kind !== undefined && root.kind !== "Config") fail("kind", "must be Config");
  if (root.apiVersion !== undefined && root.apiVersion !== "v1") fail("apiVersion", "must be v1");
  if (root.preferences !== undefined && !(isMap(root.preferences) && Object.keys(root.preferences).length === 0))
    fail("preferences", "must be empty");

  const one = (list: string, inner: string, allowed: Set<string>): Record<string, unknown> => {
    const l = root[list];
    if (!Array.isArray(l) || l.length !== 1)
      return fail(list, `must hold exactly one entry (found ${Array.isArray(l) ? l.length : "none"})`);
    const entry: unknown = l[0];
    if (!isMap(entry)) return fail(`${list}[0]`, "is not a mapping");
    for (const k of Object.keys(entry)) if (k !== "name" && k !== inner) fail(`${list}[0].${k}`, "is not allowed");
    const body = entry[inner];
    if (!isMap(body)) return fail(`${list}[0].${inner}`, "is missing");
    for (const k of Object.keys(body)) if (!allowed.has(k)) fail(`${list}[0].${inner}.${k}`, "is not allowed");
    return body;
  };
  const cluster = one("clusters", "cluster", CLUSTER_KEYS);
  const user = one("users", "user", USER_KEYS);
  one("contexts", "context", CONTEXT_KEYS);

  const pem = (field: string, v: unknown): string => {
    if (typeof v !== "string" || !BASE64.test(v)) return fail(field, "must be base64 data");
    if (!Buffer.from(v, "base64").toString("latin1").startsWith("-----BEGIN ")) fail(field, "is not a PEM block");
    return v;
  };
  const server = cluster.server;
  if (typeof server !== "string" || !SERVER_URL.test(server)) fail("clusters[0].cluster.server", "must be https://<host>:<port>");
  return {
    certificateAuthorityData: pem("clusters[0].cluster.certificate-authority-data", cluster["certificate-authority-data"]),
    clientCertificateData: pem("users[0].user.client-certificate-data", user["client-certificate-data"]),
    clientKeyData: pem("users[0].user.client-key-data", user["client-key-data"]),
    server: server as string,
  };
}

/** A fresh kubeconfig from the parsed credentials, kubeadm's layout (the tunnel rewrites its server line). */
export function buildKubeconfig(c: Omit<AdminCredentials, "server">, server: string, clusterName = "kubernetes"): string {
  if (!SERVER_URL.test(server)) throw new Error(`kubeconfig server ${JSON.stringify(server)} must be https://<host>:<port>`);
  const user = "kubernetes-admin";
  return stringify(
    {
      apiVersion: "v1",
      clusters: [{ cluster: { "certificate-authority-data": c.certificateAuthorityData, server }, name: clusterName }],
      contexts: [{ context: { cluster: clusterName, user }, name: `${user}@${clusterName}` }],
      "current-context": `${user}@${clusterName}`,
      kind: "Config",
      preferences: {},
      users: [{ name: user, user: { "client-certificate-data": c.clientCertificateData, "client-key-data": c.clientKeyData } }],
    },
    { indentSeq: false, lineWidth: 0 },
  );
}

/** When a kubeconfig's client certificate expires (ISO); "" when it has none (a rehearsal's empty one). */
export function clientCertificateExpiry(kubeconfig: string): string {
  const doc = parse(kubeconfig) as { users?: { user?: Record<string, unknown> }[] } | null;
  const data = doc?.users?.[0]?.user?.["client-certificate-data"];
  if (typeof data !== "string") return "";
  return new Date(new X509Certificate(Buffer.from(data, "base64")).validTo).toISOString();
}
