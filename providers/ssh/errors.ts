// Errors of the SSH layer. Messages name the node and endpoint; they never contain stdin
// content or key material.

const STDERR_LIMIT = 2048;

/**
 * Remote output made safe for the operator's terminal: escape sequences (CSI, OSC, others) and
 * every control character except newline and tab are removed, and so are Unicode bidi controls
 * (which reorder what is shown). A hostile node cannot retitle, recolour or rewrite the screen.
 */
export function stripControl(s: string): string {
  return s
    .replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)?/g, "") // OSC … BEL/ST
    .replace(/\x1b\[[0-?]*[ -/]*[@-~]/g, "") // CSI
    .replace(/\x9b[0-?]*[ -/]*[@-~]/g, "") // 8-bit CSI
    .replace(/\x1b[@-_]?/g, "")
    .replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "");
}

/** Keeps the head and the tail of long stderr (both usually matter), ~2 KB in total, control characters stripped. */
export function trimOutput(s: string, limit = STDERR_LIMIT): string {
  const t = stripControl(s).trim();
  if (t.length <= limit) return t;
  const half = Math.floor(limit / 2);
  return `${t.slice(0, half)}\n… [${t.length - 2 * half} chars omitted] …\n${t.slice(-half)}`;
}

/** A command ran and failed (non-zero exit, killed by a signal, or timed out). */
export class RemoteError extends Error {
  constructor(
    readonly node: string,
    readonly host: string,
    /** the command text, or ExecOptions.redactedAs */
    readonly command: string,
    /** exit code; -1 when the command was killed by a signal or timed out */
    readonly code: number,
    readonly stderr: string,
    readonly stdout: string = "",
    readonly signal?: string,
    message?: string,
  ) {
    super(
      message ??
        `${node} (${host}): command ${JSON.stringify(command)} ${signal ? `killed by signal ${signal}` : `exited ${code}`}` +
          (stderr.trim() ? `: ${trimOutput(stderr)}` : " (no stderr)"),
    );
    this.name = "RemoteError";
  }
}

/** The command did not finish within ExecOptions.timeoutMs (it was sent SIGKILL). */
export class ExecTimeoutError extends RemoteError {
  constructor(
    node: string,
    host: string,
    command: string,
    readonly timeoutMs: number,
    stderr: string,
    stdout: string,
  ) {
    super(
      node,
      host,
      command,
      -1,
      stderr,
      stdout,
      undefined,
      `${node} (${host}): command ${JSON.stringify(command)} timed out after ${timeoutMs} ms` +
        (stderr.trim() ? `: ${trimOutput(stderr)}` : ""),
    );
    this.name = "ExecTimeoutError";
  }
}

/** The server presented a host key other than the pinned one. Never retried. */
export class HostKeyMismatchError extends Error {
  constructor(
    readonly node: string,
    readonly endpoint: string,
    readonly expectedFingerprint: string,
    readonly presentedFingerprint: string,
    /** the presented key as an OpenSSH line (public data, handy for re-recording) */
    readonly presentedKey: string,
  ) {
    super(
      `${node} (${endpoint}): SSH host key mismatch — expected ${expectedFingerprint}, ` +
        `the server presented ${presentedFingerprint}. The host was reinstalled/replaced, or someone ` +
        `is intercepting the connection. Verify the new key out of band (e.g. \`ssh-keygen -lf ` +
        `/etc/ssh/ssh_host_*_key.pub\` on the console), then update the pinned key for ${node} in the ` +
        `stack config (\`pulumi config\`) or re-record it; nothing was changed on the host.`,
    );
    this.name = "HostKeyMismatchError";
  }
}

/** The server rejected our credentials. Never retried. */
export class SshAuthError extends Error {
  constructor(
    readonly node: string,
    readonly endpoint: string,
    readonly user: string,
    detail: string,
  ) {
    super(
      `${node} (${endpoint}): SSH authentication as ${user} failed (${detail}); check the private key ` +
        `configured for ${node} and ~${user}/.ssh/authorized_keys on the host`,
    );
    this.name = "SshAuthError";
  }
}

/** Could not establish (or lost) the SSH connection. */
export class SshConnectionError extends Error {
  constructor(
    readonly node: string,
    readonly endpoint: string,
    detail: string,
    readonly attempts = 1,
  ) {
    super(`${node} (${endpoint}): SSH connection failed${attempts > 1 ? ` after ${attempts} attempts` : ""}: ${detail}`);
    this.name = "SshConnectionError";
  }
}
