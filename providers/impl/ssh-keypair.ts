// SshKeyPair: an ed25519 key pair generated once by the program (no host involved), e.g. a lab
// VM's host key, injected by cloud-init so the key is pinned before the first connection.
import type * as pulumi from "@pulumi/pulumi";
import type { Provider } from "./common";

export interface SshKeyPairInputs {
  comment: string;
}

export interface SshKeyPairOutputs extends SshKeyPairInputs {
  publicKey: string;
  privateKey: string;
}

export const provider: Provider<SshKeyPairInputs, SshKeyPairOutputs> = {
  async create(inputs: SshKeyPairInputs) {
    const { utils } = require("ssh2") as typeof import("ssh2");
    const pair = utils.generateKeyPairSync("ed25519", { comment: inputs.comment });
    const outs: SshKeyPairOutputs = { comment: inputs.comment, publicKey: pair.public.trim(), privateKey: pair.private };
    return { id: inputs.comment, outs };
  },
  async diff(_id, olds: SshKeyPairOutputs, news: SshKeyPairInputs) {
    const changes = olds.comment !== news.comment;
    return { changes, replaces: changes ? ["comment"] : [], stables: [], deleteBeforeReplace: false };
  },
  async read(id, props: SshKeyPairOutputs) {
    return { id, props };
  },
  async delete() {},
};
