// Pooled SSH connections with pinned host keys, bounded retries, and per-host counters.
// One connection per (user, host, port, private key, pinned key) per process, shared by all
// callers; idle connections never keep the process alive and are closed at exit.
import { createHash } from "crypto";
import * as fs from "fs";
import * as net from "net";
import type { Duplex } from "stream";
import { Client, type ClientChannel, type ConnectConfig } from "ssh2";
import { ExecTimeoutError, HostKeyMismatchError, RemoteError, SshAuthError, SshConnectionError } from "./errors";
import { fingerprintOfBlob, hostKeyAlgorithms, keyLineOf, parseKeyLine, type PublicKey } from "./hostkey";
import { MISSING_EXIT, readFileScript, sweepTempFilesScript, wrapCommand, writeFileScript } from "./shell";
import type { ExecOptions, ExecResult, Host, HostStats, SshTarget } from "./types";

export const DEFAULTS = {
  retries: 5,
  baseDelayMs: 500,
  maxDelayMs: 8000,
  connectTimeoutMs: 20_000,
  keepaliveMs: 15_000,
  keepaliveCountMax: 3,
  /** concurrent channels per connection (OpenSSH's MaxSessions defaults to 10) */
  maxChannels: 6,
} as const;

/** Delay before connect attempt `attempt + 1` (attempt counts from 0): 0.5 s, 1 s, 2 s … capped at 8 s. */
export function backoffMs(attempt: number): number {
  return Math.min(DEFAULTS.maxDelayMs, DEFAULTS.baseDelayMs * 2 ** attempt);
}

/**
 * The longest connect() takes to give up on a host that does not answer: every attempt running
 * into the handshake timeout, plus the backoff between attempts. A run with an unreachable host
 * fails within this (testbed: 10 s, 5 retries → 75.5 s; defaults 20 s, 5 → 135.5 s); a refused or
 * reset connection fails sooner (the backoff alone: 15.5 s).
 */
export function connectBudgetMs(connectTimeoutMs: number = DEFAULTS.connectTimeoutMs, retries: number = DEFAULTS.retries): number {
  let ms = (retries + 1) * connectTimeoutMs;
  for (let attempt = 0; attempt < retries; attempt++) ms += backoffMs(attempt);
  return ms;
}

const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "EPIPE",
  "EAI_AGAIN",
]);

/** A jump host could not open the TCP channel to the node (refused, unreachable, timed out): the node may be booting. */
class JumpChannelError extends Error {}

/** Worth another attempt: refused / reset / timed out / dropped before the handshake. */
export function isTransient(err: unknown): boolean {
  // a failed jump host has had its own attempts
  if (err instanceof HostKeyMismatchError || err instanceof SshAuthError || err instanceof SshConnectionError) return false;
  if (err instanceof JumpChannelError) return true;
  const e = err as { code?: unknown; level?: unknown; message?: unknown };
  if (e?.level === "client-authentication") return false;
  if (typeof e?.code === "string" && TRANSIENT_CODES.has(e.code)) return true;
  if (e?.level === "client-timeout") return true;
  return /Timed out while waiting for handshake|Connection lost before handshake|closed before the SSH handshake|No response from server|Keepalive timeout/.test(
    String(e?.message ?? ""),
  );
}

// ---------------------------------------------------------------------------------------------
// counters

const counters = new Map<string, HostStats>();

/**
 * Count one event for a node. With K8SBM_SSH_STATS set, each event is also appended to that
 * file as it happens: the engine kills provider processes, so nothing can be written at exit.
 */
function count(name: string, field: keyof HostStats): void {
  let s = counters.get(name);
  if (!s) counters.set(name, (s = { connectAttempts: 0, connections: 0, commands: 0, mutatingCommands: 0 }));
  s[field]++;
  const file = process.env.K8SBM_SSH_STATS;
  if (file) fs.appendFileSync(file, JSON.stringify({ pid: process.pid, host: name, event: field }) + "\n");
}

/** Per node name: connection attempts, connections opened, commands run, commands run with `mutates`. */
export function stats(): Record<string, HostStats> {
  return Object.fromEntries([...counters.keys()].sort().map((k) => [k, { ...counters.get(k)! }]));
}

export function resetStats(): void {
  counters.clear();
}

let exitHooked = false;
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once("exit", () => closeAll());
}

// ---------------------------------------------------------------------------------------------
// one SSH connection

interface RawResult {
  stdout: Buffer;
  stderr: Buffer;
  code: number | null;
  signal?: string;
}

/** The channel could not be opened: the command never started, so it is safe to retry. */
class ChannelOpenError extends Error {}

/**
 * What carries a connection's bytes, as far as keeping the process alive goes: a TCP socket, or
 * a channel through a jump host's connection (which it then holds instead).
 */
interface Transport {
  ref(): void;
  unref(): void;
  destroy(err?: Error): void;
}

interface SshInternals {
  _protocol?: { ping?: () => void };
  _callbacks?: Array<(err?: Error) => void>;
}

class PooledConnection {
  closed = false;
  private busy = 0;
  private channels = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly closeHooks: Array<() => void> = [];
  private readonly kaTimer?: NodeJS.Timeout;

  constructor(
    readonly client: Client,
    private readonly sock: Transport,
    readonly endpoint: string,
  ) {
    client.on("error", () => this.markClosed());
    client.on("close", () => this.markClosed());
    sock.unref();
    // SSH-level keepalive on an unref'd timer (ssh2's own one would hold the process open).
    const internals = client as unknown as SshInternals;
    if (typeof internals._protocol?.ping === "function" && Array.isArray(internals._callbacks)) {
      let unanswered = 0;
      this.kaTimer = setInterval(() => {
        if (this.closed) return;
        if (unanswered >= DEFAULTS.keepaliveCountMax) {
          sock.destroy(new Error("Keepalive timeout"));
          return;
        }
        unanswered++;
        try {
          internals._callbacks!.push(() => {
            unanswered = 0;
          });
          internals._protocol!.ping!();
        } catch {
          /* the socket is going away; 'close' follows */
        }
      }, DEFAULTS.keepaliveMs);
      this.kaTimer.unref();
    }
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.closeHooks.push(fn);
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.kaTimer) clearInterval(this.kaTimer);
    for (const w of this.waiting.splice(0)) w();
    for (const h of this.closeHooks.splice(0)) h();
  }

  end(): void {
    this.markClosed();
    try {
      this.client.end();
    } catch {
      /* already gone */
    }
    this.sock.unref();
  }

  // The socket holds the process open only while something is in flight.
  hold(): void {
    if (this.busy++ === 0) this.sock.ref();
  }
  unhold(): void {
    if (--this.busy === 0) this.sock.unref();
  }

  private async slot(): Promise<void> {
    while (this.channels >= DEFAULTS.maxChannels && !this.closed) {
      await new Promise<void>((r) => this.waiting.push(r));
    }
    this.channels++;
  }
  private freeSlot(): void {
    this.channels--;
    this.waiting.shift()?.();
  }

  /** A direct-tcpip channel to host:port as seen from the server; holds the process while open unless told not to. */
  forward(host: string, port: number, holdProcess = true): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new ChannelOpenError("connection closed"));
        return;
      }
      if (holdProcess) this.hold();
      let held = holdProcess;
      const unhold = () => {
        if (held) {
          held = false;
          this.unhold();
        }
      };
      try {
        this.client.forwardOut("127.0.0.1", 0, host, port, (err, stream) => {
          if (err) {
            unhold();
            reject(new ChannelOpenError(err.message));
            return;
          }
          stream.on("close", unhold);
          resolve(stream);
        });
      } catch (e) {
        unhold();
        reject(new ChannelOpenError((e as Error).message));
      }
    });
  }

  async run(line: string, stdin: string | Buffer | undefined, timeoutMs: number | undefined): Promise<RawResult & { timedOut: boolean }> {
    this.hold();
    try {
      await this.slot();
    } catch (e) {
      this.unhold();
      throw e;
    }
    return new Promise((resolve, reject) => {
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        this.freeSlot();
        this.unhold();
      };
      if (this.closed) {
        release();
        reject(new ChannelOpenError("connection closed"));
        return;
      }
      const onOpen = (err: Error | undefined, stream: ClientChannel) => {
        if (err) {
          release();
          reject(new ChannelOpenError(err.message));
          return;
        }
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        let code: number | null = null;
        let signal: string | undefined;
        let exited = false;
        let settled = false;
        let timer: NodeJS.Timeout | undefined;
        const finish = (timedOut: boolean) => {
          if (settled) return;
          settled = true;
          if (timer) clearTimeout(timer);
          const raw = { stdout: Buffer.concat(out), stderr: Buffer.concat(errOut), code, signal, timedOut };
          if (!timedOut && !exited) {
            reject(new Error(`connection to ${this.endpoint} lost before the command finished`));
          } else resolve(raw);
        };
        stream.on("data", (d: Buffer) => out.push(d));
        stream.stderr.on("data", (d: Buffer) => errOut.push(d));
        stream.on("exit", (c: number | null, sig?: string) => {
          exited = true;
          code = typeof c === "number" ? c : null;
          signal = sig ?? undefined;
        });
        stream.on("error", () => undefined);
        stream.on("close", () => {
          release();
          finish(false);
        });
        if (timeoutMs && timeoutMs > 0) {
          timer = setTimeout(() => {
            // the server-side `timeout` wrapper (see wrapCommand) stops the command itself
            try {
              stream.close();
            } catch {
              /* gone */
            }
            finish(true);
            // the slot is freed when the channel closes; don't wait on a dead peer forever
            setTimeout(release, 5000).unref();
          }, timeoutMs);
        }
        if (stdin !== undefined) stream.end(stdin);
        else stream.end();
      };
      try {
        this.client.exec(line, onOpen);
      } catch (e) {
        release();
        reject(new ChannelOpenError((e as Error).message));
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// connecting

/** "host:port", or "host:port via <jump host>": how errors name where a node was reached. */
export function endpointOf(t: Pick<SshTarget, "host" | "port" | "via">): string {
  return t.via ? `${t.host}:${t.port} via ${t.via.name}` : `${t.host}:${t.port}`;
}

/** While the jump host's channel is in use, it holds the jump host's connection (and so the process). */
function jumpTransport(jump: PooledConnection, channel: Duplex): Transport {
  let held = false;
  return {
    ref: () => {
      if (!held) ((held = true), jump.hold());
    },
    unref: () => {
      if (held) ((held = false), jump.unhold());
    },
    destroy: (err) => channel.destroy(err),
  };
}

/**
 * The byte stream to t's sshd: a TCP socket, or a direct-tcpip channel opened by the jump host
 * (connected through the pool, so nodes behind one jump host share its connection). A jump host
 * that cannot be reached fails with its own name; one that cannot reach the node fails with a
 * JumpChannelError, which is retried like a refused connection.
 */
async function streamTo(
  t: Pick<SshTarget, "host" | "port" | "via" | "connectTimeoutMs">,
): Promise<{ stream: Duplex; transport: Transport }> {
  if (!t.via) {
    const sock = net.connect({ host: t.host, port: t.port });
    sock.setNoDelay(true);
    sock.setKeepAlive(true, DEFAULTS.keepaliveMs);
    return { stream: sock, transport: sock };
  }
  const jump = await pooled(t.via, validate(t.via));
  const timeoutMs = t.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
  jump.hold();
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const opening = jump.forward(t.host, t.port, false);
  // a channel that opens after we gave up is closed, not leaked
  opening.then(
    (c) => timedOut && c.destroy(),
    () => undefined,
  );
  try {
    const channel = await Promise.race([
      opening,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          reject(new JumpChannelError(`timed out after ${timeoutMs} ms`));
        }, timeoutMs);
      }),
    ]);
    const transport = jumpTransport(jump, channel);
    transport.ref(); // until the handshake is done, like a new socket
    return { stream: channel, transport };
  } catch (e) {
    if (e instanceof JumpChannelError) throw new JumpChannelError(`${t.via.name} could not reach ${t.host}:${t.port}: ${e.message}`);
    throw new JumpChannelError(`${t.via.name} could not open a channel to ${t.host}:${t.port}: ${(e as Error).message}`);
  } finally {
    if (timer) clearTimeout(timer);
    jump.unhold();
  }
}

function validate(t: SshTarget): PublicKey {
  const name = t?.name || "(unnamed node)";
  for (const k of ["name", "host", "user", "privateKey"] as const) {
    if (typeof t?.[k] !== "string" || !t[k]) throw new Error(`${name}: SSH target needs a non-empty "${k}"`);
  }
  if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535) throw new Error(`${name}: invalid SSH port ${t.port}`);
  if (!t.hostKey) {
    throw new Error(
      `${name} (${endpointOf(t)}): no pinned SSH host key; pin one in the stack config (or record it with scanHostKey after verifying it)`,
    );
  }
  try {
    const key = parseKeyLine(t.hostKey);
    hostKeyAlgorithms(key.type);
    return key;
  } catch (e) {
    throw new Error(`${name} (${endpointOf(t)}): pinned host key is unusable: ${(e as Error).message}`);
  }
}

async function openOnce(t: SshTarget, pinned: PublicKey): Promise<PooledConnection> {
  const endpoint = endpointOf(t);
  const { stream: sock, transport } = await streamTo(t);
  return new Promise((resolve, reject) => {
    const client = new Client();
    let presented: Buffer | undefined;
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      sock.destroy();
      transport.unref();
      if (presented) {
        reject(
          new HostKeyMismatchError(t.name, endpoint, fingerprintOfBlob(pinned.blob), fingerprintOfBlob(presented), keyLineOf(presented)),
        );
      } else if ((err as { level?: string }).level === "client-authentication") {
        reject(new SshAuthError(t.name, endpoint, t.user, err.message));
      } else reject(err);
    };
    client.on("error", fail);
    client.on("close", () => fail(new Error("connection closed before the SSH handshake completed")));
    client.on("ready", () => {
      if (settled) return;
      settled = true;
      resolve(new PooledConnection(client, transport, endpoint));
    });
    const config: ConnectConfig = {
      sock,
      username: t.user,
      privateKey: t.privateKey,
      readyTimeout: t.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      keepaliveInterval: 0,
      algorithms: { serverHostKey: hostKeyAlgorithms(pinned.type) as never },
      hostVerifier: (key: Buffer) => {
        if (Buffer.isBuffer(key) && key.equals(pinned.blob)) return true;
        presented = Buffer.from(key);
        return false;
      },
    };
    try {
      client.connect(config);
    } catch (e) {
      // e.g. an unparsable private key (the message names no key material)
      fail(new Error(`cannot start SSH connection: ${(e as Error).message}`));
    }
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function openWithRetry(t: SshTarget, pinned: PublicKey): Promise<PooledConnection> {
  const retries = Math.max(0, t.retries ?? DEFAULTS.retries);
  const bootDeadline = Date.now() + (t.bootWaitMs ?? 0);
  for (let attempt = 0; ; attempt++) {
    try {
      count(t.name, "connectAttempts");
      const c = await openOnce(t, pinned);
      count(t.name, "connections");
      return c;
    } catch (e) {
      if (e instanceof HostKeyMismatchError || e instanceof SshAuthError) throw e;
      if (!isTransient(e) || (attempt >= retries && Date.now() >= bootDeadline)) {
        throw new SshConnectionError(t.name, endpointOf(t), (e as Error).message, attempt + 1);
      }
      await sleep(backoffMs(attempt));
    }
  }
}

const pool = new Map<string, Promise<PooledConnection>>();
/** established connections, so closeAll can end them synchronously (it also runs at 'exit') */
const live = new Set<PooledConnection>();

function poolKey(t: SshTarget): string {
  const keyId = createHash("sha256").update(t.privateKey).digest("hex");
  // the pinned key is part of the identity: a caller never gets a connection verified against
  // another pin; so is the path (the same address behind another jump host is another host)
  const pin = t.hostKey.trim().split(/\s+/).slice(0, 2).join(" ");
  return JSON.stringify([t.user, t.host, t.port, keyId, pin, t.via ? poolKey(t.via) : null]);
}

async function pooled(t: SshTarget, pinned: PublicKey): Promise<PooledConnection> {
  const key = poolKey(t);
  for (;;) {
    const existing = pool.get(key);
    if (!existing) break;
    const c = await existing; // concurrent callers share one attempt (and its failure)
    if (!c.closed) return c;
    if (pool.get(key) === existing) pool.delete(key);
  }
  const p = openWithRetry(t, pinned);
  pool.set(key, p);
  const forget = () => {
    if (pool.get(key) === p) pool.delete(key);
  };
  p.then((c) => {
    live.add(c);
    c.onClose(() => {
      live.delete(c);
      forget();
    });
  }, forget);
  return p;
}

/** Closes every pooled connection (also done automatically at process exit). */
export function closeAll(): void {
  const pending = [...pool.values()];
  pool.clear();
  for (const c of [...live]) c.end();
  live.clear();
  for (const p of pending)
    p.then(
      (c) => c.end(),
      () => undefined,
    );
}

// ---------------------------------------------------------------------------------------------
// temp files of interrupted runs

/**
 * When this run started: the engine starts one provider process per `pulumi up`, so the
 * process's start. Temp files modified before it belong to an earlier run.
 */
const RUN_STARTED_MS = Date.now() - process.uptime() * 1000;
/** slack for the time a command takes to reach the host: never sweep this run's own files */
const SWEEP_MARGIN_S = 5;
/** hosts (pool keys) whose stale temp files this process has swept */
const swept = new Set<string>();

/**
 * The first command that changes a host in this process first removes the temp files an
 * interrupted earlier run left there (sweepTempFilesScript). It rides on that command — no
 * extra round trip, nothing on a run that changes nothing — and its output and status are
 * discarded: a failed sweep never fails the command.
 */
function withSweep(t: SshTarget, command: string): string {
  const key = poolKey(t);
  if (swept.has(key)) return command;
  swept.add(key);
  const age = Math.ceil((Date.now() - RUN_STARTED_MS) / 1000) + SWEEP_MARGIN_S;
  return `( ${sweepTempFilesScript(age)}\n) >/dev/null 2>&1 </dev/null\n${command}`;
}

// ---------------------------------------------------------------------------------------------
// Host

/**
 * A channel that failed to open never ran anything, so it is safe to try again: on a fresh
 * connection when the pooled one died, or after a short pause when the server refused it
 * (sshd frees a session slot only once it has reaped the previous command, a little after
 * that command's channel closed, so bursts can briefly exceed MaxSessions).
 */
async function retryOpen(e: unknown, conn: PooledConnection, attempt: number): Promise<boolean> {
  if (!(e instanceof ChannelOpenError) || attempt >= 8) return false;
  if (!conn.closed) await sleep(Math.min(1000, 50 * 2 ** attempt));
  return true;
}

class Session implements Host {
  readonly name: string;
  constructor(
    private readonly target: SshTarget,
    private readonly pinned: PublicKey,
  ) {
    this.name = target.name;
  }

  private async raw(command: string, shown: string, opts: ExecOptions): Promise<RawResult> {
    const t = this.target;
    count(t.name, "commands");
    if (opts.mutates) count(t.name, "mutatingCommands");
    const line = wrapCommand(opts.mutates ? withSweep(t, command) : command, t.user, opts.timeoutMs);
    let result: RawResult & { timedOut: boolean };
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      const conn = await pooled(t, this.pinned);
      try {
        result = await conn.run(line, opts.stdin, opts.timeoutMs);
        break;
      } catch (e) {
        if (await retryOpen(e, conn, attempt)) continue;
        throw new SshConnectionError(t.name, endpointOf(t), `while running ${JSON.stringify(shown)}: ${(e as Error).message}`);
      }
    }
    // the server-side guard may win the race at the deadline: 124 = timeout(1) fired
    if (opts.timeoutMs && result.code === 124 && Date.now() - started >= opts.timeoutMs) result.timedOut = true;
    if (result.timedOut) {
      throw new ExecTimeoutError(t.name, t.host, shown, opts.timeoutMs!, result.stderr.toString("utf8"), result.stdout.toString("utf8"));
    }
    return result;
  }

  private fail(shown: string, r: RawResult): RemoteError {
    return new RemoteError(
      this.target.name,
      this.target.host,
      shown,
      r.code ?? -1,
      r.stderr.toString("utf8"),
      r.stdout.toString("utf8"),
      r.code === null ? (r.signal ?? "unknown") : undefined,
    );
  }

  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const shown = opts.redactedAs ?? command;
    const r = await this.raw(command, shown, opts);
    const res = { stdout: r.stdout.toString("utf8"), stderr: r.stderr.toString("utf8"), code: r.code ?? -1 };
    if (res.code !== 0 && !opts.allowFail) throw this.fail(shown, r);
    return res;
  }

  async forwardOut(host: string, port: number, opts: { holdProcess?: boolean } = {}): Promise<Duplex> {
    const t = this.target;
    for (let attempt = 0; ; attempt++) {
      const conn = await pooled(t, this.pinned);
      try {
        return await conn.forward(host, port, opts.holdProcess ?? true);
      } catch (e) {
        if (await retryOpen(e, conn, attempt)) continue;
        throw new SshConnectionError(t.name, endpointOf(t), `cannot open a tunnel to ${host}:${port}: ${(e as Error).message}`);
      }
    }
  }

  async readFile(path: string): Promise<Buffer | undefined> {
    const shown = `read ${path}`;
    const r = await this.raw(readFileScript(path), shown, {});
    if (r.code === 0) return r.stdout;
    if (r.code === MISSING_EXIT && r.stderr.length === 0) return undefined;
    throw this.fail(shown, r);
  }

  async writeFile(path: string, content: string | Buffer, mode: number): Promise<void> {
    const shown = `write ${path} (mode ${mode.toString(8).padStart(4, "0")})`;
    const data = Buffer.from(content);
    const sent = { size: data.length, sha256: createHash("sha256").update(data).digest("hex") };
    const r = await this.raw(writeFileScript(path, mode, sent), shown, { stdin: data, mutates: true });
    if (r.code !== 0) throw this.fail(shown, r);
  }
}

/**
 * A connected host. Connections are pooled per process: concurrent and later callers with the
 * same (user, host, port, key, pinned host key) share one connection. Transient failures are
 * retried with exponential backoff; a host key mismatch or an auth failure fails at once.
 */
export async function connect(target: SshTarget): Promise<Host> {
  const pinned = validate(target);
  hookExit();
  await pooled(target, pinned);
  return new Session(target, pinned);
}

// ---------------------------------------------------------------------------------------------
// host key scanning

export interface ScanOptions {
  host: string;
  port: number;
  timeoutMs?: number;
  /** name for error messages */
  name?: string;
  /** extra attempts on transient failures (default 0) */
  retries?: number;
  /** only accept this key type (default: the server's preferred of ed25519, ecdsa, rsa) */
  keyType?: string;
  /** reach the host through this jump host (its own key pinned) */
  via?: SshTarget;
}

async function scanOnce(o: ScanOptions): Promise<string> {
  const { stream, transport } = await streamTo({ host: o.host, port: o.port, via: o.via, connectTimeoutMs: o.timeoutMs });
  return new Promise((resolve, reject) => {
    const client = new Client();
    let key: Buffer | undefined;
    let done = false;
    const settle = (err?: Error) => {
      if (done) return;
      done = true;
      try {
        client.end();
      } catch {
        /* gone */
      }
      stream.destroy();
      transport.unref();
      if (key) resolve(keyLineOf(key));
      else reject(err ?? new Error("no host key presented"));
    };
    client.on("error", (e) => settle(e));
    client.on("close", () => settle(new Error("connection closed before the server presented a host key")));
    client.on("ready", () => settle(new Error("unexpectedly authenticated")));
    try {
      client.connect({
        sock: stream,
        username: "k8sbm-hostkey-scan",
        readyTimeout: o.timeoutMs ?? DEFAULTS.connectTimeoutMs,
        ...(o.keyType ? { algorithms: { serverHostKey: hostKeyAlgorithms(o.keyType) as never } } : {}),
        hostVerifier: (k: Buffer) => {
          key = Buffer.from(k);
          return false; // record only: never authenticate to an unverified host
        },
      });
    } catch (e) {
      settle(e as Error);
    }
  });
}

/** The host key a server presents, as an OpenSSH line "<type> <base64>". Trust is the caller's call. */
export async function scanHostKey(o: ScanOptions): Promise<string> {
  const name = o.name ?? "host key scan";
  for (let attempt = 0; ; attempt++) {
    try {
      return await scanOnce(o);
    } catch (e) {
      if (!isTransient(e) || attempt >= (o.retries ?? 0)) {
        throw new SshConnectionError(name, endpointOf(o), (e as Error).message, attempt + 1);
      }
      await sleep(backoffMs(attempt));
    }
  }
}
