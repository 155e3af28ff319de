// LibvirtImage: a base image given by URL and checksum (lab.baseImage / lab.baseImageChecksum),
// downloaded once on the machine running Pulumi, verified, and uploaded into the libvirt pool as a
// volume named by its digest, on which each VM's disk is a qcow2 overlay. Deleted with the
// resource (after the disks on it) unless another stack's disks still use it; the verified
// download stays cached on this machine.
import * as fs from "fs";
import { diffOf, type Provider } from "./common";
import { virsh, volPath } from "../libvirt/virsh";
import { fetchVerified } from "../libvirt/image-download";

export interface LibvirtImageInputs {
  uri: string;
  pool: string;
  /** the volume's name in the pool (baseVolumeName of the checksum) */
  name: string;
  url: string;
  /** sha256:<hex> | sha512:<hex> */
  checksum: string;
}

export interface LibvirtImageOutputs extends LibvirtImageInputs {
  /** the volume's path on the hypervisor: the disks' backing file */
  path: string;
}

/** Download progress on the provider's stderr, which the engine shows: every 10%, or every 64 MiB without a length. */
function progress(url: string) {
  let shown = -1;
  return (received: number, total: number | undefined) => {
    const step = total ? Math.floor((received / total) * 10) : Math.floor(received / (64 << 20));
    if (step === shown) return;
    shown = step;
    const mib = (n: number) => (n / (1 << 20)).toFixed(1);
    console.error(`lab.baseImage: ${url}: ${mib(received)}${total ? ` of ${mib(total)} MiB (${step * 10}%)` : " MiB"}`);
  };
}

async function create(i: LibvirtImageInputs): Promise<LibvirtImageOutputs> {
  // The name carries the digest: a volume of that name already holds this image (another
  // stack's on the same hypervisor), and is used as it is.
  const existing = await volPath(i);
  if (existing) return { ...i, path: existing };
  const file = await fetchVerified(i.url, i.checksum, { progress: progress(i.url) });
  // created raw at the exact size, then filled: libvirt probes the qcow2 format on refresh
  await virsh(i.uri, ["vol-create-as", i.pool, i.name, String(fs.statSync(file).size), "--format", "raw"]);
  try {
    await virsh(i.uri, ["vol-upload", "--pool", i.pool, i.name, file]);
  } catch (e) {
    await virsh(i.uri, ["vol-delete", "--pool", i.pool, i.name], { allowFail: true });
    throw e;
  }
  await virsh(i.uri, ["pool-refresh", i.pool]);
  return { ...i, path: (await volPath(i))! };
}

/** Volumes of the pool other than the image that are overlays on it (another stack's disks). */
async function dependents(i: LibvirtImageOutputs): Promise<string[]> {
  const names = (await virsh(i.uri, ["vol-list", i.pool])).stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((n) => n && n !== i.name);
  const out: string[] = [];
  for (const n of names) {
    const xml = (await virsh(i.uri, ["vol-dumpxml", "--pool", i.pool, n], { allowFail: true })).stdout;
    if (xml.includes(`<path>${i.path}</path>`) && /<backingStore>/.test(xml)) out.push(n);
  }
  return out;
}

export const provider: Provider<LibvirtImageInputs, LibvirtImageOutputs> = {
  async create(inputs) {
    return { id: `${inputs.pool}/${inputs.name}`, outs: await create(inputs) };
  },
  // Another image (checksum, hence name) or place is another volume; another URL for the same
  // digest (a mirror) is the same image and only recorded.
  async diff(_id, olds: LibvirtImageOutputs, news: LibvirtImageInputs) {
    return diffOf(olds as never, news as never, ["url"], ["uri", "pool", "name", "checksum"]);
  },
  async update(_id, olds: LibvirtImageOutputs, news: LibvirtImageInputs) {
    return { outs: { ...olds, url: news.url } };
  },
  async read(id, props: LibvirtImageOutputs) {
    const p = await volPath(props);
    return p ? { id, props: { ...props, path: p } } : { id: "", props: {} };
  },
  // Kept while another volume is an overlay on it: a second stack on the same hypervisor shares it.
  async delete(_id, props: LibvirtImageOutputs) {
    if (!(await volPath(props))) return;
    const users = await dependents(props);
    if (users.length) console.error(`lab.baseImage: kept ${props.name} in pool ${props.pool}: still the base of ${users.join(", ")}`);
    else await virsh(props.uri, ["vol-delete", "--pool", props.pool, props.name]);
  },
};
