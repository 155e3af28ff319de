// etcd snapshot schedule and script: what each init system gets, checked by the real tools that
// read them (systemd-analyze for the units and the calendar, dash for the script). The script
// itself runs live in test/e2e/cluster.test.ts.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseStackConfig } from "../../model/parse";
import { resolveCluster } from "../../model/model";
import {
  SNAPSHOT_CRON_PATH,
  SNAPSHOT_SCRIPT_PATH,
  SNAPSHOT_SERVICE_PATH,
  SNAPSHOT_TIMER_PATH,
  backupFiles,
  snapshotCron,
  snapshotScript,
  snapshotService,
  snapshotTimer,
} from "../../render/etcd-backup";
import { SNAPSHOT_INTERVAL_HOURS } from "../../model/schema";
import { NAMESPACE, devConfigCopy, devSecretKeys, devSpec } from "../fixtures/dev";

const withBackup = (backup: Record<string, unknown>, init?: string) => {
  const c = devConfigCopy();
  c.etcdBackup = backup;
  if (init) c.os = { ...c.os, init };
  return resolveCluster(parseStackConfig(NAMESPACE, c, devSecretKeys).config);
};

describe("etcd snapshot files per control plane", () => {
  test("systemd: script, service and timer; OpenRC: script and cron.d; no init: the script only; workers nothing", () => {
    const paths = (init: string) => {
      const spec = withBackup({}, init);
      return Object.fromEntries(spec.nodes.map((n) => [n.name, backupFiles(spec, n).map((f) => f.path)]));
    };
    expect(paths("systemd")).toEqual({
      "k8s-1": [SNAPSHOT_SCRIPT_PATH, SNAPSHOT_SERVICE_PATH, SNAPSHOT_TIMER_PATH],
      "k8s-2": [SNAPSHOT_SCRIPT_PATH, SNAPSHOT_SERVICE_PATH, SNAPSHOT_TIMER_PATH],
      "k8s-3": [SNAPSHOT_SCRIPT_PATH, SNAPSHOT_SERVICE_PATH, SNAPSHOT_TIMER_PATH],
      "k8s-4": [],
    });
    expect(paths("openrc")["k8s-1"]).toEqual([SNAPSHOT_SCRIPT_PATH, SNAPSHOT_CRON_PATH]);
    expect(paths("none")["k8s-1"]).toEqual([SNAPSHOT_SCRIPT_PATH]);
    const off = withBackup({ enabled: false });
    expect(off.nodes.flatMap((n) => backupFiles(off, n))).toEqual([]);
  });

  test("the script is valid sh and carries the configured directory, retention and CRI socket", () => {
    const spec = withBackup({ directory: "/srv/etcd-snapshots", retain: 5 });
    const script = snapshotScript(spec);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-"));
    const f = path.join(dir, "snap.sh");
    fs.writeFileSync(f, script);
    try {
      execFileSync("dash", ["-n", f]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(script).toMatch(/^dir=\/srv\/etcd-snapshots$/m);
    expect(script).toMatch(/^retain=5$/m);
    expect(script).toContain(`--runtime-endpoint ${spec.config.cluster.criSocket}`);
  });

  test.each(SNAPSHOT_INTERVAL_HOURS.map((h) => [h]))("every %i h: systemd accepts the units and fires at the same times as cron", (h) => {
    const spec = withBackup({ intervalHours: h });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-units-"));
    try {
      // verify checks ExecStart exists: point it at a binary this machine has
      fs.writeFileSync(path.join(dir, "k8sbm-etcd-snapshot.service"), snapshotService().replace(SNAPSHOT_SCRIPT_PATH, "/bin/true"));
      fs.writeFileSync(path.join(dir, "k8sbm-etcd-snapshot.timer"), snapshotTimer(spec));
      execFileSync("systemd-analyze", [
        "verify",
        path.join(dir, "k8sbm-etcd-snapshot.timer"),
        path.join(dir, "k8sbm-etcd-snapshot.service"),
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const calendar = /^OnCalendar=(.*)$/m.exec(snapshotTimer(spec))![1];
    const out = execFileSync("systemd-analyze", ["calendar", "--iterations", "30", "--base-time", "2026-01-01 00:00:01 UTC", calendar], {
      env: { ...process.env, TZ: "UTC" },
    }).toString();
    const hours = [...out.matchAll(/\d{4}-\d\d-\d\d (\d\d):00:00 UTC/g)].map((m) => Number(m[1]));
    const cronHours = snapshotCron(spec).match(/^0 (\S+) \* \* \* root /m)![1];
    const expected = Array.from({ length: 24 / h }, (_, i) => i * h);
    expect([...new Set(hours)].sort((a, b) => a - b)).toEqual(expected);
    expect(cronHours).toBe(h === 24 ? "0" : `*/${h}`);
  });

  test("config: a snapshot on demand needs the script; paths and intervals are checked, naming the key", () => {
    const bad = (backup: Record<string, unknown>, key: string, message: RegExp) => {
      const c = devConfigCopy();
      c.etcdBackup = backup;
      expect(() => parseStackConfig(NAMESPACE, c, devSecretKeys)).toThrow(
        new RegExp(`${NAMESPACE}:${key.replace(/\./g, "\\.")}: .*${message.source}`),
      );
    };
    bad({ enabled: false, snapshotNow: "drill" }, "etcdBackup.snapshotNow", /enable it/);
    bad({ intervalHours: 5 }, "etcdBackup.intervalHours", /one of 1, 2, 3, 4, 6, 8, 12, 24/);
    bad({ directory: "/var/lib/etcd/backups" }, "etcdBackup.directory", /kubeadm reset empties it/);
    bad({ directory: "backups" }, "etcdBackup.directory", /absolute path/);
    bad({ snapshotNow: "a b" }, "etcdBackup.snapshotNow", /label/);
    expect(devSpec().config.etcdBackup).toEqual({
      enabled: true,
      intervalHours: 6,
      retain: 28,
      directory: "/var/backups/etcd",
      snapshotNow: "",
      localDirectory: "etcd-snapshots",
      restoreFrom: "",
    });
  });
});
