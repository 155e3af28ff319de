// The Kubernetes "OS image" layer under every host's root of a --kube testbed.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { removeTree, run } from "./processes";

const NODE_IMAGE = path.join(__dirname, "node-image.sh");

/**
 * The layer under every host's root: our .deb packages installed with dpkg over the real root,
 * so dpkg on a host lists them as installed. Made per lab (a few seconds): the real root's
 * package database may have changed since the last lab. It lives on a tmpfs of its own:
 * overlayfs refuses a lower layer inside another lower layer (here "/") of the same filesystem.
 */
export function buildImageLayer(stateDir: string, log: (m: string) => void): string {
  log("building the node image (first time: builds kubelet, etcd, containerd from Go modules)");
  const out = execFileSync("bash", [NODE_IMAGE], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 20 }).trim();
  const image = path.join(stateDir, "image");
  const merged = path.join(stateDir, "image.merged");
  for (const d of [image, merged]) fs.mkdirSync(d, { recursive: true, mode: 0o755 });
  run("mount", ["-t", "tmpfs", "-o", "mode=0755,size=4g", "k8sbm-lab-image", image]);
  fs.mkdirSync(path.join(image, "upper"), { mode: 0o755 });
  fs.mkdirSync(path.join(image, ".work"), { mode: 0o700 });
  const debs = fs.readdirSync(path.join(out, "debs")).map((f) => path.join(out, "debs", f));
  run("unshare", [
    "-m",
    "--propagation",
    "private",
    "/bin/sh",
    "-ec",
    'm=$3; mount -t overlay overlay -o "lowerdir=/,upperdir=$1,workdir=$2" "$m"; shift 3; chroot "$m" dpkg -i "$@" >/dev/null',
    "sh",
    path.join(image, "upper"),
    path.join(image, ".work"),
    merged,
    ...debs,
  ]);
  removeTree(path.join(image, ".work"));
  fs.rmdirSync(merged);
  return path.join(image, "upper");
}

/** The per-host cgroup roots the lab kubelets made (see node-image/kubelet-supervise). */
export function removeLabCgroups(stateDir: string): void {
  const hostsDir = path.join(stateDir, "hosts");
  if (!fs.existsSync(hostsDir) || !fs.existsSync("/sys/fs/cgroup")) return;
  for (const h of fs.readdirSync(hostsDir)) {
    const idFile = path.join(hostsDir, h, "upper/etc/machine-id");
    if (!fs.existsSync(idFile)) continue;
    const root = `k8sbm-lab-${fs.readFileSync(idFile, "utf8").trim().slice(0, 12)}`;
    for (const c of fs.readdirSync("/sys/fs/cgroup")) {
      const top = path.join("/sys/fs/cgroup", c, root);
      if (fs.existsSync(top)) run("find", [top, "-depth", "-type", "d", "-exec", "rmdir", "{}", "+"], { allowFail: true });
    }
  }
}
