// Service: a system service enabled at boot and running, through the node's init system.
// Config changes reach it by reload (keepalived keeps its VIPs) or restart, keyed by tokens
// (hashes of the files it reads). Delete puts back the state it found.
import type * as pulumi from "@pulumi/pulumi";
import type { InitSystem } from "../../model/schema";
import { serviceCommands } from "../os/configurer";
import type { Host, SshTarget } from "../ssh/types";
import { diffOf, hostOf, type Provider } from "./common";
import { trimOutput } from "../ssh/errors";

export interface ServiceInputs {
  connection: SshTarget;
  init: InitSystem;
  name: string;
  enabled: boolean;
  /** null: not ours to decide (kubeadm starts the kubelet) */
  running: boolean | null;
  /** changes -> reload */
  reloadToken: string;
  /** changes -> restart */
  restartToken: string;
  /** polled after a start/reload until it exits 0 (e.g. "the VIP answers"); "" = none */
  readyCheck: string;
}

export interface ServiceOutputs extends ServiceInputs {
  before: { enabled: boolean; running: boolean };
}

export interface ServiceState {
  enabled: boolean;
  running: boolean;
}

export async function probeService(host: Host, init: InitSystem, name: string): Promise<ServiceState> {
  const c = serviceCommands(init);
  const running = (await host.exec(c.isRunning(name), { allowFail: true })).code === 0;
  const enabledCmd = c.isEnabled(name);
  const enabled = enabledCmd ? (await host.exec(enabledCmd, { allowFail: true })).code === 0 : true;
  return { enabled, running };
}

/** Commands that move `live` to `want`; `bounce` is a reload/restart asked for by a token change. */
export function planService(
  init: InitSystem,
  name: string,
  want: { enabled: boolean; running: boolean | null },
  live: ServiceState,
  bounce: "none" | "reload" | "restart",
): string[] {
  const c = serviceCommands(init);
  const cmds: string[] = [];
  const en = c.enable(name),
    dis = c.disable(name);
  if (want.enabled && !live.enabled && en) cmds.push(en);
  if (!want.enabled && live.enabled && dis) cmds.push(dis);
  // not ours to start or stop (kubeadm starts the kubelet), but a running one re-reads changed files
  if (want.running === null) {
    if (live.running && bounce !== "none") cmds.push(bounce === "reload" ? c.reload(name) : c.restart(name));
    return cmds;
  }
  if (want.running && !live.running) cmds.push(c.start(name));
  else if (!want.running && live.running) cmds.push(c.stop(name));
  else if (want.running && bounce !== "none") cmds.push(bounce === "reload" ? c.reload(name) : c.restart(name));
  return cmds;
}

async function run(host: Host, cmds: string[]): Promise<void> {
  for (const cmd of cmds) await host.exec(cmd, { mutates: true });
}

const READY_TIMEOUT_MS = 60_000;

async function waitReady(host: Host, s: ServiceInputs): Promise<void> {
  if (!s.readyCheck || !s.running) return;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const r = await host.exec(s.readyCheck, { allowFail: true });
    if (r.code === 0) return;
    if (Date.now() > deadline)
      throw new Error(
        `${host.name}: ${s.name} started but is not ready after ${READY_TIMEOUT_MS / 1000} s: "${s.readyCheck}" exited ${r.code}: ${trimOutput(r.stderr)}`,
      );
    await new Promise((res) => setTimeout(res, 500));
  }
}

export const provider: Provider<ServiceInputs, ServiceOutputs> = {
  async create(inputs: ServiceInputs) {
    const host = await hostOf(inputs.connection);
    const before = await probeService(host, inputs.init, inputs.name);
    // Already running with other settings: restart so it reads the files we just wrote (one
    // that is not ours to run is left alone until its files change).
    await run(host, planService(inputs.init, inputs.name, inputs, before, inputs.running === null ? "none" : "restart"));
    await waitReady(host, inputs);
    const outs: ServiceOutputs = { ...inputs, before };
    return { id: `${inputs.connection.name}:${inputs.name}`, outs };
  },
  async diff(_id, olds: ServiceOutputs, news: ServiceInputs) {
    return diffOf(olds as never, news as never, ["enabled", "running", "reloadToken", "restartToken", "init", "readyCheck"], ["name"]);
  },
  async read(id, props: ServiceOutputs) {
    const live = await probeService(await hostOf(props.connection), props.init, props.name);
    return { id, props: { ...props, enabled: live.enabled, running: props.running === null ? null : live.running } };
  },
  async update(_id, olds: ServiceOutputs, news: ServiceInputs) {
    const host = await hostOf(news.connection);
    const live = await probeService(host, news.init, news.name);
    const bounce = olds.restartToken !== news.restartToken ? "restart" : olds.reloadToken !== news.reloadToken ? "reload" : "none";
    await run(host, planService(news.init, news.name, news, live, bounce));
    await waitReady(host, news);
    return { outs: { ...news, before: olds.before } };
  },
  async delete(_id, props: ServiceOutputs) {
    const host = await hostOf(props.connection);
    const live = await probeService(host, props.init, props.name);
    await run(host, planService(props.init, props.name, props.before, live, "none"));
  },
};
