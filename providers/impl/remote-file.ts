// RemoteFile: a whole file the program owns. Probes content and mode; writes only on a
// difference; a file that existed before is backed up on the host and restored on delete.
import type * as pulumi from "@pulumi/pulumi";
import { TEMP_PREFIX, shq } from "../ssh/shell";
import type { Host, SshTarget } from "../ssh/types";
import { diffOf, hostOf, type Provider } from "./common";

export interface RemoteFileInputs {
  connection: SshTarget;
  path: string;
  content: string;
  /** octal, e.g. "0644" */
  mode: string;
}

export interface RemoteFileOutputs extends RemoteFileInputs {
  /** where the file that was there before is kept; empty when there was none */
  backup: string;
}

export const BACKUP_DIR = "/var/lib/k8s-baremetal/backup";
const backupPathOf = (path: string) => `${BACKUP_DIR}${path}`;

/**
 * Keeps the file that was there before at `backup`: the oldest one (a create retried after a
 * failure must not back up our own file), and whole or not at all — the copy goes to a temp file
 * beside the backup first, so a full disk cannot leave a truncated backup that a later delete
 * would restore. The temp file is removed on failure (and swept by a later run if killed).
 */
export function backupCommand(path: string, backup: string): string {
  const b = shq(backup);
  return (
    `[ -e ${b} ] || { d=$(dirname ${b}) && mkdir -p "$d" && t=$(mktemp "$d/${TEMP_PREFIX}XXXXXX") && ` +
    `{ cp -p ${shq(path)} "$t" && mv -f "$t" ${b}; } || { rc=$?; rm -f "$t"; exit $rc; }; }`
  );
}

export async function probeFile(host: Host, path: string): Promise<{ content: string; mode: string } | undefined> {
  const r = await host.exec(`[ -f ${shq(path)} ] || exit 3; stat -c %a ${shq(path)}`, { allowFail: true });
  if (r.code === 3) return undefined;
  if (r.code !== 0) await host.exec(`stat -c %a ${shq(path)}`); // rethrows with stderr
  const content = (await host.readFile(path)) ?? Buffer.alloc(0);
  return { content: content.toString("utf8"), mode: r.stdout.trim().padStart(4, "0") };
}

async function write(host: Host, inputs: RemoteFileInputs): Promise<void> {
  await host.writeFile(inputs.path, inputs.content, parseInt(inputs.mode, 8));
}

export const provider: Provider<RemoteFileInputs, RemoteFileOutputs> = {
  async create(inputs: RemoteFileInputs) {
    const host = await hostOf(inputs.connection);
    const current = await probeFile(host, inputs.path);
    let backup = "";
    if (current && (current.content !== inputs.content || current.mode !== inputs.mode)) {
      backup = backupPathOf(inputs.path);
      await host.exec(backupCommand(inputs.path, backup), { mutates: true });
    }
    if (!current || backup) await write(host, inputs);
    const outs: RemoteFileOutputs = { ...inputs, backup };
    return { id: `${inputs.connection.name}:${inputs.path}`, outs };
  },

  async diff(_id, olds: RemoteFileOutputs, news: RemoteFileInputs) {
    return diffOf(olds as never, news as never, ["content", "mode"], ["path"]);
  },

  async read(id, props: RemoteFileOutputs) {
    const current = await probeFile(await hostOf(props.connection), props.path);
    return { id, props: { ...props, content: current?.content ?? "", mode: current?.mode ?? "absent" } };
  },

  async update(_id, olds: RemoteFileOutputs, news: RemoteFileInputs) {
    const host = await hostOf(news.connection);
    const current = await probeFile(host, news.path);
    if (!current || current.content !== news.content || current.mode !== news.mode) await write(host, news);
    return { outs: { ...news, backup: olds.backup } };
  },

  async delete(_id, props: RemoteFileOutputs) {
    const host = await hostOf(props.connection);
    const cmd = props.backup
      ? `if [ -e ${shq(props.backup)} ]; then mv -f ${shq(props.backup)} ${shq(props.path)}; else rm -f ${shq(props.path)}; fi`
      : `rm -f ${shq(props.path)}`;
    await host.exec(cmd, { mutates: true });
  },
};
