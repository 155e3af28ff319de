// EtcdSnapshot: an on-demand etcd snapshot copied to the machine running Pulumi. A new `trigger`
// (etcdBackup.snapshotNow) runs the control planes' snapshot script (render/etcd-backup.ts) on the
// first that can, copies the snapshot here with the cluster's CAs (<file>.pki.tar), the sha256 of
// both and the status, and checks each copy against the node's sha256. The resource stands for "the snapshot named by the trigger is here":
// a copy that went missing is taken again; delete leaves every copy (backups outlive the stack).
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import type { SshTarget } from "../ssh/types";
import { trimOutput } from "../ssh/errors";
import { changed, hostOf, type Provider } from "./common";

export interface EtcdSnapshotInputs {
  /** every control plane, in config order: the first that has a running etcd takes it */
  controlPlanes: SshTarget[];
  /** the snapshot script on the control planes; it prints the snapshot's path */
  scriptPath: string;
  trigger: string;
  /** absolute, on this machine */
  localDirectory: string;
}

export interface EtcdSnapshotOutputs extends EtcdSnapshotInputs {
  /** the control plane that took it */
  node: string;
  /** where it stays on that node (until its retention removes it) */
  remotePath: string;
  /** the local copy */
  file: string;
  sha256: string;
  bytes: number;
  /** etcd's revision in the snapshot (etcdutl snapshot status) */
  revision: number;
}

/** etcd snapshots take seconds; a large database over a slow link may take minutes */
const SNAPSHOT_TIMEOUT_MS = 10 * 60_000;

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** Writes `data` to `file` whole or not at all, readable by its owner only (a snapshot holds every Secret). */
function writeLocal(file: string, data: Buffer | string): void {
  const tmp = `${file}.part`;
  fs.writeFileSync(tmp, data, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** The local copy is there with the recorded size (cheap enough for every diff; read hashes it). */
function localCopyPresent(o: EtcdSnapshotOutputs): boolean {
  try {
    return !!o.file && fs.statSync(o.file).size === o.bytes;
  } catch {
    return false;
  }
}

export async function takeSnapshot(i: EtcdSnapshotInputs): Promise<Omit<EtcdSnapshotOutputs, keyof EtcdSnapshotInputs>> {
  const failures: string[] = [];
  for (const c of i.controlPlanes) {
    let host;
    try {
      host = await hostOf(c);
    } catch (e) {
      failures.push(`${c.name}: ${(e as Error).message}`);
      continue;
    }
    const r = await host.exec(i.scriptPath, { mutates: true, allowFail: true, timeoutMs: SNAPSHOT_TIMEOUT_MS });
    if (r.code !== 0) {
      failures.push(`${c.name}: command "${i.scriptPath}" exited ${r.code}: ${trimOutput(r.stderr)}`);
      continue;
    }
    const remotePath = r.stdout.trim().split("\n").pop() ?? "";
    const read = async (p: string) => {
      const b = await host.readFile(p);
      if (!b) throw new Error(`${c.name}: ${p} is missing right after ${i.scriptPath} wrote it`);
      return b;
    };
    const data = await read(remotePath);
    const pki = await read(`${remotePath}.pki.tar`);
    const sums = (await read(`${remotePath}.sha256`)).toString("utf8");
    const status = (await read(`${remotePath}.status.json`)).toString("utf8");
    const name = path.basename(remotePath);
    const recorded = new Map(
      sums
        .split("\n")
        .filter(Boolean)
        .map((l) => [l.split(/\s+/)[1], l.split(/\s+/)[0]]),
    );
    for (const [file, content] of [
      [name, data],
      [`${name}.pki.tar`, pki],
    ] as const)
      if (recorded.get(file) !== sha256(content))
        throw new Error(
          `${c.name}: the copy of ${file} has sha256 ${sha256(content)}, the node recorded ${recorded.get(file) ?? "none"}: not kept`,
        );
    fs.mkdirSync(i.localDirectory, { recursive: true, mode: 0o700 });
    const file = path.join(i.localDirectory, name);
    writeLocal(`${file}.sha256`, sums);
    writeLocal(`${file}.status.json`, status);
    writeLocal(`${file}.pki.tar`, pki);
    writeLocal(file, data);
    const sum = sha256(data);
    return { node: c.name, remotePath, file, sha256: sum, bytes: data.length, revision: Number(JSON.parse(status).revision ?? 0) };
  }
  throw new Error(`no control plane could take an etcd snapshot:\n  ${failures.join("\n  ")}`);
}

const taken = async (i: EtcdSnapshotInputs): Promise<EtcdSnapshotOutputs> => ({ ...i, ...(await takeSnapshot(i)) });

export const provider: Provider<EtcdSnapshotInputs, EtcdSnapshotOutputs> = {
  async create(inputs) {
    const outs = await taken(inputs);
    return { id: `etcd-snapshot:${inputs.trigger}`, outs };
  },
  async diff(_id, olds, news) {
    const keys = changed(olds as never, news as never, ["trigger", "localDirectory", "scriptPath", "controlPlanes"]);
    const missing = !localCopyPresent(olds);
    return { changes: keys.length > 0 || missing, replaces: [], stables: [], deleteBeforeReplace: false };
  },
  async read(id, props) {
    // drift: the local copy is gone or altered -> the next `up` takes the snapshot again
    let ok = false;
    try {
      ok = sha256(fs.readFileSync(props.file)) === props.sha256;
    } catch {
      ok = false;
    }
    return { id, props: ok ? props : { ...props, file: "", bytes: 0 } };
  },
  async update(_id, olds, news) {
    const again = olds.trigger !== news.trigger || olds.localDirectory !== news.localDirectory || !localCopyPresent(olds);
    return { outs: again ? await taken(news) : { ...olds, ...news } };
  },
  // nothing: the snapshots on the nodes and here are backups, kept when the stack goes
  async delete() {},
};
