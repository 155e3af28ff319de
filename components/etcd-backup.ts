// EtcdBackup: scheduled etcd snapshots on every control plane (render/etcd-backup.ts), and an
// on-demand one copied here when etcdBackup.snapshotNow changes (EtcdSnapshot).
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterSpec } from "../model/model";
import { EtcdSnapshot, Packages, RemoteFile, Service } from "../providers/resources";
import * as backup from "../render/etcd-backup";
import { contentToken } from "./content-token";
import type { PreparedNode } from "./host";

export interface EtcdBackupArgs {
  spec: ClusterSpec;
  hosts: Record<string, PreparedNode>;
  /** each control plane's membership: its etcd runs once this exists */
  members: Record<string, pulumi.Resource>;
}

/** Where on-demand snapshots land: etcdBackup.localDirectory/<stack>, from the project directory. */
export function localSnapshotDirectory(spec: ClusterSpec, stack: string): string {
  return path.resolve(spec.config.etcdBackup.localDirectory, stack);
}

export class EtcdBackup extends pulumi.ComponentResource {
  readonly snapshot?: EtcdSnapshot;

  constructor(name: string, args: EtcdBackupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k8sbm:index:EtcdBackup", name, {}, opts);
    const { spec, hosts, members } = args;
    const scripts: pulumi.Resource[] = [];
    for (const node of spec.controlPlanes) {
      const { connection } = hosts[node.name];
      const after = { parent: this, dependsOn: [members[node.name]] };
      const files = backup
        .backupFiles(spec, node)
        .map((f) => new RemoteFile(`${node.name}-${f.id}`, { connection, path: f.path, content: f.content, mode: f.mode }, after));
      scripts.push(files[0]);
      const schedule = files.slice(1);
      if (node.init === "systemd")
        new Service(
          `${node.name}-etcd-snapshot-timer`,
          {
            connection,
            init: node.init,
            name: `${backup.SNAPSHOT_UNIT}.timer`,
            enabled: true,
            running: true,
            // daemon-reload and restart when either unit changes
            restartToken: contentToken(backup.snapshotService(), backup.snapshotTimer(spec)),
          },
          { parent: this, dependsOn: schedule },
        );
      if (node.init === "openrc") {
        // cron.d needs a cron that reads it: cronie, Gentoo's default
        const cron = new Packages(`${node.name}-cron`, { connection, os: node.os, packages: ["sys-process/cronie"] }, after);
        new Service(
          `${node.name}-cronie`,
          { connection, init: node.init, name: "cronie", enabled: true, running: true },
          { parent: this, dependsOn: [cron, ...schedule] },
        );
      }
    }
    const b = spec.config.etcdBackup;
    if (b.snapshotNow)
      this.snapshot = new EtcdSnapshot(
        "etcd-snapshot",
        {
          controlPlanes: pulumi.output(spec.controlPlanes.map((c) => hosts[c.name].connection)),
          scriptPath: backup.SNAPSHOT_SCRIPT_PATH,
          trigger: b.snapshotNow,
          localDirectory: localSnapshotDirectory(spec, pulumi.getStack()),
        },
        { parent: this, dependsOn: scripts },
      );
    this.registerOutputs({});
  }
}
