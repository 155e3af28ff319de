// What the providers read from etcd's HTTP gateway, checked against the real etcd the lab's
// control planes run (our build of the version kubeadm pins): the member list, a member that
// was added but never started (what a control-plane join that died midway leaves behind),
// /health, and removal by the ID the list gives — through the providers' own command lines, with
// their TLS client flags dropped and the endpoint pointed here: plain HTTP on loopback, where on
// the nodes the same calls go over TLS with the apiserver's etcd client certificate.
import { execFileSync, spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as k from "../../providers/impl/kubeadm-commands";
import { parseHealth, parseMemberList } from "../../providers/impl/membership";

const ROOT = path.resolve(__dirname, "../..");
let etcd: ChildProcess;
let dir: string;
const PORT = 23790;
const url = `http://127.0.0.1:${PORT}`;

/** A provider command line, run against this etcd. */
const run = (cmd: string) =>
  execFileSync("sh", ["-c", cmd.split(k.ETCD_CURL).join("curl -sS --max-time 5").split(k.LOCAL_ETCD).join(url)], { encoding: "utf8" });

const post = (p: string, body: unknown) =>
  execFileSync("curl", ["-sS", "--fail-with-body", "-X", "POST", "-d", JSON.stringify(body), `${url}${p}`], { encoding: "utf8" });

beforeAll(async () => {
  const out = execFileSync("bash", [path.join(ROOT, "testbed/node-image.sh")], { encoding: "utf8", timeout: 60 * 60_000 }).trim();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-etcd-"));
  etcd = spawn(
    path.join(out, "bin/etcd"),
    [
      "--name",
      "k8s-1",
      "--data-dir",
      dir,
      "--listen-client-urls",
      url,
      "--advertise-client-urls",
      url,
      "--listen-peer-urls",
      `http://127.0.0.1:${PORT + 1}`,
      "--initial-advertise-peer-urls",
      `http://127.0.0.1:${PORT + 1}`,
      "--initial-cluster",
      `k8s-1=http://127.0.0.1:${PORT + 1}`,
    ],
    { stdio: "ignore" },
  );
  for (let i = 0; i < 100; i++) {
    try {
      if (execFileSync("curl", ["-s", `${url}/health`], { encoding: "utf8" }).includes('"health":"true"')) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("etcd did not become healthy");
}, 60 * 60_000);

afterAll(() => {
  etcd?.kill();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("the member list parses into names, IDs and client URLs", () => {
  const members = parseMemberList(run(k.memberListCommand));
  expect(members).toEqual([{ id: expect.stringMatching(/^\d+$/), name: "k8s-1", clientURL: url }]);
});

test("a member added but never started is listed by its peer URL, and removed by its ID", () => {
  post("/v3/cluster/member/add", { peerURLs: ["https://10.118.12.24:2380"], isLearner: true });
  const members = parseMemberList(run(k.memberListCommand));
  const unstarted = members.find((m) => m.name !== "k8s-1")!;
  expect(unstarted).toEqual({ id: expect.stringMatching(/^\d+$/), name: "(unstarted https://10.118.12.24:2380)", clientURL: "" });
  run(k.memberRemoveCommand(unstarted.id));
  expect(parseMemberList(run(k.memberListCommand)).map((m) => m.name)).toEqual(["k8s-1"]);
});

test("the health probe says ok for a live member and fail for one that does not answer", () => {
  const dead = "http://127.0.0.1:9";
  expect(parseHealth(run(k.etcdHealthCommand([url, dead])))).toEqual(
    new Map([
      [url, true],
      [dead, false],
    ]),
  );
});
