// LibvirtHypervisor: what the lab needs of the hypervisor and of this machine, checked at preview
// (the provider's check) before any network, disk or VM is made, each finding naming the config
// key and the fix: virsh and genisoimage here, a libvirt that answers at lab.uri, the storage
// pool, and the domain type (KVM). The hypervisor is not ours: nothing is made or removed.
import { spawnSync } from "child_process";
import { diffOf, type Provider } from "./common";
import { virsh } from "../libvirt/virsh";

export interface LibvirtHypervisorInputs {
  uri: string;
  pool: string;
  domainType: "kvm" | "qemu";
}

export interface LibvirtHypervisorOutputs extends LibvirtHypervisorInputs {
  /** the libvirt daemon's version, as `virsh version` reports it */
  libvirtVersion: string;
}

export interface Finding {
  property: string;
  reason: string;
}

const onPath = (cmd: string) =>
  (spawnSync(cmd, ["--version"], { stdio: "ignore", env: process.env }).error as NodeJS.ErrnoException | undefined)?.code !== "ENOENT";
/** virsh's error lines, without their "error: " prefixes */
const virshError = (s: string) =>
  s
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => l.replace(/^error: /, ""))
    .join(": ");

/** The daemon's version from `virsh version` (the library's when the daemon line is missing). */
const versionIn = (out: string) => out.match(/Running against daemon:\s*(\S+)/)?.[1] ?? out.match(/libvirt\S*\s+(\d[\d.]*)/)?.[1];

/** Everything missing, in the order an operator fixes it; [] when the lab can be built. */
export async function preflight(i: LibvirtHypervisorInputs): Promise<Finding[]> {
  return (await survey(i)).findings;
}

/** The findings, and the daemon's version when libvirt answers (one `virsh version` for both). */
async function survey(i: LibvirtHypervisorInputs): Promise<{ findings: Finding[]; version?: string }> {
  const tools = [
    [
      "virsh",
      "libvirt's client, which the program drives (Debian/Ubuntu: apt-get install libvirt-clients; Fedora: dnf install libvirt-client)",
    ],
    ["genisoimage", "it builds each VM's cloud-init seed (Debian/Ubuntu: apt-get install genisoimage)"],
  ].filter(([cmd]) => !onPath(cmd));
  if (tools.length)
    return {
      findings: tools.map(([cmd, why]) => ({ property: "uri", reason: `lab.enabled: ${cmd} is not installed on this machine: ${why}` })),
    };
  const version = await virsh(i.uri, ["version"], { allowFail: true });
  if (version.code !== 0)
    return {
      findings: [
        {
          property: "uri",
          reason:
            `lab.uri ${i.uri}: libvirt does not answer (${virshError(version.stderr)}). Install and start libvirt on the hypervisor ` +
            "(Debian/Ubuntu: apt-get install libvirt-daemon-system qemu-system-x86; systemctl enable --now libvirtd), check that this user may use it " +
            "(group libvirt), or point lab.uri at the hypervisor",
        },
      ],
    };
  const out: Finding[] = [];
  const pool = await virsh(i.uri, ["pool-info", i.pool], { allowFail: true });
  if (pool.code !== 0)
    out.push({
      property: "pool",
      reason:
        `lab.pool ${i.pool}: no such storage pool at ${i.uri} (${virshError(pool.stderr)}). Create it: virsh pool-define-as ${i.pool} dir ` +
        `--target /var/lib/libvirt/images && virsh pool-start ${i.pool} && virsh pool-autostart ${i.pool}`,
    });
  else if (!/^State:\s+running/m.test(pool.stdout))
    out.push({ property: "pool", reason: `lab.pool ${i.pool}: the pool is not running at ${i.uri}: virsh pool-start ${i.pool}` });
  const caps = await virsh(i.uri, ["domcapabilities", "--virttype", i.domainType], { allowFail: true });
  if (caps.code !== 0)
    out.push({
      property: "domainType",
      reason:
        i.domainType === "kvm"
          ? `lab.domainType kvm: ${i.uri} cannot run KVM guests (${virshError(caps.stderr)}). Enable KVM on the hypervisor ` +
            "(virtualisation in the firmware, the kvm_intel or kvm_amd module, /dev/kvm), or set lab.domainType: qemu (emulated: much slower)"
          : `lab.domainType qemu: ${i.uri} cannot run emulated guests (${virshError(caps.stderr)}): install qemu-system-x86 on the hypervisor`,
    });
  return { findings: out, version: versionIn(version.stdout) };
}

async function probed(i: LibvirtHypervisorInputs): Promise<LibvirtHypervisorOutputs> {
  const { findings, version } = await survey(i);
  if (findings.length) throw new Error(findings.map((f) => f.reason).join("\n"));
  return { ...i, libvirtVersion: version ?? "" };
}

export const provider: Provider<LibvirtHypervisorInputs, LibvirtHypervisorOutputs> = {
  async check(_olds, news) {
    const failures = await preflight(news);
    return failures.length ? { inputs: news, failures } : { inputs: news };
  },
  async create(inputs) {
    return { id: inputs.uri, outs: await probed(inputs) };
  },
  async diff(_id, olds, news) {
    return diffOf(olds as never, news as never, ["uri", "pool", "domainType"]);
  },
  async update(_id, _olds, news) {
    return { outs: await probed(news) };
  },
  // refresh records the daemon's version; a hypervisor that does not answer keeps the last one
  async read(id, props) {
    const v = await virsh(props.uri, ["version"], { allowFail: true });
    const version = v.code === 0 ? versionIn(v.stdout) : undefined;
    return { id, props: { ...props, libvirtVersion: version ?? props.libvirtVersion } };
  },
  async delete() {
    // the hypervisor is the operator's: nothing to remove
  },
};
