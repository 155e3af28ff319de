// Bench-only instrumentation, loaded into every Node.js process of one CLI run with
// NODE_OPTIONS="--require <this file>" when K8SBM_TIMING names a file (bench/testbed-stack.ts
// sets both). Each process appends JSON lines {t (epoch ms), pid, proc, ev, ...} to that file:
//   start / exit            the process's start (performance.timeOrigin) and end
//   load                    an inclusive require() of a watched package or of the program's entry
//   ts                      TypeScript compilation (ts-node or the program's loader) summed per process
//   serialize               Pulumi's closure serialisation of a dynamic provider (one per call)
//   listening               a dynamic-provider process printed its port (ready for the engine)
//   rpc                     a provider method call (check, diff, read, ...) and its duration
//   ssh-connect / ssh-exec  an SSH connection (TCP + handshake + auth) / a command, with durations
// Nothing is written without K8SBM_TIMING; the product never loads this file.
"use strict";
const file = process.env.K8SBM_TIMING;
if (file) {
  const fs = require("fs");
  const path = require("path");
  const Module = require("module");
  const { performance } = require("perf_hooks");
  const origin = performance.timeOrigin;
  const now = () => origin + performance.now();
  const script = process.argv[1] || "";
  const proc = /cmd[/\\]run/.test(script)
    ? "program"
    : /dynamic-provider/.test(script)
      ? "provider"
      : process.argv.length <= 1 || process.execArgv.includes("-e") || process.execArgv.includes("-p")
        ? "node-eval"
        : path.basename(script);
  const lines = [];
  const emit = (ev, extra) => lines.push(JSON.stringify({ t: now(), pid: process.pid, proc, ev, ...extra }));
  const flush = () => {
    if (lines.length) fs.appendFileSync(file, lines.splice(0).join("\n") + "\n");
  };
  // Provider processes are killed by the engine: write as we go (small, cheap appends).
  const flushSoon = (() => {
    let timer;
    return () => {
      if (!timer) timer = setTimeout(() => ((timer = undefined), flush()), 20).unref();
    };
  })();
  lines.push(JSON.stringify({ t: origin, pid: process.pid, proc, ev: "start" }));
  emit("preload");
  process.on("exit", () => {
    emit("exit", { ts: tsTotal, tsFiles });
    flush();
  });
  // Record a signal, then die of it as without a listener (a listener would keep the process
  // alive, and the engine waits 5 s for a provider that ignores SIGINT).
  for (const sig of ["SIGINT", "SIGTERM"]) {
    const onSignal = () => {
      emit("signal", { sig });
      flush();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.prependListener(sig, onSignal);
  }

  // inclusive load times of watched packages and the program's entry
  const watched = new Set(["@pulumi/pulumi", "@pulumi/kubernetes", "ssh2", "typescript", "ts-node", "zod", "yaml"]);
  const origLoad = Module._load;
  let depth = 0;
  Module._load = function (request, parent, isMain) {
    const entry = proc === "program" && path.isAbsolute(request) && parent && /cmd[/\\]run[/\\]run\.js$/.test(parent.filename || "");
    const impl = /providers[/\\]impl[/\\][a-z-]+$/.test(request);
    const hit = watched.has(request) || entry || impl;
    if (!hit) return wrapExports(request, origLoad.apply(this, arguments));
    const t0 = now();
    depth++;
    try {
      return wrapExports(request, origLoad.apply(this, arguments));
    } finally {
      depth--;
      emit("load", { what: entry ? "program" : impl ? "impl:" + path.basename(request) : request, ms: now() - t0, depth });
      flushSoon();
    }
  };

  // TypeScript compile time: a .ts handler's time minus its own module's evaluation (which
  // includes the nested requires, whose compile time their own handlers count).
  let tsTotal = 0;
  let tsFiles = 0;
  const evalOf = new WeakMap();
  const origCompile = Module.prototype._compile;
  Module.prototype._compile = function () {
    const t0 = now();
    try {
      return origCompile.apply(this, arguments);
    } finally {
      evalOf.set(this, (evalOf.get(this) || 0) + now() - t0);
    }
  };
  let tsHandler = Module._extensions[".ts"];
  const wrapTs = (fn) =>
    function (m) {
      const t0 = now();
      try {
        return fn.apply(this, arguments);
      } finally {
        tsTotal += now() - t0 - (evalOf.get(m) || 0);
        tsFiles++;
      }
    };
  Object.defineProperty(Module._extensions, ".ts", {
    configurable: true,
    enumerable: true,
    get: () => tsHandler,
    set: (fn) => {
      tsHandler = typeof fn === "function" && !fn.__k8sbmTimed ? Object.assign(wrapTs(fn), { __k8sbmTimed: true }) : fn;
    },
  });

  const wrapped = new WeakSet();
  function wrapExports(request, exp) {
    if (!exp || (typeof exp !== "object" && typeof exp !== "function") || wrapped.has(exp)) return exp;
    if (/closure[/\\]serializeClosure$/.test(request) && typeof exp.serializeFunction === "function") {
      wrapped.add(exp);
      const orig = exp.serializeFunction;
      exp.serializeFunction = function () {
        const t0 = now();
        const p = orig.apply(this, arguments);
        Promise.resolve(p).then(
          (r) => emit("serialize", { t0, ms: now() - t0, bytes: r && r.text ? r.text.length : 0 }),
          () => emit("serialize", { t0, ms: now() - t0, failed: true }),
        );
        return p;
      };
    } else if (/providers[/\\]impl[/\\][a-z-]+$/.test(request) && exp.provider) {
      wrapped.add(exp);
      const kind = path.basename(request);
      for (const m of ["check", "diff", "create", "read", "update", "delete"]) {
        const orig = exp.provider[m];
        if (typeof orig !== "function") continue;
        exp.provider[m] = function () {
          const t0 = now();
          const done = (failed) => (emit("rpc", { kind, method: m, t0, ms: now() - t0, ...(failed ? { failed } : {}) }), flushSoon());
          const p = orig.apply(this, arguments);
          Promise.resolve(p).then(
            () => done(false),
            () => done(true),
          );
          return p;
        };
      }
    } else if (request === "ssh2" && exp.Client && exp.Client.prototype) {
      wrapped.add(exp);
      const C = exp.Client.prototype;
      const origConnect = C.connect;
      C.connect = function (cfg) {
        const t0 = now();
        const where = `${cfg && cfg.host}:${cfg && cfg.port}`;
        this.once("ready", () => (emit("ssh-connect", { where, t0, ms: now() - t0 }), flushSoon()));
        return origConnect.apply(this, arguments);
      };
      const origExec = C.exec;
      C.exec = function (cmd, opts, cb) {
        const t0 = now();
        const callback = typeof opts === "function" ? opts : cb;
        const wrap = (err, stream) => {
          if (stream) stream.once("close", () => (emit("ssh-exec", { t0, ms: now() - t0 }), flushSoon()));
          return callback(err, stream);
        };
        return typeof opts === "function" ? origExec.call(this, cmd, wrap) : origExec.call(this, cmd, opts, wrap);
      };
    }
    return exp;
  }

  if (proc === "provider") {
    // the port on stdout tells the engine the provider is ready
    const origWrite = process.stdout.write;
    process.stdout.write = function () {
      emit("listening");
      flush();
      process.stdout.write = origWrite;
      return origWrite.apply(this, arguments);
    };
  }
}
