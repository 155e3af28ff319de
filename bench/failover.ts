// Failover benchmark: repeated trials per fault kind on a 4-host lab configured by the program
// (unicast VRRP, advert_int 1, health check interval 1 s / fall 3). Each trial: an HTTPS probe
// from k8s-4 every 100 ms on the API VIP; the time from the fault to the first answer from
// another host. Prints p50/p95/max per fault kind.
// Usage: npm run bench:failover [-- trials [advertInt ...]]   (e.g. -- 10 1 0.5)
import { down, up } from "../testbed";
import { TestbedStack, UNICAST, testbedStackConfig } from "../testbed/stack";
import { holdersOf, percentile, probeTakeover, setLinkDown, startFakeApiserver, stopFakeApiserver, waitForHolder } from "../testbed/vrrp";

const VIP = "10.118.12.100";
const BASE_PORT = 22060;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Fault = { name: string; inject(holder: string): Promise<void>; heal(holder: string): Promise<void> };

async function main(): Promise<void> {
  const trials = Number(process.argv[2] ?? 10);
  const adverts = process.argv.slice(3).map(Number);
  console.log(`| advert_int | fault | trials | p50 | p95 | max |\n|---|---|---|---|---|---|`);
  for (const advertInt of adverts.length ? adverts : [1]) await run(trials, advertInt);
}

async function run(trials: number, advertInt: number): Promise<void> {
  const lab = await up(4, "failover", { basePort: BASE_PORT });
  const stack = new TestbedStack(testbedStackConfig({ basePort: BASE_PORT, vrrp: { ...UNICAST, advertInt } }));
  try {
    stack.init(lab, "unused12");
    for (const h of ["k8s-1", "k8s-2", "k8s-3"]) await startFakeApiserver(lab, h);
    stack.run(["up", "--yes", "--skip-preview"]);
    await waitForHolder(lab, VIP, (h) => h.length === 1);

    const faults: Fault[] = [
      { name: "holder death (wan1 link dropped)", inject: (h) => setLinkDown(lab, h, true), heal: (h) => setLinkDown(lab, h, false) },
      { name: "dead apiserver (process killed)", inject: (h) => stopFakeApiserver(lab, h), heal: (h) => startFakeApiserver(lab, h) },
    ];
    for (const f of faults) {
      const times: number[] = [];
      for (let i = 0; i < trials; i++) {
        const [holder] = await waitForHolder(lab, VIP, (h) => h.length === 1);
        const probe = probeTakeover(lab, "k8s-4", VIP, 6443, holder);
        await sleep(500);
        const t0 = Date.now();
        await f.inject(holder);
        const t = await probe;
        if (!t.at) throw new Error(`${f.name}: no takeover from ${holder} within the probe's limit`);
        times.push(t.at - t0);
        await f.heal(holder);
        // let the healed node settle as a backup (rise + adverts) before the next trial
        await sleep(5000);
        if ((await holdersOf(lab, VIP)).length !== 1) throw new Error(`${f.name}: VIP not held exactly once after healing ${holder}`);
      }
      times.sort((a, b) => a - b);
      const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
      console.log(
        `| ${advertInt} s | ${f.name} | ${trials} | ${s(percentile(times, 50))} | ${s(percentile(times, 95))} | ${s(times[times.length - 1])} |`,
      );
    }
  } finally {
    stack.remove();
    await down("failover");
  }
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
