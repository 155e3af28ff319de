// The contract between dynamic providers and the SSH layer. No Pulumi imports here.

export interface SshTarget {
  /** node name, used in every error message */
  name: string;
  host: string;
  port: number;
  user: string;
  /** OpenSSH/PEM private key text (a secret: never logged) */
  privateKey: string;
  /** pinned host key, OpenSSH public key line "<type> <base64>"; required by connect() */
  hostKey: string;
  connectTimeoutMs?: number;
  /** connect attempts after the first, with exponential backoff */
  retries?: number;
  /**
   * A machine just started (a lab VM booting): transient failures are retried past `retries`
   * until this long after the first attempt.
   */
  bootWaitMs?: number;
  /**
   * A jump host (OpenSSH's ProxyJump): the connection to host:port is a TCP channel opened from
   * this host, verified end to end against `hostKey`; the jump host has its own pinned key.
   * One connection to a jump host carries every node behind it.
   */
  via?: SshTarget;
}

export interface ExecOptions {
  stdin?: string | Buffer;
  /** resolve with a non-zero code instead of throwing RemoteError */
  allowFail?: boolean;
  /** this command changes the host (counted separately from probes) */
  mutates?: boolean;
  /** shown in errors instead of the command text (when the command embeds something sensitive) */
  redactedAs?: string;
  timeoutMs?: number;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** A connected host. Commands run through `sh -c` as the SSH user (root, or sudo -n when not root). */
export interface Host {
  readonly name: string;
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** undefined when the file does not exist */
  readFile(path: string): Promise<Buffer | undefined>;
  /** atomic replace (temp file + rename) with the given octal mode, e.g. 0o644 */
  writeFile(path: string, content: string | Buffer, mode: number): Promise<void>;
  /** a TCP stream to host:port opened from the node (ssh -L), for the API tunnel; holdProcess
   * false: the open channel does not keep the process alive */
  forwardOut(host: string, port: number, opts?: { holdProcess?: boolean }): Promise<import("stream").Duplex>;
}

export interface HostStats {
  /** TCP connects tried, retries included */
  connectAttempts: number;
  connections: number;
  commands: number;
  mutatingCommands: number;
}
