// Dynamic providers are serialised into the Pulumi state with their closure. We keep that
// closure to this stub: it names an implementation module under providers/impl and loads it in
// the provider process at run time. So no secret, native module or large code is captured
// (pulumi/pulumi#8265, #4512), and `destroy` runs today's delete logic, not a stale copy (#6490).
// The stub loads the TypeScript through tsload.js (transpiled once, cached), like the program.
import * as pulumi from "@pulumi/pulumi";

type Impl = pulumi.dynamic.ResourceProvider;

// One provider object per kind: Pulumi serialises a dynamic provider's closure (through the V8
// inspector, the slow part of registering a resource) once per object, not once per resource.
const byKind = new Map<string, Impl>();

export function lazyProvider(kind: string): pulumi.dynamic.ResourceProvider {
  const known = byKind.get(kind);
  if (known) return known;
  const load = (): Impl => {
    // The provider process runs with the program directory as its working directory.
    const path = require("path") as typeof import("path");
    const root = process.env.K8SBM_PROGRAM_DIR || process.cwd();
    if (!require.extensions[".ts"]) require(path.join(root, "tsload.js")).register();
    return require(path.join(root, "providers", "impl", kind)).provider as Impl;
  };
  const provider: Impl = {
    check: (olds, news) => (load().check ? load().check!(olds, news) : Promise.resolve({ inputs: news })),
    diff: (id, olds, news) => load().diff!(id, olds, news),
    create: (inputs) => load().create(inputs),
    read: (id, props) => load().read!(id, props),
    update: (id, olds, news) => load().update!(id, olds, news),
    delete: (id, props) => load().delete!(id, props),
  };
  byKind.set(kind, provider);
  return provider;
}
