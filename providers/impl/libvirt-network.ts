// LibvirtNetwork: defined, active and autostarted; a changed definition is redefined and the
// network restarted only when it is running with the old one.
import type * as pulumi from "@pulumi/pulumi";
import { canonical, diffOf, type Provider } from "./common";
import { defineFrom, ownedParts, virsh } from "../libvirt/virsh";

export interface LibvirtNetworkInputs {
  uri: string;
  name: string;
  xml: string;
}

async function liveXml(uri: string, name: string): Promise<string | undefined> {
  const r = await virsh(uri, ["net-dumpxml", "--inactive", name], { allowFail: true });
  return r.code === 0 ? r.stdout : undefined;
}

async function ensure(i: LibvirtNetworkInputs): Promise<void> {
  const live = await liveXml(i.uri, i.name);
  const redefine = !live || canonical(ownedParts(live)) !== canonical(ownedParts(i.xml));
  if (redefine) await defineFrom(i.uri, "net-define", i.xml, live);
  const info = (await virsh(i.uri, ["net-info", i.name])).stdout;
  const active = /^Active:\s+yes/m.test(info);
  if (active && redefine && live) await virsh(i.uri, ["net-destroy", i.name]);
  if (!active || (redefine && live)) await virsh(i.uri, ["net-start", i.name]);
  if (!/^Autostart:\s+yes/m.test(info)) await virsh(i.uri, ["net-autostart", i.name]);
}

export const provider: Provider<LibvirtNetworkInputs, LibvirtNetworkInputs> = {
  async create(inputs: LibvirtNetworkInputs) {
    await ensure(inputs);
    return { id: inputs.name, outs: inputs };
  },
  async diff(_id, olds: LibvirtNetworkInputs, news: LibvirtNetworkInputs) {
    return diffOf(olds as never, news as never, ["xml"], ["name", "uri"]);
  },
  async read(id, props: LibvirtNetworkInputs) {
    const live = await liveXml(props.uri, props.name);
    const same = live !== undefined && canonical(ownedParts(live)) === canonical(ownedParts(props.xml));
    return { id, props: { ...props, xml: same ? props.xml : (live ?? "") } };
  },
  async update(_id, _olds, news: LibvirtNetworkInputs) {
    await ensure(news);
    return { outs: news };
  },
  async delete(_id, props: LibvirtNetworkInputs) {
    await virsh(props.uri, ["net-destroy", props.name], { allowFail: true });
    await virsh(props.uri, ["net-undefine", props.name], { allowFail: true });
  },
};
