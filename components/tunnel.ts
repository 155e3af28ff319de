// An SSH tunnel from 127.0.0.1 to the control-plane VIP through a control-plane node, for
// when the VIP is not routable from where `pulumi` runs (cilium.apiAccess = "ssh-tunnel").
// It lives in the program process; the apiserver certificate carries 127.0.0.1 as a SAN (seed).
import * as net from "net";
import type { SshTarget } from "../providers/ssh/types";

export interface Tunnel {
  port: number;
}

export async function openApiTunnel(via: SshTarget, target: { host: string; port: number }): Promise<Tunnel> {
  // Loaded lazily: only stacks that tunnel pay for ssh2 in the program process.
  const { connect } = await import("../providers/ssh");
  const server = net.createServer((sock) => {
    connect(via)
      .then((h) => h.forwardOut(target.host, target.port))
      .then((stream) => sock.pipe(stream).pipe(sock))
      .catch((e: Error) => sock.destroy(e));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  // Do not keep the program alive: it ends when its last resource is done, and so may the tunnel.
  server.unref();
  return { port: (server.address() as net.AddressInfo).port };
}

/** Point a kubeconfig at the tunnel; the VIP stays the TLS server name. */
export function kubeconfigViaTunnel(kubeconfig: string, port: number, vip: string): string {
  return kubeconfig.replace(/server: https:\/\/[^\s]+/, `server: https://127.0.0.1:${port}\n    tls-server-name: ${vip}`);
}
