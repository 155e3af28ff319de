// What every host-touching dynamic resource takes to reach its node.
import * as pulumi from "@pulumi/pulumi";

export interface ConnectionArgs {
  name: pulumi.Input<string>;
  host: pulumi.Input<string>;
  port: pulumi.Input<number>;
  user: pulumi.Input<string>;
  /** secret */
  privateKey: pulumi.Input<string>;
  /** pinned host key line, from the node's SshHost resource */
  hostKey: pulumi.Input<string>;
  connectTimeoutMs?: pulumi.Input<number>;
  retries?: pulumi.Input<number>;
}

/** The connection object carries the private key: always stored as a secret output. */
export const CONNECTION_SECRET_OUTPUTS = ["connection"];

export function withSecretConnection(opts: pulumi.CustomResourceOptions | undefined): pulumi.CustomResourceOptions {
  return { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), ...CONNECTION_SECRET_OUTPUTS] };
}
