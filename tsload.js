// Loads the program's TypeScript without compiling it on every run. Each .ts file is transpiled
// once (TypeScript's transpileModule with tsconfig.json's options: what `ts-node --transpile-only`
// does) and the JavaScript is kept in node_modules/.cache/k8s-baremetal-ts/, keyed by the file's
// path and content, the compiler's version and tsconfig.json. An edited file is transpiled again
// on its next load, so what runs is always the source as it is now, and the TypeScript compiler
// is only loaded when something changed. Types are checked by `npm test` (tsc --noEmit), not at
// run time. Used by the program's entry (main.js) and by the dynamic-provider stub
// (providers/dynamic.ts) in the provider processes.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const ROOT = __dirname;
const CACHE = process.env.K8SBM_TS_CACHE || path.join(ROOT, "node_modules", ".cache", "k8s-baremetal-ts");
/** bumped when this file changes what it emits */
const FORMAT = "1";

let salt;
/** what every cache key shares: the compiler version and the project's compiler options */
function keySalt() {
  if (salt === undefined) {
    const tsVersion = JSON.parse(fs.readFileSync(require.resolve("typescript/package.json", { paths: [ROOT] }), "utf8")).version;
    salt = `${FORMAT}\0${tsVersion}\0${fs.readFileSync(path.join(ROOT, "tsconfig.json"), "utf8")}`;
  }
  return salt;
}

let compiler;
function transpile(source, filename) {
  if (!compiler) {
    const ts = require(require.resolve("typescript", { paths: [ROOT] }));
    const raw = JSON.parse(fs.readFileSync(path.join(ROOT, "tsconfig.json"), "utf8")).compilerOptions;
    const { options, errors } = ts.convertCompilerOptionsFromJson(raw, ROOT);
    if (errors.length) throw new Error(`tsconfig.json: ${ts.flattenDiagnosticMessageText(errors[0].messageText, "\n")}`);
    compiler = {
      ts,
      options: {
        ...options,
        module: ts.ModuleKind.CommonJS,
        sourceMap: true,
        inlineSourceMap: false,
        inlineSources: false,
        declaration: false,
        declarationMap: false,
        noEmit: false,
        outDir: undefined,
      },
    };
  }
  const out = compiler.ts.transpileModule(source, { compilerOptions: compiler.options, fileName: filename, reportDiagnostics: false });
  return { js: out.outputText.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n"), map: out.sourceMapText };
}

/** cache files of a .ts file's JavaScript and source map, by path and content */
const maps = new Map();
function compiled(filename) {
  const source = fs.readFileSync(filename, "utf8");
  const key = crypto.createHash("sha256").update(keySalt()).update("\0").update(filename).update("\0").update(source).digest("hex");
  const js = path.join(CACHE, key.slice(0, 2), `${key}.js`);
  maps.set(filename, `${js}.map`);
  try {
    return fs.readFileSync(js, "utf8");
  } catch {
    // not cached yet
  }
  const out = transpile(source, filename);
  // write-then-rename: concurrent runs never read a partial file
  const tmp = `${js}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(path.dirname(js), { recursive: true });
    if (out.map) {
      fs.writeFileSync(`${tmp}.map`, out.map);
      fs.renameSync(`${tmp}.map`, `${js}.map`);
    }
    fs.writeFileSync(tmp, out.js);
    fs.renameSync(tmp, js);
  } catch {
    // a read-only tree still runs, it just transpiles again next time
  }
  return out.js;
}

// Stack traces point into the .ts files, as they did with ts-node.
function installSourceMaps() {
  let support;
  try {
    const pulumiDir = path.dirname(require.resolve("@pulumi/pulumi/package.json", { paths: [ROOT] }));
    support = require(require.resolve("source-map-support", { paths: [pulumiDir] }));
  } catch {
    return;
  }
  support.install({
    environment: "node",
    handleUncaughtExceptions: false,
    retrieveSourceMap(source) {
      const file = maps.get(source);
      if (!file) return null;
      try {
        return { url: source, map: fs.readFileSync(file, "utf8") };
      } catch {
        return null;
      }
    },
  });
}

/** Makes require() load .ts files through the cache, unless something else (ts-node, jest) already does. */
function register() {
  if (require.extensions[".ts"]) return;
  require.extensions[".ts"] = function (module, filename) {
    module._compile(compiled(filename), filename);
  };
  installSourceMaps();
}

module.exports = { register, compiled };
