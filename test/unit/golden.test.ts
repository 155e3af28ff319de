// Byte-exact goldens of every render for the dev stack (k8s-1..4). UPDATE_GOLDEN=1 rewrites them.
import { planVrrp } from "../../plan/vrrp";
import { ciliumValuesYaml } from "../../render/cilium";
import {
  bpffsFstabLine,
  crictlYaml,
  hostsLine,
  kubeletConfd,
  kubeletSystemdDropIn,
  modulesLoadConf,
  rcConfLine,
  sysctlConf,
} from "../../render/host";
import { containerdConfig } from "../../render/containerd";
import { snapshotCron, snapshotScript, snapshotService, snapshotTimer } from "../../render/etcd-backup";
import { bootstrapsVip, checkApiserverScript, keepalivedConf, keepalivedOptions } from "../../render/keepalived";
import { kubeadmInitConfig, kubeadmJoinConfig } from "../../render/kubeadm";
import {
  cloudInitMetaData,
  cloudInitUserData,
  domainXml,
  labDomain,
  labNetworkConfig,
  labShadowNetwork,
  labWan0Network,
  networkXml,
} from "../../render/libvirt";
import { confdNetSnippet, ifupHook, localStart, policyRoutingScript, routingUnit, rtTablesConf } from "../../render/routing";
import { devSpec, devVrrpPassword } from "../fixtures/dev";
import { TEST_AUTHORIZED_KEY, TEST_HOST_KEY, TEST_JOIN } from "../fixtures/keys";
import { expectGolden } from "./golden";

const spec = devSpec();
const plans = planVrrp(spec);
const hc = spec.config.vrrp.controlPlane.healthCheck;

const files: [string, () => string][] = [
  ["common/sysctl.conf", sysctlConf],
  ["common/modules-load.conf", modulesLoadConf],
  ["common/crictl.yaml", () => crictlYaml(spec.config.cluster.criSocket)],
  ["common/conf.d-kubelet", () => kubeletConfd()],
  ["common/kubelet-systemd-dropin.conf", () => kubeletSystemdDropIn()],
  ["common/rt_tables.conf", () => rtTablesConf(spec)],
  ["common/if-up.d-k8s-baremetal-routing", () => ifupHook(spec.nodes[0])],
  ["common/k8s-baremetal-routing.service", () => routingUnit(spec.nodes[0])],
  ["common/local.d-k8s-baremetal-routing.start", localStart],
  ["common/cilium-values.yaml", () => ciliumValuesYaml(spec)],
  ["common/containerd-config.toml", () => containerdConfig(spec, spec.nodes[0])],
  ["common/network-wan0.xml", () => networkXml(labWan0Network(spec))],
  ["common/network-shadow.xml", () => networkXml(labShadowNetwork(spec))],
  ["common/k8sbm-etcd-snapshot", () => snapshotScript(spec)],
  ["common/k8sbm-etcd-snapshot.service", snapshotService],
  ["common/k8sbm-etcd-snapshot.timer", () => snapshotTimer(spec)],
  ["common/cron.d-k8sbm-etcd-snapshot", () => snapshotCron(spec)],
];

for (const node of spec.nodes) {
  const dir = node.name;
  const plan = plans.find((p) => p.node === node.name);
  if (plan) files.push([`${dir}/keepalived.conf`, () => keepalivedConf(plan, keepalivedOptions(spec, devVrrpPassword))]);
  if (node.controlPlane)
    files.push([
      `${dir}/check-apiserver.sh`,
      () => checkApiserverScript(node, spec.config.cluster.apiServerPort, hc.timeoutSeconds, bootstrapsVip(spec, node)),
    ]);
  if (node === spec.controlPlanes[0]) files.push([`${dir}/kubeadm-init.yaml`, () => kubeadmInitConfig(spec, node)]);
  else
    files.push([
      `${dir}/kubeadm-join.yaml`,
      () => kubeadmJoinConfig(spec, node, node.controlPlane ? TEST_JOIN : { token: TEST_JOIN.token, caCertHash: TEST_JOIN.caCertHash }),
    ]);
  files.push(
    [`${dir}/policy-routing.sh`, () => policyRoutingScript(spec, node)],
    [`${dir}/conf.d-net`, () => confdNetSnippet(spec, node)],
    [
      `${dir}/lines.txt`,
      () => [`/etc/hosts: ${hostsLine(node)}`, `/etc/fstab: ${bpffsFstabLine()}`, `/etc/rc.conf: ${rcConfLine()}`, ""].join("\n"),
    ],
    [
      `${dir}/domain.xml`,
      () =>
        domainXml(
          labDomain(spec, node, {
            diskPath: `/var/lib/libvirt/images/${node.name}.qcow2`,
            seedIsoPath: `/var/lib/libvirt/images/${node.name}-seed.iso`,
            consoleLogPath: `/var/log/libvirt/qemu/${node.name}-console.log`,
          }),
        ),
    ],
    [`${dir}/user-data`, () => cloudInitUserData(node, { authorizedKeys: [TEST_AUTHORIZED_KEY], hostKey: TEST_HOST_KEY })],
    [`${dir}/meta-data`, () => cloudInitMetaData(node)],
    [`${dir}/network-config`, () => labNetworkConfig(spec, node)],
  );
}

describe("golden renders of the dev stack", () => {
  test.each(files)("%s", (rel, render) => {
    const out = render();
    expect(out.endsWith("\n")).toBe(true);
    expect(out.endsWith("\n\n")).toBe(false);
    expect(render()).toBe(out); // deterministic
    expectGolden(`dev/${rel}`, out);
  });
});
