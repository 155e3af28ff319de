// LibvirtDomain: a VM defined from our XML, autostarted and running. read compares the parts
// we own, so drift shows; delete stops and undefines it.
import type * as pulumi from "@pulumi/pulumi";
import { canonical, diffOf, type Provider } from "./common";
import { defineFrom, ownedParts, virsh } from "../libvirt/virsh";

export interface LibvirtDomainInputs {
  uri: string;
  name: string;
  xml: string;
  running: boolean;
}

async function state(uri: string, name: string): Promise<{ xml?: string; running: boolean; autostart: boolean }> {
  const x = await virsh(uri, ["dumpxml", "--inactive", name], { allowFail: true });
  if (x.code !== 0) return { running: false, autostart: false };
  const info = (await virsh(uri, ["dominfo", name])).stdout;
  return { xml: x.stdout, running: /^State:\s+running/m.test(info), autostart: /^Autostart:\s+enable/m.test(info) };
}

async function ensure(i: LibvirtDomainInputs): Promise<void> {
  const s = await state(i.uri, i.name);
  const redefine = !s.xml || canonical(ownedParts(s.xml)) !== canonical(ownedParts(i.xml));
  if (redefine) await defineFrom(i.uri, "define", i.xml, s.xml);
  if (!s.autostart) await virsh(i.uri, ["autostart", i.name]);
  // A redefined running domain picks the new definition up at its next boot.
  if (i.running && !s.running) await virsh(i.uri, ["start", i.name]);
  if (!i.running && s.running) await virsh(i.uri, ["shutdown", i.name]);
}

export const provider: Provider<LibvirtDomainInputs, LibvirtDomainInputs> = {
  async create(inputs: LibvirtDomainInputs) {
    await ensure(inputs);
    return { id: inputs.name, outs: inputs };
  },
  async diff(_id, olds: LibvirtDomainInputs, news: LibvirtDomainInputs) {
    return diffOf(olds as never, news as never, ["xml", "running"], ["name", "uri"]);
  },
  async read(id, props: LibvirtDomainInputs) {
    const s = await state(props.uri, props.name);
    if (!s.xml) return { id: "", props: {} };
    const same = canonical(ownedParts(s.xml)) === canonical(ownedParts(props.xml));
    return { id, props: { ...props, xml: same ? props.xml : s.xml, running: s.running } };
  },
  async update(_id, _olds, news: LibvirtDomainInputs) {
    await ensure(news);
    return { outs: news };
  },
  async delete(_id, props: LibvirtDomainInputs) {
    await virsh(props.uri, ["destroy", props.name], { allowFail: true });
    await virsh(props.uri, ["undefine", props.name, "--nvram"], { allowFail: true }).then((r) =>
      r.code === 0 ? r : virsh(props.uri, ["undefine", props.name]),
    );
  },
};
