import YAML from "yaml";
import { ciliumValues, ciliumValuesYaml } from "../../render/cilium";
import { parseStackConfig } from "../../model/parse";
import { NAMESPACE, devConfigCopy, devSecretKeys, devSpec } from "../fixtures/dev";

const spec = devSpec();

describe("cilium values", () => {
  test("every seed 1.8 flag mapped to the current chart's keys", () => {
    expect(ciliumValues(spec)).toEqual({
      kubeProxyReplacement: true,
      k8sServiceHost: "10.118.12.100",
      k8sServicePort: 6443,
      routingMode: "native",
      ipv4NativeRoutingCIDR: "10.244.0.0/16",
      autoDirectNodeRoutes: true,
      bpf: { masquerade: false },
      enableIPv4Masquerade: true,
      devices: ["wan1"],
      loadBalancer: { mode: "dsr" },
      nodePort: { enabled: true, directRoutingDevice: "wan1" },
      externalIPs: { enabled: true },
      socketLB: { enabled: true },
      // beyond the seed: a changed value rolls the agents and the operator on `up`
      rollOutCiliumPods: true,
      operator: { rollOutPods: true },
      ipam: { mode: "cluster-pool", operator: { clusterPoolIPv4PodCIDRList: ["10.244.0.0/16"], clusterPoolIPv4MaskSize: 24 } },
    });
  });

  test("no obsolete 1.8 keys", () => {
    const text = JSON.stringify(ciliumValues(spec));
    for (const old of ["global", "tunnel", 'nativeRoutingCIDR"', "hostServices", '"masquerade":true', "strict"])
      expect(text).not.toContain(old);
  });

  test("cilium.values overrides deep-merge and win; arrays are replaced", () => {
    const raw = devConfigCopy();
    raw.cilium.values = {
      loadBalancer: { mode: "snat" },
      hubble: { enabled: true },
      devices: ["eth0", "eth1"],
      nodePort: { enabled: false },
    };
    const v = ciliumValues(parseStackConfig(NAMESPACE, raw, devSecretKeys)) as any;
    expect(v.loadBalancer).toEqual({ mode: "snat" });
    expect(v.hubble).toEqual({ enabled: true });
    expect(v.devices).toEqual(["eth0", "eth1"]);
    expect(v.nodePort).toEqual({ enabled: false, directRoutingDevice: "wan1" });
    expect(v.k8sServiceHost).toBe("10.118.12.100");
  });

  test("keys are sorted (stable serialisation, no spurious diffs)", () => {
    const keys = Object.keys(ciliumValues(spec));
    expect(keys).toEqual([...keys].sort());
    expect(YAML.parse(ciliumValuesYaml(spec))).toEqual(ciliumValues(spec));
  });
});
