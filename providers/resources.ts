// The Pulumi side of the dynamic providers in providers/impl. A resource kind is declared once:
// its inputs, state and behaviour live in providers/impl/<kind>.ts (`provider: Provider<I, O>`);
// the class here is derived from that declaration, so a drifted field or a misspelt kind fails
// `tsc`. Each shows up in `pulumi preview` as pulumi-nodejs:k8sbm:<Type>.
import * as pulumi from "@pulumi/pulumi";
import { providerText } from "./dynamic";
import type { Provider } from "./impl/common";

/** Every provider implementation, by kind (= its file name under providers/impl). */
export interface Kinds {
  "ssh-host": typeof import("./impl/ssh-host");
  "ssh-keypair": typeof import("./impl/ssh-keypair");
  "remote-file": typeof import("./impl/remote-file");
  "file-block": typeof import("./impl/file-block");
  packages: typeof import("./impl/packages");
  "apt-repository": typeof import("./impl/apt-repository");
  "host-settings": typeof import("./impl/host-settings");
  "system-user": typeof import("./impl/system-user");
  service: typeof import("./impl/service");
  "policy-routing": typeof import("./impl/policy-routing");
  "kubeadm-init": typeof import("./impl/kubeadm-init");
  "kubeadm-join": typeof import("./impl/kubeadm-join");
  "etcd-snapshot": typeof import("./impl/etcd-snapshot");
  "libvirt-network": typeof import("./impl/libvirt-network");
  "libvirt-hypervisor": typeof import("./impl/libvirt-hypervisor");
  "libvirt-image": typeof import("./impl/libvirt-image");
  "libvirt-volume": typeof import("./impl/libvirt-volume");
  "libvirt-domain": typeof import("./impl/libvirt-domain");
}
export type Kind = keyof Kinds;
export type InputsOf<K extends Kind> = Kinds[K]["provider"] extends Provider<infer I, unknown> ? I : never;
export type StateOf<K extends Kind> = Kinds[K]["provider"] extends Provider<never, infer O> ? O : never;

/** Each field may be a Pulumi Input (an Output of another resource, a promise, or plain). */
export type Inputs<T> = { [P in keyof T]: pulumi.Input<T[P]> };
/** What a resource records beyond its inputs, readable as Outputs. */
type Recorded<K extends Kind> = Exclude<keyof StateOf<K>, keyof InputsOf<K>>;
type OutputProps<K extends Kind, P extends keyof StateOf<K>> = { readonly [Q in P]: pulumi.Output<StateOf<K>[Q]> };

interface Shape<K extends Kind, D extends keyof InputsOf<K>, X extends keyof StateOf<K>> {
  /** the `pulumi-nodejs:k8sbm:<type>` token: part of every URN, so never renamed */
  type: string;
  /** inputs that default when not given */
  defaults?: Pick<InputsOf<K>, D>;
  /** state kept secret in the state file (beyond the connection, which always is) */
  secret?: readonly (keyof StateOf<K>)[];
  /** inputs readable as outputs on the resource object */
  expose?: readonly X[];
}

type Opts = pulumi.CustomResourceOptions;
type Args<K extends Kind, D extends keyof InputsOf<K>> = Inputs<Omit<InputsOf<K>, D>> & Partial<Inputs<Pick<InputsOf<K>, D>>>;
export type ResourceClass<K extends Kind, D extends keyof InputsOf<K>, X extends keyof StateOf<K>, Extra = object> = new (
  name: string,
  args: Args<K, D> & Extra,
  opts?: Opts,
) => pulumi.CustomResource & OutputProps<K, Recorded<K> | X>;

/**
 * Derives the resource class of `kind`. Its recorded state (outputs) starts unknown, and the
 * connection, which carries the SSH private key, is always stored as a secret.
 */
function resource<K extends Kind, D extends keyof InputsOf<K> = never, X extends keyof StateOf<K> = never>(
  kind: K,
  recorded: readonly Recorded<K>[],
  shape: Shape<K, D, X>,
): ResourceClass<K, D, X> {
  // What pulumi.dynamic.Resource registers (its type token, the stub's text in `__provider`), with
  // that text from providers/dynamic.ts's cache instead of serialised on every run.
  return class extends pulumi.CustomResource {
    constructor(name: string, args: Args<K, D>, opts?: Opts) {
      const secret = [...(shape.secret ?? []), ...("connection" in args ? ["connection"] : [])] as string[];
      const props = {
        ...shape.defaults,
        ...args,
        ...Object.fromEntries(recorded.map((k) => [k, undefined])),
        __provider: pulumi.output(providerText(kind)),
      };
      const o = secret.length ? { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), ...secret] } : opts;
      super(`pulumi-nodejs:dynamic/k8sbm:${shape.type}`, name, props, o);
    }
  } as unknown as ResourceClass<K, D, X>;
}

/** A node's SSH identity: the host key pinned from config, or recorded on first contact. */
export const SshHost = resource("ssh-host", ["hostKey", "fingerprint"], { type: "SshHost" });
export type SshHost = InstanceType<typeof SshHost>;

/** An ed25519 key pair made by the program (a lab VM's host key). */
export const SshKeyPair = resource("ssh-keypair", ["publicKey", "privateKey"], { type: "SshKeyPair", secret: ["privateKey"] });
export type SshKeyPair = InstanceType<typeof SshKeyPair>;

const RemoteFileBase = resource("remote-file", ["backup"], { type: "RemoteFile", expose: ["content"] });
/** A whole file the program owns; `secretContent` keeps its content out of the state in clear. */
export class RemoteFile extends RemoteFileBase {
  constructor(name: string, args: ConstructorParameters<typeof RemoteFileBase>[1] & { secretContent?: boolean }, opts?: Opts) {
    const { secretContent, ...props } = args;
    super(name, props, secretContent ? { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "content"] } : opts);
  }
}

/** A marked block in a file the program shares with the system. */
export const FileBlock = resource("file-block", ["createdFile"], { type: "FileBlock" });
export type FileBlock = InstanceType<typeof FileBlock>;

export const Packages = resource("packages", ["installedByUs"], { type: "Packages" });
export type Packages = InstanceType<typeof Packages>;

/** A package repository on a Debian/Ubuntu node: its pinned signing key and source list. */
export const AptRepository = resource("apt-repository", [], { type: "AptRepository" });
export type AptRepository = InstanceType<typeof AptRepository>;

/** Kernel modules, sysctl values and mounts, live and restored on delete. */
export const HostSettings = resource("host-settings", ["restore"], { type: "HostSettings" });
export type HostSettings = InstanceType<typeof HostSettings>;

/** An unprivileged system account (keepalived's check script user) and the directories it may search. */
export const SystemUser = resource("system-user", ["present", "createdByUs"], { type: "SystemUser" });
export type SystemUser = InstanceType<typeof SystemUser>;

export const Service = resource("service", ["before"], {
  type: "Service",
  defaults: { reloadToken: "", restartToken: "", readyCheck: "" },
});
export type Service = InstanceType<typeof Service>;

export const PolicyRouting = resource("policy-routing", [], { type: "PolicyRouting" });
export type PolicyRouting = InstanceType<typeof PolicyRouting>;

/** The cluster: `kubeadm init` once, then its admin kubeconfig and CA hash from any control plane. */
export const KubeadmInit = resource("kubeadm-init", ["adminKubeconfig", "caCertHash", "dryRunOutput", "generation"], {
  type: "KubeadmInit",
  defaults: { restore: null, renewCertificatesBeforeDays: 30 },
  // the dry-run output prints a bootstrap token and the certificate key
  secret: ["adminKubeconfig", "dryRunOutput", "controlPlanes"],
});
export type KubeadmInit = InstanceType<typeof KubeadmInit>;

/** One node's membership of the cluster. */
export const KubeadmJoin = resource("kubeadm-join", ["member", "certificateExpiry"], {
  type: "KubeadmJoin",
  secret: ["controlPlanes"],
  defaults: { generation: "", renewCertificatesBeforeDays: 30, vip: "", vipHandOver: null },
});
export type KubeadmJoin = InstanceType<typeof KubeadmJoin>;

/** An on-demand etcd snapshot copied to the machine running Pulumi, with its checksum. */
export const EtcdSnapshot = resource("etcd-snapshot", ["node", "remotePath", "file", "sha256", "bytes", "revision"], {
  type: "EtcdSnapshot",
  secret: ["controlPlanes"],
});
export type EtcdSnapshot = InstanceType<typeof EtcdSnapshot>;

export const LibvirtNetwork = resource("libvirt-network", [], { type: "LibvirtNetwork" });
export type LibvirtNetwork = InstanceType<typeof LibvirtNetwork>;

/** The lab's prerequisites (tools here; libvirt, the pool and the domain type there), checked at preview. */
export const LibvirtHypervisor = resource("libvirt-hypervisor", ["libvirtVersion"], { type: "LibvirtHypervisor" });
export type LibvirtHypervisor = InstanceType<typeof LibvirtHypervisor>;

/** A base image downloaded from a URL, verified against its checksum, uploaded into a libvirt pool. */
export const LibvirtImage = resource("libvirt-image", ["path"], { type: "LibvirtImage" });
export type LibvirtImage = InstanceType<typeof LibvirtImage>;

const LibvirtVolumeBase = resource("libvirt-volume", ["path"], { type: "LibvirtVolume" });
/** A disk or a cloud-init seed ISO in a libvirt pool; a seed's content is secret (it holds a host key). */
export class LibvirtVolume extends LibvirtVolumeBase {
  constructor(name: string, args: ConstructorParameters<typeof LibvirtVolumeBase>[1], opts?: Opts) {
    super(
      name,
      args,
      args.cloudInit ? { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "cloudInit"] } : opts,
    );
  }
}

export const LibvirtDomain = resource("libvirt-domain", [], { type: "LibvirtDomain" });
export type LibvirtDomain = InstanceType<typeof LibvirtDomain>;
