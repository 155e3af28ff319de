// LibvirtVolume: a disk in a storage pool — a qcow2 overlay on a base image, a blank qcow2, or
// a raw volume uploaded from content (the cloud-init seed). Deleted with the resource.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type * as pulumi from "@pulumi/pulumi";
import { diffOf, type Provider } from "./common";
import { virsh, volPath } from "../libvirt/virsh";

export interface LibvirtVolumeInputs {
  uri: string;
  pool: string;
  name: string;
  capacityGiB?: number;
  /** qcow2 backing file on the hypervisor */
  baseImage?: string;
  /** cloud-init NoCloud files: the volume becomes a "cidata" ISO built from them */
  cloudInit?: { userData: string; metaData: string; networkConfig: string };
}

export interface LibvirtVolumeOutputs extends LibvirtVolumeInputs {
  path: string;
}

// The NoCloud seed: an ISO9660 volume labelled "cidata" (genisoimage on the machine running pulumi).
function seedIso(dir: string, ci: NonNullable<LibvirtVolumeInputs["cloudInit"]>, out: string): Buffer {
  const src = path.join(dir, "cidata");
  fs.mkdirSync(src, { mode: 0o700 });
  fs.writeFileSync(path.join(src, "user-data"), ci.userData, { mode: 0o600 });
  fs.writeFileSync(path.join(src, "meta-data"), ci.metaData);
  fs.writeFileSync(path.join(src, "network-config"), ci.networkConfig);
  const r = spawnSync("genisoimage", ["-quiet", "-output", out, "-volid", "cidata", "-joliet", "-rock", src], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`genisoimage -output ${out} -volid cidata exited ${r.status ?? r.error?.message}: ${r.stderr}`);
  return fs.readFileSync(out);
}

/**
 * A base image put into the pool's directory by hand (the README's way) is unknown to libvirt
 * until the pool is refreshed: refresh once, then name the key if it still is not a volume.
 */
async function ensureKnownVolume(uri: string, pool: string, image: string): Promise<void> {
  const known = async () => (await virsh(uri, ["vol-info", image], { allowFail: true })).code === 0;
  if (await known()) return;
  await virsh(uri, ["pool-refresh", pool]);
  if (await known()) return;
  throw new Error(
    `lab.baseImage ${image}: no such volume at ${uri} (pool ${pool} refreshed). Put the qcow2 image at that path ` +
      `in a storage pool's directory on the hypervisor, or give lab.baseImage as an http(s) URL with lab.baseImageChecksum`,
  );
}

async function create(i: LibvirtVolumeInputs): Promise<string> {
  const existing = await volPath(i);
  if (existing) return existing;
  if (i.cloudInit) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-vol-"));
    const tmp = path.join(dir, i.name);
    try {
      const data = seedIso(dir, i.cloudInit, tmp);
      await virsh(i.uri, ["vol-create-as", i.pool, i.name, String(data.length), "--format", "raw"]);
      await virsh(i.uri, ["vol-upload", "--pool", i.pool, i.name, tmp]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } else {
    const size = `${i.capacityGiB ?? 10}G`;
    if (i.baseImage) await ensureKnownVolume(i.uri, i.pool, i.baseImage);
    const backing = i.baseImage ? ["--backing-vol", i.baseImage, "--backing-vol-format", "qcow2"] : [];
    await virsh(i.uri, ["vol-create-as", i.pool, i.name, size, "--format", "qcow2", ...backing]);
  }
  return (await volPath(i))!;
}

export const provider: Provider<LibvirtVolumeInputs, LibvirtVolumeOutputs> = {
  async create(inputs: LibvirtVolumeInputs) {
    const outs: LibvirtVolumeOutputs = { ...inputs, path: await create(inputs) };
    return { id: `${inputs.pool}/${inputs.name}`, outs };
  },
  // A disk is replaced, never rewritten in place.
  async diff(_id, olds: LibvirtVolumeOutputs, news: LibvirtVolumeInputs) {
    return diffOf(olds as never, news as never, [], ["uri", "pool", "name", "capacityGiB", "baseImage", "cloudInit"]);
  },
  async read(id, props: LibvirtVolumeOutputs) {
    const p = await volPath(props);
    return p ? { id, props: { ...props, path: p } } : { id: "", props: {} };
  },
  async delete(_id, props: LibvirtVolumeOutputs) {
    if (await volPath(props)) await virsh(props.uri, ["vol-delete", "--pool", props.pool, props.name]);
  },
};
