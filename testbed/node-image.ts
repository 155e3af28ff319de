// The Kubernetes "OS image" layer under every host's root of a --kube testbed.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { removeTree, run } from "./processes";

const NODE_IMAGE = path.join(__dirname, "node-image.sh");
const CILIUM_IMAGES = path.join(__dirname, "cilium-image.sh");
const ADDONS_IMAGES = path.join(__dirname, "addons-image.sh");
const UPGRADE_IMAGES = path.join(__dirname, "upgrade-image.sh");
/** where containerd.init finds the images it imports at start */
const IMAGES_DIR = "usr/share/k8sbm-lab/images";
/** the upgrade target's images: imported by the upgrade test when it starts, in place of the pulls kubeadm makes */
export const UPGRADE_IMAGES_DIR = "/usr/share/k8sbm-lab/upgrade-images";

/**
 * The layer under every host's root: our .deb packages installed with dpkg over the real root,
 * so dpkg on a host lists them as installed. Made per lab (a few seconds): the real root's
 * package database may have changed since the last lab. It lives on a tmpfs of its own:
 * overlayfs refuses a lower layer inside another lower layer (here "/") of the same filesystem.
 */
export function buildImageLayer(
  stateDir: string,
  log: (m: string) => void,
  opts: { cilium?: boolean; addons?: boolean; upgrade?: boolean } = {},
): string {
  log("building the node image (first time: builds kubelet, etcd, containerd from Go modules)");
  const out = nodeImageDir();
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
  // linked, not copied (the agent image is large; the cache is in every host's root)
  const link = (dir: string, to = IMAGES_DIR) => {
    fs.mkdirSync(path.join(image, "upper", to), { recursive: true, mode: 0o755 });
    for (const f of fs.readdirSync(path.join(dir, "images")).filter((f) => f.endsWith(".tar"))) {
      const at = path.join(image, "upper", to, f);
      fs.rmSync(at, { force: true });
      fs.symlinkSync(path.join(dir, "images", f), at);
    }
  };
  if (opts.cilium) {
    // cilium's agent and operator, the real CoreDNS (replacing the stand-in) and the test workload
    log("building the cilium images (first time: cilium, CoreDNS from Go modules, rootfs from Debian packages)");
    link(ciliumImages());
  }
  if (opts.addons) {
    log("building the add-on images (first time: cert-manager, pebble from Go modules)");
    link(addonsImages());
  }
  if (opts.upgrade) {
    log("building the upgrade target's images (first time: Kubernetes, etcd, CoreDNS of the next minor from Go modules)");
    link(upgradeImages(), UPGRADE_IMAGES_DIR.slice(1));
  }
  return path.join(image, "upper");
}

/** Runs a build script (built once, then cached; its progress on our stderr): the directory it prints. */
const built = (script: string): string =>
  execFileSync("bash", [script], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 20 }).trim();

/** The node image's build directory (bin/ holds our etcd, etcdctl, etcdutl…). */
export const nodeImageDir = (): string => built(NODE_IMAGE);

/** The lab's cilium images and chart (testbed/cilium-image.sh). */
export const ciliumImages = (): string => built(CILIUM_IMAGES);

/** The add-on test's images, chart and pebble (testbed/addons-image.sh). */
export const addonsImages = (): string => built(ADDONS_IMAGES);

/** The upgrade target's packages and images (testbed/upgrade-image.sh). */
export const upgradeImages = (): string => built(UPGRADE_IMAGES);

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
