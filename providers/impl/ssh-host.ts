// SshHost: the node's identity. Pins its SSH host key (given in config, or recorded on first
// connect) and checks it on every preview/up/refresh, so a replaced or spoofed host fails
// loudly before anything is touched.
import type * as pulumi from "@pulumi/pulumi";
import { fingerprint, scanHostKey } from "../ssh";
import { hostOf, type Provider } from "./common";
import type { SshTarget } from "../ssh/types";

export interface SshHostInputs {
  connection: Omit<SshTarget, "hostKey">;
  /** the key from config; when absent the first key seen is recorded and enforced from then on */
  pinnedHostKey?: string;
}

export interface SshHostOutputs extends SshHostInputs {
  hostKey: string;
  fingerprint: string;
  connection: SshTarget;
}

async function verify(conn: Omit<SshTarget, "hostKey">, hostKey: string): Promise<SshHostOutputs["connection"]> {
  const full = { ...conn, hostKey };
  await (await hostOf(full)).exec("true");
  return full;
}

export const provider: Provider<SshHostInputs, SshHostOutputs> = {
  async create(inputs: SshHostInputs) {
    const hostKey =
      inputs.pinnedHostKey ??
      (await scanHostKey({ host: inputs.connection.host, port: inputs.connection.port, timeoutMs: inputs.connection.connectTimeoutMs }));
    const connection = await verify(inputs.connection, hostKey);
    const outs: SshHostOutputs = { ...inputs, connection, hostKey, fingerprint: fingerprint(hostKey) };
    return { id: inputs.connection.name, outs };
  },

  // Every preview/up checks the live key against the recorded one (one pooled connection).
  async diff(_id, olds: SshHostOutputs, news: SshHostInputs) {
    const wanted = news.pinnedHostKey ?? olds.hostKey;
    await verify(news.connection, wanted);
    const changes = wanted !== olds.hostKey;
    return { changes, replaces: [], stables: [], deleteBeforeReplace: false };
  },

  async read(id, props: SshHostOutputs) {
    await verify(props.connection, props.hostKey);
    return { id, props };
  },

  async update(_id, olds: SshHostOutputs, news: SshHostInputs) {
    const hostKey = news.pinnedHostKey ?? olds.hostKey;
    const connection = await verify(news.connection, hostKey);
    return { outs: { ...news, connection, hostKey, fingerprint: fingerprint(hostKey) } };
  },

  // Nothing on the host belongs to this resource.
  async delete() {},
};
