// Restoring from a snapshot: the files preview checks (config.ts restoreFiles), the command the
// first control plane runs before `kubeadm init`, and how a new cluster generation reaches the joins.
// The restore itself runs live in test/e2e/cluster.test.ts (the restore drill).
import { createHash } from "crypto";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { restoreFiles } from "../../config";
import { ConfigError } from "../../model/parse";
import { UNKNOWN } from "../../providers/impl/common";
import { RESTORE_PKI, RESTORE_SNAPSHOT, initCommand, restoreEtcdCommand } from "../../providers/impl/kubeadm-commands";
import { provider as join } from "../../providers/impl/kubeadm-join";
import { controlPlaneMembership } from "../fixtures/membership";

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

const made: string[] = [];
afterAll(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A snapshot as the script leaves it: <name>, <name>.pki.tar and <name>.sha256 listing both. */
function snapshotDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-restore-"));
  made.push(dir);
  const name = "etcd-k8s-2-20261202T101500Z.db";
  fs.writeFileSync(path.join(dir, name), "etcd data");
  fs.writeFileSync(path.join(dir, `${name}.pki.tar`), "ca keys");
  fs.writeFileSync(path.join(dir, `${name}.sha256`), `${sha("etcd data")}  ${name}\n${sha("ca keys")}  ${name}.pki.tar\n`);
  return path.join(dir, name);
}

describe("etcdBackup.restoreFrom at preview", () => {
  test("an intact snapshot: both files and their sha256", () => {
    const db = snapshotDir();
    expect(restoreFiles("k8s-baremetal", db)).toEqual({
      snapshot: db,
      pki: `${db}.pki.tar`,
      sha256: sha("etcd data"),
      pkiSha256: sha("ca keys"),
    });
  });

  test.each([
    [
      "the CA archive is missing",
      (db: string) => fs.rmSync(`${db}.pki.tar`),
      /\.pki\.tar does not exist: name a snapshot this program took/,
    ],
    ["the checksums are missing", (db: string) => fs.rmSync(`${db}.sha256`), /\.sha256 does not exist/],
    ["the snapshot was altered", (db: string) => fs.appendFileSync(db, "!"), /\.db does not match its sha256 in .*: damaged or replaced/],
    ["the CA archive was altered", (db: string) => fs.writeFileSync(`${db}.pki.tar`, "other keys"), /\.pki\.tar does not match its sha256/],
  ])("refused, naming the key, when %s", (_what, spoil, message) => {
    const db = snapshotDir();
    spoil(db);
    let err: unknown;
    try {
      restoreFiles("k8s-baremetal", db);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(new RegExp(`k8s-baremetal:etcdBackup\\.restoreFrom: .*${message.source}`));
  });
});

describe("the restore on the first control plane", () => {
  const cmd = restoreEtcdCommand("/etc/kubernetes/kubeadm-init.yaml", "k8s-1", "10.118.12.20");

  test("CAs back first, then etcdutl from kubeadm's etcd image restores a one-member cluster of this node", () => {
    execFileSync("dash", ["-n"], { input: cmd });
    const lines = cmd.split("\n");
    expect(lines[1]).toBe(`tar -C /etc/kubernetes -xf ${RESTORE_PKI}`);
    expect(cmd).toContain(
      `etcdutl snapshot restore ${RESTORE_SNAPSHOT} --name 'k8s-1' --initial-cluster 'k8s-1=https://10.118.12.20:2380' ` +
        "--initial-advertise-peer-urls 'https://10.118.12.20:2380'",
    );
    expect(cmd).toContain("ctr -n k8s.io run --rm --mount type=bind,src=/var/lib,dst=/var/lib,options=rbind:rw");
    // the uploaded snapshot and CAs do not stay on the node
    expect(lines[lines.length - 1]).toMatch(/^rm -rf \S+ \/var\/lib\/k8s-baremetal\/restore$/);
    expect(initCommand("/c.yaml", true)).toBe(
      "kubeadm init --config '/c.yaml' --upload-certs --ignore-preflight-errors=DirAvailable--var-lib-etcd",
    );
    expect(initCommand("/c.yaml")).not.toContain("ignore-preflight");
  });
});

describe("a cluster made anew reaches every membership", () => {
  // recorded certificates far off: no renewal due (test/unit/certificates.test.ts)
  const olds = controlPlaneMembership({ controlPlanes: [], generation: "111" });
  const diff = (generation: string) => join.diff("id", olds, { ...olds, generation }).then((d) => d.changes);

  test("a new generation is a change (the node joins again); the same one is not", async () => {
    expect(await diff("222")).toBe(true);
    expect(await diff("111")).toBe(false);
  });

  test("a generation not known yet (preview while the cluster resource updates) is not a change by itself", async () => {
    expect(await diff(UNKNOWN)).toBe(false);
  });
});
