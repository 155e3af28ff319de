// Packages: installs what is missing through the OS configurer; removes on delete only what it
// installed itself (a package that was there before stays).
import type * as pulumi from "@pulumi/pulumi";
import type { OsFamily } from "../../model/schema";
import { nameOf, packageCommands, satisfiedSpecs, unavailablePackages } from "../os/configurer";
import { RemoteError } from "../ssh/errors";
import type { Host, SshTarget } from "../ssh/types";
import { diffOf, hostOf, type Provider } from "./common";

export interface PackagesInputs {
  connection: SshTarget;
  os: OsFamily;
  packages: string[];
  /**
   * Pinned packages whose version moves only in the cluster's rolling upgrade once the node has
   * joined (kubeadm, kubelet, kubectl: a kubelet must not move before its control plane, nor
   * undrained). On a member they are installed where missing, never moved here.
   */
  upgradedByCluster?: string[];
}

export interface PackagesOutputs extends PackagesInputs {
  installedByUs: string[];
}

/** The package specs (a name, or a pinned "name=version") the host's installed packages satisfy. */
export async function installedOf(host: Host, os: OsFamily, pkgs: string[]): Promise<Set<string>> {
  if (!pkgs.length) return new Set();
  const r = await host.exec(packageCommands(os).installed(pkgs.map(nameOf)));
  return satisfiedSpecs(pkgs, r.stdout);
}

/** What a run must install, given what the host has. Exported for planning tests. */
export function missingPackages(wanted: string[], installed: Set<string>): string[] {
  return wanted.filter((p) => !installed.has(p));
}

/** A failed install that names packages the repositories lack: said plainly, the command's error kept below. */
export function unavailableError(e: unknown, inputs: Pick<PackagesInputs, "os" | "connection">): Error | undefined {
  if (!(e instanceof RemoteError)) return undefined;
  const gone = unavailablePackages(inputs.os, `${e.stderr}\n${e.stdout}`);
  if (!gone.length) return undefined;
  const { name, host, port } = inputs.connection;
  const list = gone.join(", ");
  return new Error(
    `${name} (${host}:${port}): package${gone.length > 1 ? "s" : ""} ${list} cannot be installed: the distribution's package ` +
      `repositories configured on ${name} do not have ${gone.length > 1 ? "them" : "it"}, so nothing was installed. Add the ` +
      `repository that provides ${list} (kubeadm, kubelet, kubectl and cri-tools come from the Kubernetes package repository, ` +
      `which the program adds on Debian/Ubuntu unless packages.kubernetesRepository is false) or install ${gone.length > 1 ? "them" : "it"} by hand, then run again.\n${e.message}`,
  );
}

/** A node that has joined a cluster (kubeadm wrote its kubelet's kubeconfig). */
const MEMBER = "[ -e /etc/kubernetes/kubelet.conf ]";

/** Of `missing`, those the cluster's upgrade moves on a member and that are installed (at another version) there. */
async function leftToUpgrade(host: Host, inputs: PackagesInputs, missing: string[]): Promise<Set<string>> {
  const byCluster = missing.filter((p) => inputs.upgradedByCluster?.includes(nameOf(p)));
  if (!byCluster.length || (await host.exec(MEMBER, { allowFail: true })).code !== 0) return new Set();
  const installed = await installedOf(host, inputs.os, byCluster.map(nameOf));
  return new Set(byCluster.filter((p) => installed.has(nameOf(p))));
}

async function ensure(inputs: PackagesInputs): Promise<string[]> {
  const host = await hostOf(inputs.connection);
  let missing = missingPackages(inputs.packages, await installedOf(host, inputs.os, inputs.packages));
  if (!missing.length) return missing;
  const left = await leftToUpgrade(host, inputs, missing);
  missing = missing.filter((p) => !left.has(p));
  if (!missing.length) return missing;
  try {
    await host.exec(packageCommands(inputs.os).install(missing), { mutates: true, timeoutMs: 30 * 60_000 });
  } catch (e) {
    throw unavailableError(e, inputs) ?? e;
  }
  return missing;
}

export const provider: Provider<PackagesInputs, PackagesOutputs> = {
  async create(inputs: PackagesInputs) {
    const outs: PackagesOutputs = { ...inputs, installedByUs: await ensure(inputs) };
    return { id: `${inputs.connection.name}:packages`, outs };
  },
  async diff(_id, olds: PackagesOutputs, news: PackagesInputs) {
    return diffOf(olds as never, news as never, ["packages", "os"]);
  },
  // Drift: the packages that are still installed (a removed one shows as a change).
  async read(id, props: PackagesOutputs) {
    const have = await installedOf(await hostOf(props.connection), props.os, props.packages);
    return { id, props: { ...props, packages: props.packages.filter((p) => have.has(p)) } };
  },
  async update(_id, olds: PackagesOutputs, news: PackagesInputs) {
    const added = await ensure(news);
    const names = new Set(news.packages.map(nameOf));
    const kept = olds.installedByUs.filter((p) => names.has(nameOf(p)));
    return { outs: { ...news, installedByUs: [...new Set([...kept, ...added])] } };
  },
  async delete(_id, props: PackagesOutputs) {
    if (!props.installedByUs.length) return;
    const host = await hostOf(props.connection);
    // by name: a pinned package the operator has since moved to another version is still ours
    const names = [...(await installedOf(host, props.os, props.installedByUs.map(nameOf)))];
    if (names.length) await host.exec(packageCommands(props.os).remove(names), { mutates: true, timeoutMs: 30 * 60_000 });
  },
};
