// FileBlock: a marked block of lines inside a file the system also owns. Only the block is
// ours: it is inserted, kept equal to the desired body, and removed on delete.
import type * as pulumi from "@pulumi/pulumi";
import { shq } from "../ssh/shell";
import { extractBlock, removeBlock, upsertBlock } from "./blocks";
import { diffOf, hostOf, type Provider } from "./common";
import type { SshTarget } from "../ssh/types";

export interface FileBlockInputs {
  connection: SshTarget;
  path: string;
  /** distinguishes several blocks in one file */
  marker: string;
  /** lines of the block, ending with a newline */
  body: string;
  position: "top" | "bottom";
}

export interface FileBlockOutputs extends FileBlockInputs {
  /** the program created the file, so delete removes it once the block is gone and it is empty */
  createdFile: boolean;
}

async function apply(inputs: FileBlockInputs): Promise<{ created: boolean }> {
  const host = await hostOf(inputs.connection);
  const raw = await host.readFile(inputs.path);
  const text = raw?.toString("utf8") ?? "";
  if (raw && extractBlock(text, inputs.marker) === inputs.body) return { created: false };
  const mode = raw ? parseInt((await host.exec(`stat -c %a ${shq(inputs.path)}`)).stdout.trim(), 8) : 0o644;
  await host.writeFile(inputs.path, upsertBlock(text, inputs.marker, inputs.body, inputs.position), mode);
  return { created: !raw };
}

export const provider: Provider<FileBlockInputs, FileBlockOutputs> = {
  async create(inputs: FileBlockInputs) {
    const { created } = await apply(inputs);
    const outs: FileBlockOutputs = { ...inputs, createdFile: created };
    return { id: `${inputs.connection.name}:${inputs.path}#${inputs.marker}`, outs };
  },

  async diff(_id, olds: FileBlockOutputs, news: FileBlockInputs) {
    return diffOf(olds as never, news as never, ["body", "position"], ["path", "marker"]);
  },

  async read(id, props: FileBlockOutputs) {
    const raw = await (await hostOf(props.connection)).readFile(props.path);
    return { id, props: { ...props, body: extractBlock(raw?.toString("utf8") ?? "", props.marker) ?? "" } };
  },

  async update(_id, olds: FileBlockOutputs, news: FileBlockInputs) {
    await apply(news);
    return { outs: { ...news, createdFile: olds.createdFile } };
  },

  async delete(_id, props: FileBlockOutputs) {
    const host = await hostOf(props.connection);
    const raw = await host.readFile(props.path);
    if (!raw) return;
    const text = raw.toString("utf8");
    const rest = removeBlock(text, props.marker);
    if (props.createdFile && rest.trim() === "") await host.exec(`rm -f ${shq(props.path)}`, { mutates: true });
    else if (rest !== text) {
      const mode = parseInt((await host.exec(`stat -c %a ${shq(props.path)}`)).stdout.trim(), 8);
      await host.writeFile(props.path, rest, mode);
    }
  },
};
