// The SSH layer: pinned-host-key connections, exec, files. No Pulumi imports.
export {
  connect,
  closeAll,
  endpointOf,
  scanHostKey,
  stats,
  resetStats,
  isTransient,
  backoffMs,
  connectBudgetMs,
  DEFAULTS,
} from "./connection";
export type { ScanOptions } from "./connection";
export { fingerprint, parseKeyLine, keyLineOf } from "./hostkey";
export { RemoteError, ExecTimeoutError, HostKeyMismatchError, SshAuthError, SshConnectionError } from "./errors";
export { shq, wrapCommand } from "./shell";
export type { SshTarget, Host, ExecOptions, ExecResult, HostStats } from "./types";
