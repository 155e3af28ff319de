// Pure helpers that build the remote command lines (unit-testable, no I/O).

/** Single-quotes a string for POSIX sh. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The line sent over SSH: always `sh -c` (whatever the login shell), via `sudo -n` unless root.
 * With a timeout the command also runs under the server's `timeout` (TERM, then KILL 5 s later,
 * to its whole process group) when that exists: closing an SSH channel does not stop a command
 * and OpenSSH ignores the signal request for non-tty sessions.
 */
export function wrapCommand(command: string, user: string, timeoutMs?: number): string {
  let sh = `sh -c ${shq(command)}`;
  if (timeoutMs && timeoutMs > 0) {
    const secs = Math.max(1, Math.ceil(timeoutMs / 1000));
    const guard = `if command -v timeout >/dev/null 2>&1; then exec timeout -k 5 ${secs} sh -c "$1"; else exec sh -c "$1"; fi`;
    sh = `sh -c ${shq(guard)} k8sbm-exec ${shq(command)}`;
  }
  return user === "root" ? sh : `sudo -n ${sh}`;
}

/** Exit code readFile's script uses for "no such file" (cat never exits with it). */
export const MISSING_EXIT = 44;

export function readFileScript(path: string): string {
  const p = shq(path);
  return `if [ -e ${p} ] || [ -L ${p} ]; then exec cat -- ${p}; else exit ${MISSING_EXIT}; fi`;
}

export function checkMode(mode: number): string {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new Error(`invalid file mode ${mode}`);
  return mode.toString(8).padStart(4, "0");
}

/**
 * Atomic replace: content arrives on stdin into a temp file in the target's directory, gets
 * the exact mode, then is renamed over the target. The temp file is removed on failure.
 */
export function writeFileScript(path: string, mode: number): string {
  if (!path.startsWith("/")) throw new Error(`writeFile needs an absolute path, got ${JSON.stringify(path)}`);
  const m = checkMode(mode);
  const p = shq(path);
  return [
    "set -e",
    `d=$(dirname -- ${p})`,
    `mkdir -p -- "$d"`,
    `t=$(mktemp "$d/.k8sbm-tmp.XXXXXX")`,
    `trap 'rm -f -- "$t"' EXIT`,
    `cat > "$t"`,
    `chmod ${m} "$t"`,
    `mv -f -- "$t" ${p}`,
    "trap - EXIT",
  ].join("\n");
}
