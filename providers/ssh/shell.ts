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

/**
 * Every temp file the program makes on a host starts with this: a file write's beside its target
 * (writeFileScript), a command's in TEMP_DIR (tempFileCommand). A run that was killed can leave
 * them behind (a trap does not run on SIGKILL or a power cut); the next run's sweep finds them
 * by this prefix.
 */
export const TEMP_PREFIX = ".k8sbm-tmp.";
/** where commands put their temp files (not $TMPDIR: sudo resets it, and the sweep must know) */
export const TEMP_DIR = "/tmp";
/** `mktemp` for a command's temp file: a name the sweep recognises */
export const tempFileCommand = `mktemp ${TEMP_DIR}/${TEMP_PREFIX}XXXXXX`;
/** where the program writes files (their temp files go beside them), searched below on a sweep */
export const WRITTEN_TREES = ["/etc", "/var/lib/k8s-baremetal"];

/**
 * Removes temp files an earlier, interrupted run left: only files named with TEMP_PREFIX (in
 * TEMP_DIR, or anywhere below WRITTEN_TREES), regular files owned by the user the commands run
 * as, last modified before this run started — `startedSecondsAgo` counted back from the host's
 * own clock, so the operator's clock does not matter; this run's own temp files (newer) stay.
 * Prints the removed paths. Reads nothing from stdin.
 */
export function sweepTempFilesScript(startedSecondsAgo: number): string {
  if (!Number.isSafeInteger(startedSecondsAgo) || startedSecondsAgo < 0) throw new Error(`invalid run age ${startedSecondsAgo}`);
  const name = shq(`${TEMP_PREFIX}*`);
  return [
    `c=$(( $(date +%s) - ${startedSecondsAgo} ))`,
    `u=$(id -u)`,
    `{ find ${TEMP_DIR} -maxdepth 1 -type f -name ${name} -user "$u"; find ${WRITTEN_TREES.join(" ")} -xdev -type f -name ${name} -user "$u"; } 2>/dev/null </dev/null |`,
    `while IFS= read -r f; do m=$(stat -c %Y -- "$f" 2>/dev/null) && [ "$m" -lt "$c" ] && rm -f -- "$f" && printf '%s\\n' "$f"; done`,
  ].join("\n");
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

/** Exit code of writeFileScript when what arrived is not what was sent (size or sha256). */
export const TRANSFER_EXIT = 45;

/** Exit code of writeFileScript when the new content cannot be stored beside the target (e.g. a full disk). */
export const STORE_EXIT = 46;

/**
 * Atomic replace: content arrives on stdin into a temp file in the target's directory, its size
 * and sha256 are checked against what was sent (a transfer cut short or altered never replaces
 * the file), it gets the exact mode, then is renamed over the target. The temp file is removed
 * on failure and on HUP/INT/TERM. A temp file that cannot be made or written (a full or read-only
 * file system) fails with STORE_EXIT, the target untouched.
 */
export function writeFileScript(path: string, mode: number, sent: { size: number; sha256: string }): string {
  if (!path.startsWith("/")) throw new Error(`writeFile needs an absolute path, got ${JSON.stringify(path)}`);
  const m = checkMode(mode);
  if (!Number.isSafeInteger(sent.size) || sent.size < 0) throw new Error(`invalid size ${sent.size}`);
  if (!/^[0-9a-f]{64}$/.test(sent.sha256)) throw new Error(`invalid sha256 ${JSON.stringify(sent.sha256)}`);
  const p = shq(path);
  const refuse = (what: string) =>
    `{ echo "k8sbm: ${what}; ${path.replace(/["$`\\]/g, "")} was not replaced" >&2; exit ${TRANSFER_EXIT}; }`;
  const cannotStore = (what: string) =>
    `{ echo "k8sbm: ${what}; ${path.replace(/["$`\\]/g, "")} was not replaced" >&2; exit ${STORE_EXIT}; }`;
  return [
    "set -e",
    `d=$(dirname -- ${p})`,
    `mkdir -p -- "$d"`,
    `t=$(mktemp "$d/${TEMP_PREFIX}XXXXXX") || ${cannotStore("cannot create a temp file in $d")}`,
    `trap 'rm -f -- "$t"' EXIT`,
    "trap 'exit 129' HUP",
    "trap 'exit 130' INT",
    "trap 'exit 143' TERM",
    `cat > "$t" || ${cannotStore("cannot store the new content in $d (a full file system?)")}`,
    `n=$(wc -c < "$t" | tr -d ' ')`,
    `[ "$n" = ${sent.size} ] || ${refuse(`received $n bytes, ${sent.size} were sent`)}`,
    `h=$(sha256sum < "$t" | cut -d ' ' -f 1)`,
    `[ "$h" = ${sent.sha256} ] || ${refuse("the received content's sha256 differs from what was sent")}`,
    `chmod ${m} "$t"`,
    `mv -f -- "$t" ${p}`,
    "trap - EXIT",
  ].join("\n");
}
