import { execFileSync } from "child_process";
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
import YAML from "yaml";
import { devSpec } from "../fixtures/dev";

const spec = devSpec();
const settings = (text: string) => text.split("\n").filter((l) => l.trim() && !l.startsWith("#"));

describe("host preparation files", () => {
  test("sysctl: the seed's three settings, sorted; ip_local_port_range only in the comment", () => {
    expect(settings(sysctlConf())).toEqual(["net.ipv4.ip_forward = 1", "net.ipv4.ip_nonlocal_bind = 1", "net.ipv6.ip_nonlocal_bind = 1"]);
    expect(sysctlConf()).toMatch(/^# .*ip_local_port_range is deliberately NOT set/m);
  });

  test("modules-load: br_netfilter", () => {
    expect(settings(modulesLoadConf())).toEqual(["br_netfilter"]);
  });

  test("crictl.yaml: the seed's content", () => {
    expect(YAML.parse(crictlYaml())).toEqual({
      "runtime-endpoint": "unix:///run/containerd/containerd.sock",
      "image-endpoint": "unix:///run/containerd/containerd.sock",
      timeout: 10,
      debug: false,
    });
    expect(settings(crictlYaml()).join("\n")).toBe(
      "runtime-endpoint: unix:///run/containerd/containerd.sock\nimage-endpoint: unix:///run/containerd/containerd.sock\ntimeout: 10\ndebug: false",
    );
  });

  test("single lines: fstab bpffs, /etc/hosts wan1 address, rc.conf", () => {
    expect(bpffsFstabLine()).toBe("none /sys/fs/bpf bpf rshared 0 0");
    expect(spec.nodes.map(hostsLine)).toEqual(["10.118.12.20 k8s-1", "10.118.12.21 k8s-2", "10.118.12.22 k8s-3", "10.118.12.23 k8s-4"]);
    expect(rcConfLine()).toBe('rc_cgroup_memory_use_hierarchy="yes"');
  });

  test("conf.d/kubelet: valid sh that builds the seed's command_args", () => {
    const confd = kubeletConfd(["--v=2"]);
    execFileSync("sh", ["-n"], { input: confd });
    // Source it as OpenRC would, with a kubeadm-flags.env stand-in absent: print command_args.
    const out = execFileSync("sh", ["-c", `${confd}\nprintf %s "$command_args"`], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    }).toString();
    expect(out.trim().split(/\s+/)).toEqual([
      "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
      "--kubeconfig=/etc/kubernetes/kubelet.conf",
      "--config=/var/lib/kubelet/config.yaml",
      "--v=2",
    ]);
  });

  test("systemd drop-in: reads kubeadm-flags.env, resets ExecStart, then the full command line", () => {
    const lines = settings(kubeletSystemdDropIn(["--v=2"]));
    expect(lines).toEqual([
      "[Service]",
      "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env",
      "ExecStart=",
      "ExecStart=/usr/bin/kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml $KUBELET_KUBEADM_ARGS --v=2",
    ]);
  });

  test("extra args a shell would split or expand are rejected", () => {
    expect(() => kubeletConfd(["--a b"])).toThrow(/extra argument/);
    expect(() => kubeletSystemdDropIn(["$(reboot)"])).toThrow(/extra argument/);
  });
});
