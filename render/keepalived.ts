// keepalived.conf and the apiserver health check, per node. Pure.
import type { NodeVrrpPlan, VrrpInstance } from "../plan/vrrp";
import type { ClusterSpec, NodeSpec } from "../model/model";
import type { StackConfig } from "../model/schema";
import { HASH_HEADER, assertSafeWord, compareAddresses, text } from "./common";

export const KEEPALIVED_CONF_PATH = "/etc/keepalived/keepalived.conf";
export const CHECK_APISERVER_PATH = "/etc/keepalived/check-apiserver.sh";
/** kubeadm writes this static-pod manifest when (and only when) a node becomes a control plane. */
export const APISERVER_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml";
const CHECK_SCRIPT_NAME = "chk_apiserver";
/**
 * The unprivileged system user keepalived runs the check script as (keepalived's own default
 * name for it). The program creates it; the script stays root-owned and not writable by it.
 */
export const SCRIPT_USER = "keepalived_script";
/**
 * Directories the check script must be able to search (not read) as SCRIPT_USER, to see whether
 * the apiserver manifest exists. kubeadm creates them 0700; the program adds search permission
 * for others (the manifests are 0600 and their names are kubeadm's well-known ones).
 */
export const CHECK_SCRIPT_SEARCHES = ["/etc/kubernetes", "/etc/kubernetes/manifests"];

type HealthCheck = StackConfig["vrrp"]["controlPlane"]["healthCheck"];

export interface KeepalivedOptions {
  authType: StackConfig["vrrp"]["authType"];
  /**
   * The `vrrpPassword` secret, unwrapped by the caller inside a secret Output. keepalived uses
   * only its first 8 characters (longer ones are silently truncated).
   */
  password?: string;
  advertInt: number;
  unicast: boolean;
  healthCheck: HealthCheck;
  /** control_plane: take the VIP back when a higher-priority node returns */
  controlPlanePreempt: boolean;
  /** external VIPs: seconds a recovered holder waits before taking its IP back */
  externalPreemptDelay: number;
}

export function keepalivedOptions(spec: ClusterSpec, password?: string): KeepalivedOptions {
  const v = spec.config.vrrp;
  return {
    authType: v.authType,
    ...(password !== undefined ? { password } : {}),
    advertInt: v.advertInt,
    unicast: v.unicast,
    healthCheck: v.controlPlane.healthCheck,
    controlPlanePreempt: v.controlPlane.preempt,
    externalPreemptDelay: v.external.preemptDelaySeconds,
  };
}

function instanceBlock(i: VrrpInstance, plan: NodeVrrpPlan, opts: KeepalivedOptions, tracked: boolean): string[] {
  const out = [
    i.kind === "control-plane"
      ? `# control-plane VIP: the first control plane has the highest priority (it holds the VIP during bootstrap)`
      : `# external VIP ${i.vip}: priority ${i.priority} in the seed's rotation`,
    `vrrp_instance ${i.name} {`,
    "    state BACKUP",
    `    interface ${i.interface}`,
    `    virtual_router_id ${i.routerId}`,
    `    priority ${i.priority}`,
    `    advert_int ${opts.advertInt}`,
  ];
  if (i.kind === "control-plane" && !opts.controlPlanePreempt)
    out.push("    # a recovered node with a higher priority leaves the VIP where it is (no second failover)", "    nopreempt");
  if (i.kind === "external" && opts.externalPreemptDelay > 0)
    out.push(
      `    # a recovered holder takes this IP back only after ${opts.externalPreemptDelay} s of health`,
      `    preempt_delay ${opts.externalPreemptDelay}`,
    );
  if (opts.authType !== "none")
    out.push("    authentication {", `        auth_type ${opts.authType}`, `        auth_pass ${opts.password}`, "    }");
  out.push("    virtual_ipaddress {", `        ${i.vip}`, "    }");
  if (opts.unicast) {
    out.push(`    unicast_src_ip ${plan.sourceIp}`, "    unicast_peer {");
    for (const p of [...i.peers].sort(compareAddresses)) out.push(`        ${p}`);
    out.push("    }");
  }
  if (tracked) out.push("    track_script {", `        ${CHECK_SCRIPT_NAME}`, "    }");
  out.push("}");
  return out;
}

/**
 * /etc/keepalived/keepalived.conf for one node: its control-plane and external VRRP instances
 * in plan order, each exactly like the seed's (state BACKUP; the priorities decide the holder).
 */
export function keepalivedConf(plan: NodeVrrpPlan, opts: KeepalivedOptions): string {
  if (opts.authType !== "none") {
    if (opts.password === undefined) throw new Error(`vrrpPassword is required for vrrp.authType ${opts.authType}`);
    // '#' and '!' start comments in keepalived.conf; whitespace would split the token.
    assertSafeWord("vrrpPassword", opts.password, "#!");
  }
  const tracks = opts.healthCheck.enabled && plan.instances.some((i) => i.kind === "control-plane");
  const hc = opts.healthCheck;
  const lines = [
    HASH_HEADER,
    "",
    "global_defs {",
    `    router_id ${plan.node}`,
    // Scripts must not be writable by their user or anyone but root (keepalived checks it).
    "    enable_script_security",
    // The health check runs unprivileged: it only needs curl and the apiserver's /readyz.
    ...(tracks ? [`    script_user ${SCRIPT_USER}`] : []),
    // VRRPv3 (RFC 5798) when there is no authentication (v3 has none): it also allows
    // sub-second advert_int. AH/PASS exist only in VRRPv2.
    ...(opts.authType === "none" ? ["    vrrp_version 3"] : []),
    // Unicast: adverts whose source is not one of the instance's unicast peers are dropped, so a
    // host on wan1 that is not a balancer cannot take a VIP by advertising a higher priority.
    ...(opts.unicast ? ["    vrrp_check_unicast_src"] : []),
    "}",
  ];
  if (tracks)
    lines.push(
      "",
      "# The local apiserver's health (the seed's named weakness: without it a node whose apiserver",
      "# died kept the VIP). No `weight`: a failing script puts control_plane into FAULT, which",
      "# releases the VIP to the next control plane.",
      `vrrp_script ${CHECK_SCRIPT_NAME} {`,
      `    script "${CHECK_APISERVER_PATH}"`,
      `    interval ${hc.intervalSeconds}`,
      `    timeout ${hc.timeoutSeconds}`,
      `    fall ${hc.fall}`,
      `    rise ${hc.rise}`,
      "}",
    );
  for (const i of plan.instances) lines.push("", ...instanceBlock(i, plan, opts, tracks && i.kind === "control-plane"));
  return text(lines);
}

/**
 * Passes the apiserver check without a manifest: the first control plane (it holds the VIP before
 * `kubeadm init`), and every node of a stack where the program runs no kubeadm (keepalived only,
 * or a rehearsal), where no manifest ever appears.
 */
export function bootstrapsVip(spec: ClusterSpec, node: NodeSpec): boolean {
  const { layers, cluster } = spec.config;
  return !(layers.kubernetes && !cluster.rehearse) || node === spec.controlPlanes[0];
}

/**
 * /etc/keepalived/check-apiserver.sh: exit 0 when the local apiserver is ready. With no
 * kube-apiserver manifest, a `bootstrap` node passes, so the first node can hold the VIP before
 * `kubeadm init` (the seed's bootstrap order); any other fails: a control plane that lost its
 * apiserver (reset, a rebuilt machine) must not hold the VIP while the first one initialises the
 * cluster again. It runs as SCRIPT_USER: a directory on the way to the manifest that this user
 * cannot search would hide the manifest, so that fails instead of passing unchecked.
 */
export function checkApiserverScript(node: NodeSpec, port: number, timeoutSeconds = 1, bootstrap = true): string {
  const url = `https://${node.wan1.ip}:${port}/readyz`;
  return text([
    "#!/bin/sh",
    HASH_HEADER,
    `# keepalived vrrp_script for ${node.name}: exit 0 = this node's apiserver is ready.`,
    `# Runs as ${SCRIPT_USER}; needs no secret (/readyz is public), only search permission on`,
    "# the manifest's directories (the program grants it): without it, fail rather than pass blind.",
    `m=${APISERVER_MANIFEST}`,
    'for d in "${m%/*/*}" "${m%/*}"; do',
    '    if [ -e "$d" ] && [ ! -x "$d" ]; then echo "check-apiserver: cannot search $d as $(id -un)" >&2; exit 1; fi',
    "done",
    ...(bootstrap
      ? ["# Not a control plane yet (kubeadm has not written the manifest): nothing to check, pass.", '[ -f "$m" ] || exit 0']
      : [
          "# No manifest: not a control plane (yet, or any more); only the first one holds the VIP without one.",
          '[ -f "$m" ] || { echo "check-apiserver: no $m" >&2; exit 1; }',
        ]),
    `url="${url}"`,
    "if command -v curl >/dev/null 2>&1; then",
    `    exec curl -fsk --max-time ${timeoutSeconds} -o /dev/null "$url"`,
    "fi",
    "# Fallback for hosts without curl (BusyBox or GNU wget).",
    `exec wget -q -T ${timeoutSeconds} -O /dev/null --no-check-certificate "$url"`,
  ]);
}
