// An SSH tunnel from 127.0.0.1 to the control-plane VIP through a control-plane node, for
// when the VIP is not routable from where `pulumi` runs (cilium.apiAccess = "ssh-tunnel").
// It lives in the program process; the apiserver certificate carries 127.0.0.1 as a SAN (seed).
import * as net from "net";
import type { SshTarget } from "../providers/ssh/types";

export interface Tunnel {
  port: number;
}

/** The tunnel's port when cilium.tunnelPort is not set: stable per project and stack, 38000-39999. */
export function defaultTunnelPort(project: string, stack: string): number {
  let h = 0x811c9dc5; // FNV-1a
  for (const c of Buffer.from(`${project}/${stack}`)) h = Math.imul(h ^ c, 0x01000193) >>> 0;
  return 38000 + (h % 2000);
}

export async function openApiTunnel(via: SshTarget, target: { host: string; port: number }, port: number): Promise<Tunnel> {
  // Loaded lazily: only stacks that tunnel pay for ssh2 in the program process.
  const { connect } = await import("../providers/ssh");
  const server = net.createServer((sock) => {
    // Neither the accepted socket nor its SSH channel keeps the program alive: the Kubernetes
    // provider holds its connections open until the engine stops it, which it does only once
    // the program has ended — the program ends when its last resource is done.
    sock.unref();
    // A reset on either side (the apiserver behind the VIP restarting, the client going) ends
    // that connection, never the program: an unheard 'error' would crash it mid-`up`.
    sock.on("error", () => sock.destroy());
    connect(via)
      .then((h) => h.forwardOut(target.host, target.port, { holdProcess: false }))
      .then((stream) => {
        const end = () => (sock.destroy(), stream.destroy());
        stream.on("error", end).on("close", end);
        sock.on("error", end).on("close", end);
        sock.pipe(stream).pipe(sock);
      })
      .catch(() => sock.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) =>
      reject(new Error(`cilium.tunnelPort: cannot listen on 127.0.0.1:${port} (${(e as Error).message}); set another port`)),
    );
    server.listen(port, "127.0.0.1", resolve);
  });
  server.unref();
  return { port: (server.address() as net.AddressInfo).port };
}

/** Point a kubeconfig at the tunnel; the VIP stays the TLS server name. */
export function kubeconfigViaTunnel(kubeconfig: string, port: number, vip: string): string {
  return kubeconfig.replace(/server: https:\/\/[^\s]+/, `server: https://127.0.0.1:${port}\n    tls-server-name: ${vip}`);
}
