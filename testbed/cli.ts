// CLI for the testbed:  testbed up [N] [--name NAME] [--base-port P] [--kube [--cilium [--addons]]]  |  testbed down [--name NAME]
//                       testbed recreate HOST [--name NAME]            |   testbed status [--name NAME]
import * as path from "path";
import { down, list, load, recreateHost, stateDirOf, up } from ".";

function parse(argv: string[]): {
  cmd: string;
  pos: string[];
  name: string;
  basePort: number;
  kube: boolean;
  cilium: boolean;
  addons: boolean;
} {
  const pos: string[] = [];
  let kube = false;
  let cilium = false;
  let addons = false;
  let name = process.env.K8SBM_LAB_NAME || "dev";
  let basePort = Number(process.env.K8SBM_LAB_BASE_PORT ?? 22000);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--name") name = argv[++i];
    else if (a.startsWith("--name=")) name = a.slice(7);
    else if (a === "--base-port") basePort = Number(argv[++i]);
    else if (a.startsWith("--base-port=")) basePort = Number(a.slice(12));
    else if (a === "--kube") kube = true;
    else if (a === "--cilium") cilium = kube = true;
    else if (a === "--addons") addons = cilium = kube = true;
    else pos.push(a);
  }
  return { cmd: pos.shift() ?? "", pos, name, basePort, kube, cilium, addons };
}

export async function main(argv: string[]): Promise<void> {
  const { cmd, pos, name, basePort, kube, cilium, addons } = parse(argv);
  const log = (m: string) => console.log(`[testbed ${name}] ${m}`);
  const t0 = Date.now();
  switch (cmd) {
    case "up": {
      const n = pos[0] ? Number(pos[0]) : 3;
      const st = await up(n, name, { basePort, log, kube, cilium, addons });
      console.log(`testbed ${name} up: ${st.hosts.length} hosts in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      console.log(`  state:       ${path.join(st.stateDir, "hosts.json")}`);
      console.log(`  private key: ${st.privateKeyPath}`);
      for (const h of st.hosts) {
        console.log(`  ${h.name}  ssh -i ${st.privateKeyPath} -p ${h.ssh.port} root@127.0.0.1   ${h.fingerprint}`);
      }
      break;
    }
    case "down":
      await down(name);
      console.log(`testbed ${name} down in ${((Date.now() - t0) / 1000).toFixed(1)} s (${stateDirOf(name)} removed)`);
      break;
    case "recreate": {
      if (!pos[0]) throw new Error("usage: lab recreate HOST [--name NAME]");
      const h = await recreateHost(name, pos[0], { log });
      console.log(`${h.name} recreated; new host key ${h.fingerprint}`);
      break;
    }
    case "status":
      for (const l of pos.length ? pos : list().length ? list() : [name]) {
        try {
          console.log(JSON.stringify(load(l), null, 2));
        } catch (e) {
          console.log((e as Error).message);
        }
      }
      break;
    default:
      throw new Error(
        "usage: testbed up [N] [--name NAME] [--base-port P] [--kube [--cilium [--addons]]] | testbed down [--name NAME] | testbed recreate HOST | testbed status",
      );
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(`lab: ${(e as Error).message}`);
    process.exit(1);
  });
}
