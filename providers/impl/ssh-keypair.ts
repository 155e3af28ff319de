// SshKeyPair: an ed25519 key pair generated once by the program (no host involved), e.g. a lab
// VM's host key, injected by cloud-init so the key is pinned before the first connection.
import type * as pulumi from "@pulumi/pulumi";

export interface SshKeyPairOutputs {
  comment: string;
  publicKey: string;
  privateKey: string;
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: { comment: string }) {
    const { utils } = require("ssh2") as typeof import("ssh2");
    const pair = utils.generateKeyPairSync("ed25519", { comment: inputs.comment });
    const outs: SshKeyPairOutputs = { comment: inputs.comment, publicKey: pair.public.trim(), privateKey: pair.private };
    return { id: inputs.comment, outs };
  },
  async diff(_id, olds: SshKeyPairOutputs, news: { comment: string }) {
    const changes = olds.comment !== news.comment;
    return { changes, replaces: changes ? ["comment"] : [], stables: [], deleteBeforeReplace: false };
  },
  async read(id, props: SshKeyPairOutputs) {
    return { id, props };
  },
  async delete() {},
};
