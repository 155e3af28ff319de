// etcd snapshots on each control plane: the script, and what runs it on schedule per init system.
// Pure. The snapshot is taken inside kubeadm's etcd container: its etcdctl and etcdutl are the
// server's own version (the registry's etcd image ships both) and it already mounts the etcd
// certificates, so the node needs no etcd client package.
import type { ClusterSpec, NodeSpec } from "../model/model";
import { HASH_HEADER, text } from "./common";

export const SNAPSHOT_SCRIPT_PATH = "/usr/local/sbin/k8sbm-etcd-snapshot";
export const SNAPSHOT_UNIT = "k8sbm-etcd-snapshot";
export const SNAPSHOT_SERVICE_PATH = `/etc/systemd/system/${SNAPSHOT_UNIT}.service`;
export const SNAPSHOT_TIMER_PATH = `/etc/systemd/system/${SNAPSHOT_UNIT}.timer`;
export const SNAPSHOT_CRON_PATH = `/etc/cron.d/${SNAPSHOT_UNIT}`;
/** What a restore needs besides the data, relative to /etc/kubernetes: the CAs and the service-account keys. */
export const RESTORE_PKI_FILES = [
  "pki/ca.crt",
  "pki/ca.key",
  "pki/sa.key",
  "pki/sa.pub",
  "pki/front-proxy-ca.crt",
  "pki/front-proxy-ca.key",
  "pki/etcd/ca.crt",
  "pki/etcd/ca.key",
];
/** kubeadm's etcd data directory: the one host path its container writes */
const ETCD_DATA_DIR = "/var/lib/etcd";
const ETCD_PKI = "/etc/kubernetes/pki/etcd";

/**
 * Takes a snapshot of this control plane's etcd member, checks it with `etcdutl snapshot status`,
 * and keeps it in the backup directory with the cluster's CAs (<name>.pki.tar), the sha256 of both
 * (<name>.sha256, sha256sum's format) and its status; removes all but the newest `retain`. Prints
 * the snapshot's path. They hold every Secret and the CA keys: 0600 in a 0700 directory.
 */
export function snapshotScript(spec: ClusterSpec): string {
  const b = spec.config.etcdBackup;
  const etcdctlTls = `--endpoints=https://127.0.0.1:2379 --cacert=${ETCD_PKI}/ca.crt --cert=${ETCD_PKI}/healthcheck-client.crt --key=${ETCD_PKI}/healthcheck-client.key`;
  return text([
    "#!/bin/sh",
    HASH_HEADER,
    "# An etcd snapshot of this control plane's member, taken by etcdctl inside kubeadm's etcd",
    "# container (the server's own version and certificates), checked by etcdutl, kept with its",
    "# sha256 and status. Run on schedule (k8sbm-etcd-snapshot timer or cron) and by `pulumi up`",
    "# when etcdBackup.snapshotNow changes; by hand it is safe too. Prints the snapshot's path.",
    "set -eu",
    "umask 077",
    `dir=${b.directory}`,
    `retain=${b.retain}`,
    `crictl="crictl --runtime-endpoint ${spec.config.cluster.criSocket}"`,
    "host=$(hostname)",
    'fail() { echo "k8sbm-etcd-snapshot on $host: $*" >&2; exit 1; }',
    "id=$($crictl ps --name '^etcd$' --state running -q | head -n 1)",
    '[ -n "$id" ] || fail "no running etcd container (is this a control plane with a live member?)"',
    "# one name per second: a second run within it (timer and on demand) waits for the next",
    'while name="etcd-$host-$(date -u +%Y%m%dT%H%M%SZ).db"; [ -e "$dir/$name" ]; do sleep 1; done',
    "# etcd's data directory is the one host path its container writes: the snapshot starts there",
    `work="${ETCD_DATA_DIR}/.k8sbm-snapshot.$$.part"`,
    'mkdir -p "$dir" && chmod 0700 "$dir"',
    'tmp="$dir/.$name.part"',
    'trap \'rm -f "$work" "$tmp" "$tmp.status" "$tmp.pki"\' EXIT',
    `$crictl exec "$id" etcdctl ${etcdctlTls} snapshot save "$work" >/dev/null || fail "etcdctl snapshot save failed"`,
    '$crictl exec "$id" etcdutl snapshot status "$work" -w json >"$tmp.status" || fail "etcdutl cannot read the snapshot it just took"',
    'cp "$work" "$tmp"',
    "# the cluster's CAs and service-account key pair: a restore needs them with the data (kubeadm",
    "# init keeps the ones it finds, so every kubeconfig and token issued before stays valid)",
    `tar -C /etc/kubernetes -cf "$tmp.pki" ${RESTORE_PKI_FILES.join(" ")}`,
    'sum() { sha256sum "$1" | cut -d" " -f1; }',
    'printf "%s  %s\\n%s  %s\\n" "$(sum "$tmp")" "$name" "$(sum "$tmp.pki")" "$name.pki.tar" >"$dir/$name.sha256"',
    'mv "$tmp.status" "$dir/$name.status.json"',
    'mv "$tmp.pki" "$dir/$name.pki.tar"',
    'mv "$tmp" "$dir/$name"',
    "# retention: this node's newest $retain (names sort by time)",
    'ls -1 "$dir" | grep -E "^etcd-$host-[0-9]{8}T[0-9]{6}Z\\.db$" | sort -r | tail -n +$((retain + 1)) |',
    '  while read -r old; do rm -f "$dir/$old" "$dir/$old.sha256" "$dir/$old.status.json" "$dir/$old.pki.tar"; done',
    'echo "$dir/$name"',
  ]);
}

/** systemd: a oneshot service, run by the timer below. */
export function snapshotService(): string {
  return text([
    HASH_HEADER,
    "[Unit]",
    "Description=k8s-baremetal etcd snapshot of this control plane's member",
    "After=containerd.service kubelet.service",
    "",
    "[Service]",
    "Type=oneshot",
    `ExecStart=${SNAPSHOT_SCRIPT_PATH}`,
  ]);
}

/** systemd: every intervalHours from midnight; Persistent catches up a run missed while off. */
export function snapshotTimer(spec: ClusterSpec): string {
  const h = spec.config.etcdBackup.intervalHours;
  return text([
    HASH_HEADER,
    "[Unit]",
    `Description=k8s-baremetal etcd snapshot every ${h} h`,
    "",
    "[Timer]",
    `OnCalendar=*-*-* ${h === 24 ? "00" : `00/${h}`}:00:00`,
    "RandomizedDelaySec=10min",
    "Persistent=true",
    "",
    "[Install]",
    "WantedBy=timers.target",
  ]);
}

/** cron (OpenRC hosts: cronie reads /etc/cron.d): every intervalHours from midnight. */
export function snapshotCron(spec: ClusterSpec): string {
  const h = spec.config.etcdBackup.intervalHours;
  return text([HASH_HEADER, `0 ${h === 24 ? "0" : `*/${h}`} * * * root ${SNAPSHOT_SCRIPT_PATH} >/dev/null`]);
}

export interface BackupFile {
  id: string;
  path: string;
  content: string;
  mode: string;
}

/**
 * What a control plane gets: the script, and the schedule its init system runs — a systemd timer
 * (SNAPSHOT_UNIT.timer, to be enabled), a cron.d entry under OpenRC. With no init system nothing
 * runs on schedule (the lab): the script is there for whoever runs it.
 */
export function backupFiles(spec: ClusterSpec, node: NodeSpec): BackupFile[] {
  if (!spec.config.etcdBackup.enabled || !node.controlPlane) return [];
  return [
    { id: "etcd-snapshot-script", path: SNAPSHOT_SCRIPT_PATH, content: snapshotScript(spec), mode: "0755" },
    ...(node.init === "systemd"
      ? [
          { id: "etcd-snapshot-service", path: SNAPSHOT_SERVICE_PATH, content: snapshotService(), mode: "0644" },
          { id: "etcd-snapshot-timer", path: SNAPSHOT_TIMER_PATH, content: snapshotTimer(spec), mode: "0644" },
        ]
      : []),
    ...(node.init === "openrc" ? [{ id: "etcd-snapshot-cron", path: SNAPSHOT_CRON_PATH, content: snapshotCron(spec), mode: "0644" }] : []),
  ];
}
