// Loaded (`node --require`) into the two Node.js processes of every run before @pulumi/pulumi: the
// program's (Pulumi.yaml's runtime nodeargs) and the dynamic provider's (the launcher that
// scripts/setup-pulumi.sh writes). @pulumi/pulumi loads, at start, two large packages that such a
// run rarely or never uses; they are loaded on first use instead (issue 17: 0.3-0.4 s of CPU each):
// - @npmcli/arborist (with pacote, sigstore...: about 400 files), which runtime/closure/codePaths
//   needs only for computeCodePaths (function serialisation with dependencies; this program
//   serialises its providers without it);
// - TypeScript (through @pulumi/pulumi's typescript-shim), which parses functions for closure
//   serialisation: the program needs it for its providers, the provider process never does.
// Behaviour is unchanged: the first property read loads the real module.
"use strict";
const Module = require("module");
const path = require("path");

const sep = path.sep;
const fromPulumi = (parent) =>
  !!parent && typeof parent.filename === "string" && parent.filename.includes(`${sep}@pulumi${sep}pulumi${sep}`);

/** A stand-in for a module that loads it at the first property read (or `in`, or key listing). */
function lazy(load) {
  let real;
  const get = () => (real ??= load());
  return new Proxy(
    {},
    {
      // `__importStar` returns an __esModule object as it is, without listing its keys.
      get: (_, k) => (k === "__esModule" ? true : get()[k]),
      has: (_, k) => k in get(),
      ownKeys: () => Reflect.ownKeys(get()),
      getOwnPropertyDescriptor: (_, k) => {
        const d = Reflect.getOwnPropertyDescriptor(get(), k);
        return d && { ...d, configurable: true };
      },
    },
  );
}

const load = Module._load;
Module._load = function (request, parent, isMain) {
  if (fromPulumi(parent) && (request === "@npmcli/arborist" || /(^|\/)typescript-shim$/.test(request))) {
    const args = arguments;
    return lazy(() => load.apply(this, args));
  }
  return load.apply(this, arguments);
};
