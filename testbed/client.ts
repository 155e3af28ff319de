// A machine on a lab segment that is not a node: the seed's client out on the shadow network
// (the vSwitch side), reaching the cluster only through the segment's wire.
import { run, testbedEnv } from "./processes";
import { SEGMENTS, nsPrefix, type SegmentName, type TestbedState } from "./state";
import { collect, type HostExecResult } from "./exec";

export interface TestbedClient {
  netns: string;
  /** `sh -c cmd` in the client's network namespace; rejects on a non-zero exit unless allowFail */
  exec(cmd: string, opts?: { allowFail?: boolean; timeoutMs?: number }): Promise<HostExecResult>;
}

/**
 * Adds (or replaces) client `name` on `segment` with `cidr` (e.g. "10.118.11.1/24" on wan1's
 * segment, the seed's shadow network). Its namespace carries the lab's prefix: `down` removes it.
 */
export function addClient(lab: TestbedState, name: string, segment: SegmentName, cidrs: string[]): TestbedClient {
  const netns = `${nsPrefix(lab.name)}${name}`;
  const swEnd = `c-${name}`.slice(0, 15);
  run("ip", ["netns", "del", netns], { allowFail: true });
  run("ip", ["netns", "add", netns]);
  run("ip", ["-n", lab.switchNetns, "-batch", "-"], {
    input:
      [`link add ${swEnd} type veth peer name eth0 netns ${netns}`, `link set ${swEnd} master ${SEGMENTS[segment].bridge} up`].join("\n") +
      "\n",
  });
  run("ip", ["-n", netns, "-batch", "-"], {
    input: ["link set lo up", ...cidrs.map((c) => `addr add ${c} dev eth0`), "link set eth0 up"].join("\n") + "\n",
  });
  const exec = (cmd: string, opts: { allowFail?: boolean; timeoutMs?: number } = {}) =>
    collect("ip", ["netns", "exec", netns, "/bin/sh", "-c", cmd], `client ${name}`, cmd, { ...opts, env: testbedEnv(lab.name) });
  return { netns, exec };
}
