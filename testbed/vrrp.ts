// VRRP observation and fault injection on lab hosts, for the failover tests and benchmark.
import { execFileSync } from "child_process";
import { hostExec, type TestbedState } from ".";

/** The hosts that currently carry `ip` on an interface. */
export async function holdersOf(lab: TestbedState, ip: string): Promise<string[]> {
  const out: string[] = [];
  for (const h of lab.hosts) if ((await hostExec(lab, h.name, "ip -4 -o addr show")).stdout.includes(` ${ip}/`)) out.push(h.name);
  return out;
}

export async function waitForHolder(
  lab: TestbedState,
  ip: string,
  accept: (holders: string[]) => boolean,
  timeoutMs = 30_000,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = await holdersOf(lab, ip);
    if (accept(h)) return h;
    if (Date.now() > deadline) throw new Error(`${ip}: holders [${h}] after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// A stand-in for kube-apiserver until the kubeadm issue brings the real one: an HTTPS server on
// :6443 answering /readyz with the host's name, plus the manifest kubeadm would have written
// (in directories made 0700, as kubeadm makes them), so keepalived's check script really probes
// it. For a client on the same host (keepalived's check) it records the uid owning the client's
// socket, read from /proc/net/tcp: the user the check ran as.
const FAKE_APISERVER = `
const https = require("https"), fs = require("fs"), os = require("os");
const uidOf = (s) => {
  try {
    const ip = s.remoteAddress.replace(/^::ffff:/, "").split(".").reverse().map((x) => (+x).toString(16).padStart(2, "0")).join("");
    const local = (ip + ":" + s.remotePort.toString(16).padStart(4, "0")).toUpperCase();
    const row = fs.readFileSync("/proc/net/tcp", "utf8").split("\\n").map((l) => l.trim().split(/\\s+/)).find((f) => f[1] === local);
    return row ? row[7] : "";
  } catch (e) { return ""; }
};
const srv = https.createServer({ key: fs.readFileSync("/run/fake-apiserver/key.pem"), cert: fs.readFileSync("/run/fake-apiserver/cert.pem") },
  (req, res) => {
    const uid = uidOf(req.socket);
    if (uid) fs.appendFileSync("/run/fake-apiserver/client-uids", uid + "\\n");
    res.writeHead(200); res.end(os.hostname());
  });
srv.listen(6443, "0.0.0.0", () => fs.writeFileSync("/run/fake-apiserver/pid", String(process.pid)));
`;

export async function startFakeApiserver(lab: TestbedState, host: string): Promise<void> {
  await hostExec(
    lab,
    host,
    [
      "mkdir -p /run/fake-apiserver",
      "for d in /etc/kubernetes /etc/kubernetes/manifests; do [ -d $d ] || mkdir -m 0700 $d; done",
      "[ -f /etc/kubernetes/manifests/kube-apiserver.yaml ] || echo '# lab stand-in' > /etc/kubernetes/manifests/kube-apiserver.yaml",
      "[ -f /run/fake-apiserver/cert.pem ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=apiserver -days 2 " +
        "-keyout /run/fake-apiserver/key.pem -out /run/fake-apiserver/cert.pem 2>/dev/null",
      "rm -f /run/fake-apiserver/pid",
      `nohup node -e '${FAKE_APISERVER.replace(/'/g, `'\\''`)}' >/dev/null 2>&1 &`,
      "for i in $(seq 50); do [ -s /run/fake-apiserver/pid ] && exit 0; sleep 0.1; done; echo 'fake apiserver did not start' >&2; exit 1",
    ].join("\n"),
  );
}

/** The uids that ran local clients of the fake apiserver on `host` (keepalived's check), once one has. */
export async function fakeApiserverClientUids(lab: TestbedState, host: string, timeoutMs = 10_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = (await hostExec(lab, host, "cat /run/fake-apiserver/client-uids 2>/dev/null; true")).stdout;
    const uids = [...new Set(out.split("\n").filter(Boolean))].sort();
    if (uids.length || Date.now() > deadline) return uids;
    await new Promise((r) => setTimeout(r, 300));
  }
}

export async function stopFakeApiserver(lab: TestbedState, host: string): Promise<void> {
  await hostExec(lab, host, "[ -s /run/fake-apiserver/pid ] && kill $(cat /run/fake-apiserver/pid); rm -f /run/fake-apiserver/pid; true");
}

/** Cut or restore a host's wan1 port on the lab switch (the link stays up: a true partition). */
export function setPartitioned(lab: TestbedState, host: string, partitioned: boolean): void {
  const index = lab.hosts.findIndex((h) => h.name === host) + 1;
  const sw = `k8sbm.${lab.name}._sw`;
  execFileSync("ip", ["-n", sw, "link", "set", `h${index}w1`, ...(partitioned ? ["nomaster"] : ["master", "br1"])]);
}

/** Drop or restore the host's own wan1 link (what a dead NIC or node looks like to its peers). */
export async function setLinkDown(lab: TestbedState, host: string, down: boolean): Promise<void> {
  await hostExec(lab, host, `ip link set wan1 ${down ? "down" : "up"}`);
}

// Runs inside a lab host: HTTPS GET https://<vip>:<port>/ every 100 ms; once a host other than
// `from` answers, prints the time (ms since the epoch) of that answer and exits.
const PROBE = `
const https = require("https");
const [vip, port, from, limit] = process.argv.slice(1);
const deadline = Date.now() + Number(limit);
function once() {
  const req = https.get({ host: vip, port: Number(port), path: "/readyz", rejectUnauthorized: false, timeout: 300, agent: false }, (res) => {
    let body = ""; res.on("data", (d) => (body += d)); res.on("end", () => next(body));
  });
  req.on("timeout", () => req.destroy(new Error("timeout")));
  req.on("error", () => next(""));
}
function next(host) {
  if (host && host !== from) { console.log(JSON.stringify({ at: Date.now(), host })); process.exit(0); }
  if (Date.now() > deadline) { console.log(JSON.stringify({ at: 0, host: "" })); process.exit(2); }
  setTimeout(once, 100);
}
once();
`;

/** Start probing from `observer`; resolves when a host other than `from` answers on the VIP. */
export function probeTakeover(
  lab: TestbedState,
  observer: string,
  vip: string,
  port: number,
  from: string,
  limitMs = 30_000,
): Promise<{ at: number; host: string }> {
  return hostExec(lab, observer, `node -e '${PROBE.replace(/'/g, `'\\''`)}' ${vip} ${port} ${from} ${limitMs}`, {
    allowFail: true,
    timeoutMs: limitMs + 10_000,
  }).then((r) => JSON.parse(r.stdout.trim().split("\n").pop() || '{"at":0,"host":""}') as { at: number; host: string });
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
