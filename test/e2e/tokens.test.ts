// Bootstrap tokens on a live control plane (issue 16): what an interrupted run left — init's
// token, a join's token that was never deleted — is swept when the cluster is reconciled and
// before each join; an operator's tokens (no mark) are never touched. Real kubeadm, real
// `pulumi up` for the init and the join, on `--kube` testbed hosts (see cluster.test.ts for
// what these hosts are and are not).
import * as fs from "fs";
import * as YAML from "yaml";
import { describeTestbed } from "../testbed";
import { down, hostExec, sshTarget, up, type TestbedState } from "../../testbed";
import { LIVE_CLUSTER, TestbedStack, testbedStackConfig } from "../../testbed/stack";
import { KUBEADM_INIT_PATH, TOKEN_MARK } from "../../render/kubeadm";
import { ensureCluster } from "../../providers/impl/membership";
import { closeAll } from "../../providers/ssh";

jest.setTimeout(20 * 60_000);

const LAB = "tokens";
const BASE_PORT = 22790;
const CP = ["control-plane", "balancer"];

let lab: TestbedState;
let stack: TestbedStack;

const sh = (host: string, cmd: string) => hostExec(lab, host, cmd, { timeoutMs: 60_000 }).then((r) => r.stdout);

function node(i: number, roles: string[]) {
  const h = lab.hosts[i - 1];
  return {
    name: h.name,
    roles,
    ssh: { host: "127.0.0.1", port: h.ssh.port, hostKey: h.hostKey },
    wan0: { interface: "wan0", address: h.ifaces.wan0.cidr },
    wan1: { interface: "wan1", address: h.ifaces.wan1.cidr },
  };
}

function setNodes(nodes: ReturnType<typeof node>[]): void {
  const doc = YAML.parse(fs.readFileSync(stack.configFile, "utf8")) as { config: Record<string, any> };
  doc.config["k8s-baremetal:nodes"] = nodes;
  doc.config["k8s-baremetal:vrrp"].external.ipsPerNode = 1;
  fs.writeFileSync(stack.configFile, YAML.stringify(doc));
}

/** A token made on k8s-1 the way an operator (or an earlier run) would; its id. */
async function mint(description?: string): Promise<string> {
  const d = description === undefined ? "" : ` --description '${description}'`;
  return (await sh("k8s-1", `kubeadm token create --ttl 1h${d} --kubeconfig /etc/kubernetes/admin.conf`)).trim().split(".")[0];
}

/** token id -> description, as kubeadm lists them */
async function tokens(): Promise<Record<string, string>> {
  const out = await sh(
    "k8s-1",
    'kubeadm token list --kubeconfig /etc/kubernetes/admin.conf -o jsonpath=\'{.token}{"\\t"}{.description}{"\\n"}\'',
  );
  return Object.fromEntries(
    out
      .split("\n")
      .filter(Boolean)
      .map((l) => [l.split("\t")[0].split(".")[0], l.split("\t")[1] ?? ""]),
  );
}

describeTestbed("bootstrap tokens on a live control plane", () => {
  const operator: string[] = [];

  beforeAll(async () => {
    lab = await up(2, LAB, { basePort: BASE_PORT, kube: true });
    stack = new TestbedStack(testbedStackConfig({ basePort: BASE_PORT, hosts: 2, extra: LIVE_CLUSTER }));
    setNodes([node(1, CP)]);
    stack.init(lab, "T0kens12", { hostKeys: false });
    stack.run(["up", "--yes", "--skip-preview"]);
  }, 60 * 60_000);

  afterAll(async () => {
    closeAll();
    stack?.remove();
    if (!process.env.K8SBM_LAB_KEEP) await down(LAB);
  }, 10 * 60_000);

  test("init leaves no token", async () => {
    expect(await tokens()).toEqual({});
  });

  test("a reconcile of the cluster deletes the program's stale tokens, never an operator's", async () => {
    operator.push(await mint(), await mint("for the new rack"));
    const stale = [await mint(`${TOKEN_MARK} join k8s-9 (run 0123456789ab)`), await mint(`${TOKEN_MARK} kubeadm init`)];
    expect(Object.keys(await tokens()).sort()).toEqual([...operator, ...stale].sort());
    // what KubeadmInit's create and update run on a live cluster
    const first = sshTarget(lab, "k8s-1");
    await ensureCluster({ first, controlPlanes: [first], configPath: KUBEADM_INIT_PATH, init: stack.spec().nodes[0].init, untaint: true });
    expect(Object.keys(await tokens()).sort()).toEqual([...operator].sort());
  });

  test("a join sweeps what an interrupted join left, then joins with a token of its own, deleted after", async () => {
    const stale = await mint(`${TOKEN_MARK} join k8s-2 (run 0123456789ab)`);
    expect(Object.keys(await tokens())).toContain(stale);
    setNodes([node(1, CP), node(2, ["worker"])]);
    stack.run(["up", "--yes", "--skip-preview"]);
    expect((await sh("k8s-1", "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes -o name")).trim().split("\n").sort()).toEqual([
      "node/k8s-1",
      "node/k8s-2",
    ]);
    const left = await tokens();
    expect(Object.keys(left).sort()).toEqual([...operator].sort());
    expect(Object.values(left).some((d) => d.startsWith(TOKEN_MARK))).toBe(false);
  });
});
