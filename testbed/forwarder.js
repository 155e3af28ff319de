#!/usr/bin/env node
// Lab port forwarder (plain JS: started by the harness, not by ts-node).
//
// The harness binds a listening TCP socket on 127.0.0.1:<port> in the ROOT network namespace
// and hands it over as fd 3; this process runs inside the lab host's network namespace, so
// every accepted connection is relayed to <target>:<port> *inside the lab network*. Lab
// traffic never touches a real interface and the root namespace gets no route into the lab.
//
// usage: forwarder.js <target-ip> <target-port> <pidfile>
"use strict";
const fs = require("fs");
const net = require("net");

const [target, portText, pidfile] = process.argv.slice(2);
const targetPort = Number(portText);
if (!target || !targetPort || !pidfile) {
  console.error("usage: forwarder.js <target-ip> <target-port> <pidfile>");
  process.exit(2);
}

const server = net.createServer({ noDelay: true }, (client) => {
  const upstream = net.connect({ host: target, port: targetPort, noDelay: true });
  let connected = false;
  upstream.on("connect", () => {
    connected = true;
    client.pipe(upstream);
    upstream.pipe(client);
  });
  upstream.on("error", () => {
    // sshd not (yet) listening: reset, so the client sees ECONNRESET at once
    if (!connected && typeof client.resetAndDestroy === "function") client.resetAndDestroy();
    else client.destroy();
  });
  client.on("error", () => upstream.destroy());
  client.on("close", () => upstream.destroy());
  upstream.on("close", () => {
    if (!client.destroyed) client.end();
  });
});
server.on("error", (e) => {
  console.error(`forwarder: ${e.message}`);
  process.exit(1);
});
server.listen({ fd: 3 }, () => {
  // /proc here is the root namespace's procfs, so this is the PID the harness can kill.
  fs.writeFileSync(pidfile, fs.readlinkSync("/proc/self") + "\n");
});
for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(sig, () => process.exit(0));
