// Dynamic providers are serialised into the Pulumi state with their closure. We keep that
// closure to this stub: it names an implementation module under providers/impl and loads it in
// the provider process at run time. So no secret, native module or large code is captured
// (pulumi/pulumi#8265, #4512), and `destroy` runs today's delete logic, not a stale copy (#6490).
// The stub loads the TypeScript through tsload.js (transpiled once, cached), like the program.
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";

type Impl = pulumi.dynamic.ResourceProvider;

// One provider object per kind: Pulumi serialises a dynamic provider's closure (through the V8
// inspector, the slow part of registering a resource) once per object, not once per resource.
const byKind = new Map<string, Impl>();

export function lazyProvider(kind: string): pulumi.dynamic.ResourceProvider {
  const known = byKind.get(kind);
  if (known) return known;
  const impl = (name: string) => {
    // The provider process runs with the program directory as its working directory.
    const path = require("path") as typeof import("path");
    const root = process.env.K8SBM_PROGRAM_DIR || process.cwd();
    if (!require.extensions[".ts"]) require(path.join(root, "tsload.js")).register();
    return require(path.join(root, "providers", "impl", name));
  };
  const load = (): Impl => impl(kind).provider as Impl;
  const provider: Impl = {
    // the whole stack configuration (the engine's way for dynamic providers): the unreachable nodes
    configure: async (req) => impl("common").setUnreachableNodes(req.config.get("k8s-baremetal:unreachableNodes")),
    check: (olds, news) => (load().check ? load().check!(olds, news) : Promise.resolve({ inputs: news })),
    diff: (id, olds, news) => load().diff!(id, olds, news),
    create: (inputs) => load().create(inputs),
    read: (id, props) => load().read!(id, props),
    update: (id, olds, news) => load().update!(id, olds, news),
    delete: (id, props) => (impl("common").forgottenOnDelete(kind, props) ? Promise.resolve() : load().delete!(id, props)),
  };
  byKind.set(kind, provider);
  return provider;
}

// The stub's serialised text, as pulumi.dynamic.Resource records it in `__provider`, kept on disk.
// Serialising it (the V8 inspector, and TypeScript's parser loaded for that) took 1-2 s of every
// run's critical path (issue 17) to produce the same text each time. The key is all the text
// depends on: lazyProvider's code as it runs, the kind, and the versions of @pulumi/pulumi and
// Node.js; a miss serialises exactly as pulumi.dynamic.Resource does (test/unit/provider-text.test.ts).
export const PROVIDER_TEXT_CACHE = path.join(__dirname, "..", "node_modules", ".cache", "k8s-baremetal-providers");
const texts = new Map<string, Promise<string>>();

export function providerText(kind: string): Promise<string> {
  let text = texts.get(kind);
  if (!text) texts.set(kind, (text = cachedText(kind)));
  return text;
}

async function cachedText(kind: string): Promise<string> {
  const pulumiVersion = (require("@pulumi/pulumi/package.json") as { version: string }).version;
  const key = crypto.createHash("sha256").update([pulumiVersion, process.version, kind, lazyProvider.toString()].join("\0")).digest("hex");
  const file = path.join(PROVIDER_TEXT_CACHE, `${key}.js`);
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    // not cached yet
  }
  // The same call as @pulumi/pulumi's dynamic/index.js, down to the arrow's text and the
  // variable's name, which are part of the serialised text.
  const provider = lazyProvider(kind);
  const sf = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
  if (sf.containsSecrets) throw new Error(`the ${kind} provider stub captured a secret`);
  try {
    fs.mkdirSync(PROVIDER_TEXT_CACHE, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, sf.text);
    fs.renameSync(tmp, file);
  } catch {
    // a read-only tree: serialise again next time
  }
  return sf.text;
}
