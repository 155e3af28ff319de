// Typed Pulumi resources over the dynamic providers in providers/impl. Each shows up in
// `pulumi preview` as pulumi-nodejs:k8sbm:<Type>.
import * as pulumi from "@pulumi/pulumi";
import { withSecretConnection, type ConnectionArgs } from "./connection";
import { lazyProvider } from "./dynamic";
import type { Mount } from "./impl/host-settings";
import type { Route, Rule } from "./impl/policy-routing";
import type { InitSystem, OsFamily } from "../spec/schema";

const MODULE = "k8sbm";
type Opts = pulumi.CustomResourceOptions;

export class SshHost extends pulumi.dynamic.Resource {
  declare readonly hostKey: pulumi.Output<string>;
  declare readonly fingerprint: pulumi.Output<string>;
  constructor(name: string, args: { connection: pulumi.Input<Omit<ConnectionArgs, "hostKey">>; pinnedHostKey?: pulumi.Input<string> }, opts?: Opts) {
    super(lazyProvider("ssh-host"), name, { ...args, hostKey: undefined, fingerprint: undefined }, withSecretConnection(opts), MODULE, "SshHost");
  }
}

export interface RemoteFileArgs {
  connection: pulumi.Input<ConnectionArgs>;
  path: string;
  content: pulumi.Input<string>;
  mode: string;
}

export class RemoteFile extends pulumi.dynamic.Resource {
  declare readonly content: pulumi.Output<string>;
  constructor(name: string, args: RemoteFileArgs & { secretContent?: boolean }, opts?: Opts) {
    const { secretContent, ...props } = args;
    const o = withSecretConnection(opts);
    if (secretContent) o.additionalSecretOutputs = [...(o.additionalSecretOutputs ?? []), "content"];
    super(lazyProvider("remote-file"), name, { ...props, backup: undefined }, o, MODULE, "RemoteFile");
  }
}

export class FileBlock extends pulumi.dynamic.Resource {
  constructor(
    name: string,
    args: { connection: pulumi.Input<ConnectionArgs>; path: string; marker: string; body: pulumi.Input<string>; position: "top" | "bottom" },
    opts?: Opts,
  ) {
    super(lazyProvider("file-block"), name, { ...args, createdFile: undefined }, withSecretConnection(opts), MODULE, "FileBlock");
  }
}

export class Packages extends pulumi.dynamic.Resource {
  constructor(name: string, args: { connection: pulumi.Input<ConnectionArgs>; os: OsFamily; packages: string[] }, opts?: Opts) {
    super(lazyProvider("packages"), name, { ...args, installedByUs: undefined }, withSecretConnection(opts), MODULE, "Packages");
  }
}

export class HostSettings extends pulumi.dynamic.Resource {
  constructor(
    name: string,
    args: { connection: pulumi.Input<ConnectionArgs>; modules: string[]; sysctl: Record<string, string>; mounts: Mount[] },
    opts?: Opts,
  ) {
    super(lazyProvider("host-settings"), name, { ...args, restore: undefined }, withSecretConnection(opts), MODULE, "HostSettings");
  }
}

export interface ServiceArgs {
  connection: pulumi.Input<ConnectionArgs>;
  init: InitSystem;
  name: string;
  enabled: boolean;
  /** null: leave it to someone else (kubeadm starts the kubelet) */
  running: boolean | null;
  reloadToken?: pulumi.Input<string>;
  restartToken?: pulumi.Input<string>;
  /** polled after start/reload until it exits 0 */
  readyCheck?: string;
}

export class Service extends pulumi.dynamic.Resource {
  constructor(name: string, args: ServiceArgs, opts?: Opts) {
    super(
      lazyProvider("service"),
      name,
      { reloadToken: "", restartToken: "", readyCheck: "", ...args, before: undefined },
      withSecretConnection(opts),
      MODULE,
      "Service",
    );
  }
}

export class PolicyRouting extends pulumi.dynamic.Resource {
  constructor(name: string, args: { connection: pulumi.Input<ConnectionArgs>; routes: Route[]; rules: Rule[] }, opts?: Opts) {
    super(lazyProvider("policy-routing"), name, args, withSecretConnection(opts), MODULE, "PolicyRouting");
  }
}

export interface KubeadmInitArgs {
  connection: pulumi.Input<ConnectionArgs>;
  nodeName: string;
  /** every control plane: the cluster answers through any of them */
  leaders: pulumi.Input<pulumi.Input<ConnectionArgs>[]>;
  init: InitSystem;
  configPath: string;
  config: pulumi.Input<string>;
  untaint: boolean;
  dryRun: boolean;
}

export class KubeadmInit extends pulumi.dynamic.Resource {
  declare readonly adminKubeconfig: pulumi.Output<string>;
  declare readonly caCertHash: pulumi.Output<string>;
  declare readonly dryRunOutput: pulumi.Output<string>;
  constructor(name: string, args: KubeadmInitArgs, opts?: Opts) {
    const o = withSecretConnection(opts);
    // the dry-run output prints a bootstrap token and the certificate key
    o.additionalSecretOutputs = [...(o.additionalSecretOutputs ?? []), "adminKubeconfig", "dryRunOutput", "leaders"];
    super(
      lazyProvider("kubeadm-init"),
      name,
      { ...args, adminKubeconfig: undefined, caCertHash: undefined, dryRunOutput: undefined },
      o,
      MODULE,
      "KubeadmInit",
    );
  }
}

export interface KubeadmJoinArgs {
  connection: pulumi.Input<ConnectionArgs>;
  leaders: pulumi.Input<pulumi.Input<ConnectionArgs>[]>;
  nodeName: string;
  controlPlane: boolean;
  untaint: boolean;
  joinConfiguration: Record<string, unknown>;
  configPath: string;
  /** run on the node before it leaves: keepalived stops, its VIPs move ("" for none) */
  handOver: string;
  init: InitSystem;
}

export class KubeadmJoin extends pulumi.dynamic.Resource {
  constructor(name: string, args: KubeadmJoinArgs, opts?: Opts) {
    const o = withSecretConnection(opts);
    o.additionalSecretOutputs = [...(o.additionalSecretOutputs ?? []), "leaders"];
    super(lazyProvider("kubeadm-join"), name, { ...args, member: undefined }, o, MODULE, "KubeadmJoin");
  }
}


export class SshKeyPair extends pulumi.dynamic.Resource {
  declare readonly publicKey: pulumi.Output<string>;
  declare readonly privateKey: pulumi.Output<string>;
  constructor(name: string, args: { comment: string }, opts?: Opts) {
    super(
      lazyProvider("ssh-keypair"),
      name,
      { ...args, publicKey: undefined, privateKey: undefined },
      { ...opts, additionalSecretOutputs: ["privateKey"] },
      MODULE,
      "SshKeyPair",
    );
  }
}

export class LibvirtNetwork extends pulumi.dynamic.Resource {
  constructor(name: string, args: { uri: string; name: string; xml: string }, opts?: Opts) {
    super(lazyProvider("libvirt-network"), name, args, opts, MODULE, "LibvirtNetwork");
  }
}

export class LibvirtVolume extends pulumi.dynamic.Resource {
  declare readonly path: pulumi.Output<string>;
  constructor(
    name: string,
    args: {
      uri: string;
      pool: string;
      name: string;
      capacityGiB?: number;
      baseImage?: string;
      cloudInit?: pulumi.Input<{ userData: string; metaData: string; networkConfig: string }>;
    },
    opts?: Opts,
  ) {
    const o = args.cloudInit ? { ...opts, additionalSecretOutputs: ["cloudInit"] } : opts;
    super(lazyProvider("libvirt-volume"), name, { ...args, path: undefined }, o, MODULE, "LibvirtVolume");
  }
}

export class LibvirtDomain extends pulumi.dynamic.Resource {
  constructor(name: string, args: { uri: string; name: string; xml: pulumi.Input<string>; running: boolean }, opts?: Opts) {
    super(lazyProvider("libvirt-domain"), name, args, opts, MODULE, "LibvirtDomain");
  }
}
