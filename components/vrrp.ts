// VrrpMesh: keepalived on every control-plane/balancer node (seed §3) — the control-plane VIP
// and the external pool in the seed's rotation — plus the vswitch policy routing on every node.
// The constructor writes the configuration; `start(node, after)` starts keepalived on a node
// once what it waits for exists: the first control plane before `kubeadm init`, the others
// after they joined (and after the first one's VIP is up).
import { contentToken } from "./content-token";
import * as pulumi from "@pulumi/pulumi";
import type { Secrets } from "../config";
import type { Route, Rule } from "../providers/impl/policy-routing";
import { PolicyRouting, RemoteFile, Service, SystemUser } from "../providers/resources";
import { planVrrp, type NodeVrrpPlan } from "../plan/vrrp";
import * as ka from "../render/keepalived";
import * as routing from "../render/routing";
import type { ClusterSpec, NodeSpec } from "../model/model";
import type { PreparedNode } from "./host";

export interface VrrpMeshArgs {
  spec: ClusterSpec;
  secrets: Secrets;
  hosts: Record<string, PreparedNode>;
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

export class VrrpMesh extends pulumi.ComponentResource {
  /** per node: the keepalived service, once started */
  readonly keepalived: Record<string, Service> = {};
  private readonly members = new Map<string, { conf: pulumi.Output<string>; files: pulumi.Resource[] }>();

  constructor(
    name: string,
    private readonly args: VrrpMeshArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("k8sbm:index:VrrpMesh", name, {}, opts);
    const { spec, secrets, hosts } = args;
    const { config } = spec;

    if (config.routing.enabled)
      for (const node of spec.nodes) {
        const { connection, prepared } = hosts[node.name];
        const table = new RemoteFile(
          `${node.name}-rt-tables`,
          { connection, path: routing.RT_TABLES_PATH, content: routing.rtTablesConf(spec), mode: "0644" },
          { parent: this, dependsOn: prepared },
        );
        new PolicyRouting(
          `${node.name}-policy-routing`,
          { connection, ...numericTables(spec, node) },
          { parent: this, dependsOn: [table] },
        );
        // applied live above; these bring it back at boot (render/routing.ts routingBootFiles)
        const boot = routing
          .routingBootFiles(spec, node)
          .map(
            (f) =>
              new RemoteFile(
                `${node.name}-${f.id}`,
                { connection, path: f.path, content: f.content, mode: f.mode },
                { parent: this, dependsOn: [table] },
              ),
          );
        if (node.init === "systemd")
          new Service(
            `${node.name}-routing-boot`,
            { connection, init: node.init, name: routing.ROUTING_UNIT, enabled: true, running: null },
            { parent: this, dependsOn: boot },
          );
      }

    if (config.layers.keepalived) {
      const password = secrets.vrrpPassword ?? pulumi.secret("");
      for (const plan of planVrrp(spec)) this.members.set(plan.node, this.writeConfig(plan, password));
    }
    this.registerOutputs({});
  }

  private writeConfig(plan: NodeVrrpPlan, password: pulumi.Output<string>) {
    const { spec } = this.args;
    const { config } = spec;
    const node = spec.nodes.find((n) => n.name === plan.node)!;
    const { connection, prepared } = this.args.hosts[node.name];
    const conf = password.apply((pw) =>
      ka.keepalivedConf(plan, ka.keepalivedOptions(spec, config.vrrp.authType === "none" ? undefined : pw)),
    );
    const files: pulumi.Resource[] = [
      new RemoteFile(
        `${node.name}-keepalived-conf`,
        { connection, path: ka.KEEPALIVED_CONF_PATH, content: conf, mode: "0640", secretContent: config.vrrp.authType !== "none" },
        { parent: this, dependsOn: prepared },
      ),
    ];
    if (node.controlPlane && config.vrrp.controlPlane.healthCheck.enabled)
      files.push(
        // the check runs as this unprivileged user (script_user in keepalived.conf)
        new SystemUser(
          `${node.name}-keepalived-script-user`,
          { connection, name: ka.SCRIPT_USER, comment: "keepalived check scripts", searches: ka.CHECK_SCRIPT_SEARCHES },
          { parent: this, dependsOn: prepared },
        ),
        new RemoteFile(
          `${node.name}-check-apiserver`,
          {
            connection,
            path: ka.CHECK_APISERVER_PATH,
            content: ka.checkApiserverScript(
              node,
              config.cluster.apiServerPort,
              config.vrrp.controlPlane.healthCheck.timeoutSeconds,
              ka.bootstrapsVip(spec, node),
            ),
            mode: "0755",
          },
          { parent: this, dependsOn: prepared },
        ),
      );
    return { conf, files };
  }

  /**
   * Starts keepalived on `node` after its files and `after`; a control plane other than the
   * first also waits for the first one's keepalived, so the API VIP starts there. Undefined when
   * the node runs no keepalived.
   */
  start(node: NodeSpec, after: pulumi.Resource[] = []): Service | undefined {
    const member = this.members.get(node.name);
    if (!member) return undefined;
    const { spec } = this.args;
    const first = spec.controlPlanes[0];
    const firstVip = node.controlPlane && node !== first && this.keepalived[first.name] ? [this.keepalived[first.name]] : [];
    // keepalived re-reads its config on reload without dropping VIPs that stay put.
    return (this.keepalived[node.name] = new Service(
      `${node.name}-keepalived`,
      {
        connection: this.args.hosts[node.name].connection,
        init: node.init,
        name: "keepalived",
        enabled: true,
        running: true,
        reloadToken: member.conf.apply((c) => contentToken(c)),
        // the first control plane's keepalived is up when the API VIP answers (kubeadm init needs it)
        ...(node === first ? { readyCheck: `ping -c1 -W1 ${spec.controlPlaneVip.ip} >/dev/null` } : {}),
      },
      { parent: this, dependsOn: [...member.files, ...firstVip, ...after] },
    ));
  }
}
