// AptRepository: a package repository on a Debian/Ubuntu node, the Kubernetes way (a keyring file
// named by `signed-by` in its own source list). The node downloads the signing key with apt's own
// fetcher; the program checks its fingerprint against the pinned one before apt is told to trust
// it, then refreshes the index of this repository alone.
import { keyringPath, sourceLine, sourceListPath, type AptRepository } from "../../render/apt";
import { fingerprints } from "../os/openpgp";
import { shq } from "../ssh/shell";
import type { Host, SshTarget } from "../ssh/types";
import { diffOf, hostOf, type Provider } from "./common";

export interface AptRepositoryInputs extends AptRepository {
  connection: SshTarget;
}

export type AptRepositoryOutputs = AptRepositoryInputs;

/** What the node has: the URL its source list names, and its keyring's fingerprints ("" when absent or unreadable). */
async function probe(host: Host, name: string): Promise<{ url: string; fingerprint: string[] }> {
  const list = (await host.readFile(sourceListPath(name)))?.toString("utf8") ?? "";
  const url = /^deb \[signed-by=\S+\] (\S+) \/$/m.exec(list)?.[1] ?? "";
  const key = await host.readFile(keyringPath(name));
  let fingerprint: string[] = [];
  try {
    if (key) fingerprint = fingerprints(key);
  } catch {
    // not a key (truncated, replaced): reported as none, and written again
  }
  return { url: list === sourceLine({ name, url }) ? url : "", fingerprint };
}

/** apt-get update of this repository's list only: other sources' failures are not ours to report. */
export const updateIndexCommand = (name: string): string =>
  `apt-get update -o Dir::Etc::sourcelist=${shq(sourceListPath(name))} -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0`;

/** Why the downloaded key must not be trusted (and what to do), or undefined when it is the pinned one. */
function keyRefusal(r: AptRepository, key: Buffer): { why: string; fix?: string } | undefined {
  let got: string[];
  try {
    got = fingerprints(key);
  } catch (e) {
    return { why: `${r.keyUrl} did not serve an OpenPGP public key (${(e as Error).message})` };
  }
  if (got.includes(r.fingerprint)) return undefined;
  return {
    why:
      `the signing key at ${r.keyUrl} has fingerprint ${got.join(", ")}, not the pinned ` +
      `packages.kubernetesRepository.keyFingerprint ${r.fingerprint}`,
    fix: "If the repository's key was rotated, check the new one out of band and set packages.kubernetesRepository.keyFingerprint to it.",
  };
}

async function ensure(r: AptRepositoryInputs): Promise<void> {
  const host = await hostOf(r.connection);
  const have = await probe(host, r.name);
  if (have.url === r.url && have.fingerprint.includes(r.fingerprint)) return;
  const keyring = keyringPath(r.name);
  const fetched = `${keyring}.download`;
  if (!have.fingerprint.includes(r.fingerprint)) {
    // apt's fetcher (present wherever apt is; curl may not be): the key lands beside the keyring, unused until checked
    await host.exec(
      `mkdir -p /etc/apt/keyrings && rm -f ${shq(fetched)} && /usr/lib/apt/apt-helper download-file ${shq(r.keyUrl)} ${shq(fetched)}`,
      { mutates: true, timeoutMs: 5 * 60_000 },
    );
    const refusal = keyRefusal(r, (await host.readFile(fetched)) ?? Buffer.alloc(0));
    if (refusal) {
      await host.exec(`rm -f ${shq(fetched)}`, { mutates: true });
      throw new Error(`${r.connection.name}: ${refusal.why}; nothing was changed${refusal.fix ? `. ${refusal.fix}` : ""}`);
    }
    await host.exec(`chmod 0644 ${shq(fetched)} && mv -f ${shq(fetched)} ${shq(keyring)}`, { mutates: true });
  }
  await host.writeFile(sourceListPath(r.name), sourceLine(r), 0o644);
  await host.exec(updateIndexCommand(r.name), { mutates: true, timeoutMs: 10 * 60_000 });
}

export const provider: Provider<AptRepositoryInputs, AptRepositoryOutputs> = {
  async create(inputs: AptRepositoryInputs) {
    await ensure(inputs);
    return { id: `${inputs.connection.name}:apt:${inputs.name}`, outs: inputs };
  },
  async diff(_id, olds: AptRepositoryOutputs, news: AptRepositoryInputs) {
    return diffOf(olds as never, news as never, ["url", "keyUrl", "fingerprint"], ["name"]);
  },
  // Drift: the list's URL and the keyring's fingerprint as the node has them ("" when gone or changed).
  async read(id, props: AptRepositoryOutputs) {
    const have = await probe(await hostOf(props.connection), props.name);
    const fingerprint = have.fingerprint.includes(props.fingerprint) ? props.fingerprint : (have.fingerprint[0] ?? "");
    return { id, props: { ...props, url: have.url, fingerprint } };
  },
  async update(_id, _olds: AptRepositoryOutputs, news: AptRepositoryInputs) {
    await ensure(news);
    return { outs: news };
  },
  async delete(_id, props: AptRepositoryOutputs) {
    const host = await hostOf(props.connection);
    await host.exec(`rm -f ${shq(sourceListPath(props.name))} ${shq(keyringPath(props.name))}`, { mutates: true });
  },
};
