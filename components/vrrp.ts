// VrrpMesh: keepalived on every control-plane/balancer node (seed §3) — the control-plane VIP
// and the external pool in the seed's rotation — plus the vswitch policy routing on every node.
// Members start when their gate opens: the first control plane before `kubeadm init`, the
// others after they joined.
import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import type { Secrets } from "../config";
import type { ConnectionArgs } from "../providers/connection";
import type { Route, Rule } from "../providers/impl/policy-routing";
import { PolicyRouting, RemoteFile, Service } from "../providers/resources";
import { planVrrp } from "../plan/vrrp";
import * as ka from "../render/keepalived";
import * as routing from "../render/routing";
import type { ClusterSpec, NodeSpec } from "../spec/model";

export interface VrrpMeshArgs {
  spec: ClusterSpec;
  secrets: Secrets;
  connections: Record<string, pulumi.Input<ConnectionArgs>>;
  /** per node: what must exist before anything is written there (host preparation) */
  prepared: Record<string, pulumi.Resource[]>;
  /**
   * per node: what must exist before keepalived starts there, beyond the first control plane's
   * keepalived (which every other control plane waits for, so the VIP starts on the first)
   */
  startAfter?: (node: NodeSpec) => pulumi.Resource[] | Promise<pulumi.Resource[]>;
}

// The provider speaks table ids, so the live state does not depend on rt_tables being read.
function numericTables(spec: ClusterSpec, node: NodeSpec): { routes: Route[]; rules: Rule[] } {
  const t = spec.config.routing.table;
  const id = (name: string) => (name === t.name ? t.id : Number(name));
  return {
    routes: routing.policyRoutes(spec, node).map((r) => ({ ...r, ...(r.table ? { table: id(r.table) } : {}) }) as Route),
    rules: routing.policyRules(spec).map((r) => ({ ...r, table: r.table === "main" ? "main" : id(r.table) }) as Rule),
  };
}

const sha = (s: string) => crypto.createHash("sha256").update(s).digest("hex");

export class VrrpMesh extends pulumi.ComponentResource {
  /** per node: the keepalived service (the first control plane's gates `kubeadm init`) */
  readonly keepalived: Record<string, Service> = {};

  constructor(name: string, args: VrrpMeshArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k8sbm:index:VrrpMesh", name, {}, opts);
    const { spec, secrets, connections } = args;
    const { config } = spec;

    if (config.routing.enabled)
      for (const node of spec.nodes) {
        const dependsOn = args.prepared[node.name];
        const table = new RemoteFile(
          `${node.name}-rt-tables`,
          { connection: connections[node.name], path: routing.RT_TABLES_PATH, content: routing.rtTablesConf(spec), mode: "0644" },
          { parent: this, dependsOn },
        );
        new PolicyRouting(
          `${node.name}-policy-routing`,
          { connection: connections[node.name], ...numericTables(spec, node) },
          { parent: this, dependsOn: [table] },
        );
      }

    if (!config.layers.keepalived) {
      this.registerOutputs({});
      return;
    }
    const password = secrets.vrrpPassword ?? pulumi.secret("");
    for (const plan of planVrrp(spec)) {
      const node = spec.nodes.find((n) => n.name === plan.node)!;
      const connection = connections[node.name];
      const dependsOn = args.prepared[node.name];
      const conf = password.apply((pw) => ka.keepalivedConf(plan, ka.keepalivedOptions(spec, config.vrrp.authType === "none" ? undefined : pw)));
      const confFile = new RemoteFile(
        `${node.name}-keepalived-conf`,
        { connection, path: ka.KEEPALIVED_CONF_PATH, content: conf, mode: "0640", secretContent: config.vrrp.authType !== "none" },
        { parent: this, dependsOn },
      );
      const files: pulumi.Resource[] = [confFile];
      if (node.controlPlane && config.vrrp.controlPlane.healthCheck.enabled)
        files.push(
          new RemoteFile(
            `${node.name}-check-apiserver`,
            {
              connection,
              path: ka.CHECK_APISERVER_PATH,
              content: ka.checkApiserverScript(node, config.cluster.apiServerPort, config.vrrp.controlPlane.healthCheck.timeoutSeconds),
              mode: "0755",
            },
            { parent: this, dependsOn },
          ),
        );
      const first = spec.controlPlanes[0];
      const bootstrap = node.controlPlane && node !== first && this.keepalived[first.name] ? [this.keepalived[first.name]] : [];
      const gate: Promise<pulumi.Resource[]> = Promise.resolve(args.startAfter ? args.startAfter(node) : []).then((g) => [...bootstrap, ...g]);
      const deps: Promise<pulumi.Resource[]> = gate.then((g) => [...files, ...g]);
      // keepalived re-reads its config on reload without dropping VIPs that stay put.
      this.keepalived[node.name] = new Service(
        `${node.name}-keepalived`,
        {
          connection,
          init: node.init,
          name: "keepalived",
          enabled: true,
          running: true,
          reloadToken: conf.apply(sha),
          // the first control plane's keepalived is up when the API VIP answers (kubeadm init needs it)
          ...(node === spec.controlPlanes[0] ? { readyCheck: `ping -c1 -W1 ${spec.controlPlaneVip.ip} >/dev/null` } : {}),
        },
        { parent: this, dependsOn: deps as pulumi.Input<pulumi.Input<pulumi.Resource>[]> },
      );
    }
    this.registerOutputs({});
  }
}
