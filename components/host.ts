// ClusterHost: one node prepared for Kubernetes (seed §2) — its pinned SSH identity, packages,
// kernel settings, the files kubeadm and the kubelet expect, and containerd running.
import * as pulumi from "@pulumi/pulumi";
import type { Secrets } from "../config";
import { contentToken } from "./content-token";
import { packagesFor } from "../providers/os/configurer";
import { AptRepository, FileBlock, HostSettings, Packages, RemoteFile, Service, SshHost } from "../providers/resources";
import type { SshTarget } from "../providers/ssh/types";
import { kubernetesRepository, pinnedPackages, usesAptRepository } from "../render/apt";
import { UPGRADED_BY_CLUSTER } from "../plan/upgrade";
import { CONTAINERD_CONFIG_PATH, containerdConfig, registryHostsPath, registryHostsToml } from "../render/containerd";
import * as host from "../render/host";
import type { ClusterSpec, NodeSpec } from "../model/model";

/** How long a lab VM's first SSH contact waits for it to boot (a Debian cloud image under TCG: about a minute). */
export const LAB_BOOT_WAIT_SECONDS = 600;

export interface ClusterHostArgs {
  spec: ClusterSpec;
  node: NodeSpec;
  secrets: Secrets;
  /** a host key known before first contact (lab VMs get one generated at creation) */
  pinnedHostKey?: pulumi.Input<string>;
}

/** What later steps need of a node: how to reach it, and what must exist before they touch it. */
export interface PreparedNode {
  /** how every resource reaches this node, host key pinned by the node's SshHost */
  readonly connection: pulumi.Output<SshTarget>;
  /** everything that must exist before VRRP or kubeadm touch the node */
  readonly prepared: pulumi.Resource[];
}

export class ClusterHost extends pulumi.ComponentResource implements PreparedNode {
  readonly connection: pulumi.Output<SshTarget>;
  readonly hostKeyFingerprint: pulumi.Output<string>;
  readonly prepared: pulumi.Resource[];

  constructor(name: string, args: ClusterHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k8sbm:index:ClusterHost", name, {}, opts);
    const { spec, node, secrets } = args;
    const { config } = spec;
    const p = { parent: this };

    const base = {
      name: node.name,
      host: node.ssh.host,
      port: node.ssh.port,
      user: node.ssh.user,
      privateKey: secrets.sshPrivateKey,
      connectTimeoutMs: config.ssh.connectTimeoutSeconds * 1000,
      retries: config.ssh.retries,
      ...(node.ssh.jump
        ? {
            via: {
              ...node.ssh.jump,
              privateKey: secrets.sshPrivateKey,
              connectTimeoutMs: config.ssh.connectTimeoutSeconds * 1000,
              retries: config.ssh.retries,
            },
          }
        : {}),
    };
    const pinned = node.ssh.hostKey ?? args.pinnedHostKey;
    const identity = new SshHost(
      `${name}-ssh`,
      {
        connection: pulumi.output(base),
        ...(pinned ? { pinnedHostKey: pinned } : {}),
        trustOnFirstUse: config.ssh.trustOnFirstUse,
        configPath: `nodes[${spec.nodes.indexOf(node)}]`,
        // the package and service commands follow it: a host running another OS fails here, untouched
        os: { family: node.os, init: node.init },
        // a VM the lab just started boots first (minutes under TCG); a server is up already
        ...(args.pinnedHostKey ? { bootWaitSeconds: LAB_BOOT_WAIT_SECONDS } : {}),
      },
      p,
    );
    this.connection = pulumi.output({ ...base, hostKey: identity.hostKey });
    this.hostKeyFingerprint = identity.fingerprint;
    const connection = this.connection;
    const after = { parent: this, dependsOn: [identity] };

    this.prepared = [identity];
    if (!config.layers.hostPrep) {
      this.registerOutputs({ connection: this.connection, hostKeyFingerprint: this.hostKeyFingerprint });
      return;
    }

    // a rehearsal only runs `kubeadm init --dry-run`: it installs the packages (kubeadm among them)
    // and writes nothing else for Kubernetes
    const kube = config.layers.kubernetes && !config.cluster.rehearse;
    const vrrp = config.layers.keepalived && (node.controlPlane || node.balancer);
    // Debian/Ubuntu: kubeadm, kubelet, kubectl and cri-tools come from the Kubernetes repository,
    // pinned to the cluster's version
    const repo = config.layers.kubernetes && usesAptRepository(node.os) ? kubernetesRepository(config) : undefined;
    const repository = repo && new AptRepository(`${name}-kubernetes-repository`, { connection, ...repo }, after);
    const kubePackages = config.layers.kubernetes ? packagesFor(node.os, "kubernetes") : [];
    const pkgs = new Packages(
      `${name}-packages`,
      {
        connection,
        os: node.os,
        packages: [
          ...packagesFor(node.os, "base"),
          ...(vrrp ? packagesFor(node.os, "keepalived") : []),
          ...(repo ? pinnedPackages(kubePackages, config.cluster.kubernetesVersion) : kubePackages),
        ],
        ...(repo ? { upgradedByCluster: UPGRADED_BY_CLUSTER } : {}),
      },
      repository ? { parent: this, dependsOn: [identity, repository] } : after,
    );
    const afterPkgs = { parent: this, dependsOn: [pkgs] };
    const file = (id: string, path: string, content: string, mode = "0644") =>
      new RemoteFile(`${name}-${id}`, { connection, path, content, mode }, afterPkgs);
    const block = (id: string, path: string, body: string, position: "top" | "bottom" = "bottom") =>
      new FileBlock(`${name}-${id}`, { connection, path, marker: id, body: `${body}\n`, position }, afterPkgs);

    // the kubelet's command line (kubeletExtraArgs): a change restarts a running kubelet
    const kubeletFlags = node.init === "openrc" ? host.kubeletConfd(kubeletArgs(spec)) : host.kubeletSystemdDropIn(kubeletArgs(spec));
    const files: pulumi.Resource[] = [
      file("sysctl", host.SYSCTL_PATH, host.sysctlConf()),
      // first in /etc/hosts: the name must resolve to the wan1 address before any other entry
      block("hosts", "/etc/hosts", host.hostsLine(node), "top"),
    ];
    if (kube) {
      files.push(
        file("modules", host.MODULES_LOAD_PATH, host.modulesLoadConf()),
        file("crictl", host.CRICTL_PATH, host.crictlYaml(config.cluster.criSocket)),
        block("bpffs", "/etc/fstab", host.bpffsFstabLine()),
        node.init === "openrc"
          ? file("kubelet-confd", host.KUBELET_CONFD_PATH, kubeletFlags)
          : file("kubelet-dropin", host.KUBELET_SYSTEMD_DROPIN_PATH, kubeletFlags),
      );
      if (node.init === "openrc") files.push(block("rc-conf", "/etc/rc.conf", host.rcConfLine()));
    }
    // containerd reads these at start: a change restarts it (running containers keep running)
    const runtimeFiles: [string, string, string][] = kube
      ? [
          ["containerd-config", CONTAINERD_CONFIG_PATH, containerdConfig(spec, node)],
          ...Object.entries(config.containerd.registryMirrors)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([registry, mirrors]): [string, string, string] => [
              `containerd-hosts-${registry}`,
              registryHostsPath(registry),
              registryHostsToml(registry, mirrors),
            ]),
        ]
      : [];
    files.push(...runtimeFiles.map(([id, path, content]) => file(id, path, content)));
    const settings = new HostSettings(
      `${name}-settings`,
      {
        connection,
        modules: kube ? ["br_netfilter"] : [],
        sysctl: { ...host.SYSCTLS },
        mounts: kube ? [{ source: "none", target: "/sys/fs/bpf", fstype: "bpf", options: "rshared" }] : [],
      },
      { parent: this, dependsOn: files },
    );
    this.prepared.push(pkgs, ...files, settings);
    if (kube) {
      const containerd = new Service(
        `${name}-containerd`,
        {
          connection,
          init: node.init,
          name: "containerd",
          enabled: true,
          running: true,
          restartToken: contentToken(...runtimeFiles.map(([, path, content]) => `${path}\n${content}`)),
        },
        { parent: this, dependsOn: [settings] },
      );
      // kubeadm starts the kubelet; it only has to start at boot.
      const kubelet = new Service(
        `${name}-kubelet`,
        { connection, init: node.init, name: "kubelet", enabled: true, running: null, restartToken: contentToken(kubeletFlags) },
        { parent: this, dependsOn: [containerd] },
      );
      this.prepared.push(containerd, kubelet);
    }
    this.registerOutputs({ connection: this.connection, hostKeyFingerprint: this.hostKeyFingerprint });
  }
}

function kubeletArgs(spec: ClusterSpec): string[] {
  return Object.entries(spec.config.cluster.kubeletExtraArgs)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `--${k}=${v}`);
}
