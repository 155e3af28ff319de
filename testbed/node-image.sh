#!/usr/bin/env bash
# The live lab cluster's "OS image": what an operator's servers get from their distribution and
# the Kubernetes package repository, built here from Go modules because nothing can be
# downloaded. Produces, in a cache outside the repo:
#   debs/    kubeadm, kubelet, kubectl, cri-tools and containerd as .deb packages, so the
#            program's Packages resource finds them installed the way it would on Debian;
#   images/  registry.k8s.io images (docker-archive tars) holding our own builds of etcd (with
#            etcdctl and etcdutl, as the registry's image has them),
#            kube-apiserver, -controller-manager, -scheduler and pause, under the exact names
#            kubeadm asks for (they are imported into containerd, nothing is pulled).
# coredns and kube-proxy are stand-ins holding only `pause`: kube-proxy is never deployed
# (cilium replaces it) and CoreDNS pods stay Pending in a lab without a CNI.
# --version X.Y.Z makes the image of another Kubernetes version (the live lab's upgrade target,
# testbed/upgrade-image.sh); the tools that do not depend on it are taken from the pinned one's.
# Prints the output directory.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pinned=$(node -p "require('$here/package.json').config.kubernetesVersion")
kver=$pinned
[ "${1:-}" = --version ] && kver=${2:?--version needs X.Y.Z}
containerd_ver=2.4.2
crictl_ver=1.37.0
cache=${K8SBM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-baremetal}
out="$cache/lab-node-v$kver"
log() { echo "node-image: $*" >&2; }

kbin=$(bash "$here/scripts/setup-kube.sh" --node --version "$kver")
# the packaging is redone whenever this script or its files change; the builds are kept
recipe=$(cat "$0" "$here"/testbed/node-image/* | sha256sum | cut -c1-16)
done_() { [ "$(cat "$out/.complete" 2>/dev/null)" = "$recipe" ]; }
if done_; then echo "$out"; exit 0; fi
mkdir -p "$cache"
exec 9>"$cache/.node-image.lock"
flock 9
if done_; then echo "$out"; exit 0; fi
rm -rf "$out/debs" "$out/images" "$out/.complete"; mkdir -p "$out/bin" "$out/debs" "$out/images"
buildlog="$cache/lab-node-v$kver.log"
: >"$buildlog"

images=$("$kbin/kubeadm" config images list --kubernetes-version "v$kver")
tag_of() { echo "$images" | grep "/$1:" | sed 's/.*://'; }
etcd_ver=$(tag_of etcd | sed 's/-.*//')

# gomod <dir> <module@version> <out> <package> [go build flags...]: build one command
gobuild() {
  local dir=$1 mod=$2 bin=$3 pkg=$4; shift 4
  mkdir -p "$dir"
  (cd "$dir" && { [ -f go.mod ] || go mod init k8sbm.local/build >/dev/null; } &&
    GOFLAGS=-mod=mod go get "$mod" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath "$@" -o "$bin" "$pkg")
}
tools="containerd containerd-shim-runc-v2 ctr crictl"
if [ "$kver" != "$pinned" ]; then
  for b in $tools; do
    [ -x "$out/bin/$b" ] || [ ! -x "$cache/lab-node-v$pinned/bin/$b" ] || cp "$cache/lab-node-v$pinned/bin/$b" "$out/bin/"
  done
fi
built() { for b in etcd $tools; do [ -x "$out/bin/$b" ] || return 1; done; }
built || {
  work="$cache/build-lab-node"
  rm -rf "$work"
  [ -x "$out/bin/etcd" ] ||
    gobuild "$work/etcd" "go.etcd.io/etcd/server/v3@v$etcd_ver" "$out/bin/etcd" go.etcd.io/etcd/server/v3 -ldflags "-s -w"
  for c in containerd containerd-shim-runc-v2 ctr; do
    [ -x "$out/bin/$c" ] && continue
    gobuild "$work/containerd" "github.com/containerd/containerd/v2@v$containerd_ver" "$out/bin/$c" \
      "github.com/containerd/containerd/v2/cmd/$c" -tags "no_btrfs no_devmapper no_zfs" \
      -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=v$containerd_ver"
  done
  [ -x "$out/bin/crictl" ] || gobuild "$work/crictl" "sigs.k8s.io/cri-tools@v$crictl_ver" "$out/bin/crictl" sigs.k8s.io/cri-tools/cmd/crictl \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=v$crictl_ver"
  rm -rf "$work"
} >>"$buildlog" 2>&1 || { tail -40 "$buildlog" >&2; log "build failed (log: $buildlog)"; exit 1; }
# a second's work: always from the current source (it is part of the recipe)
gcc -static -O2 -o "$out/bin/pause" "$here/testbed/node-image/pause.c"
# etcd's image also carries etcdctl and etcdutl, as the registry's does: the program's snapshots
# run them inside the etcd container (render/etcd-backup.ts)
{ [ -x "$out/bin/etcdctl" ] && [ -x "$out/bin/etcdutl" ]; } || {
  work="$cache/build-lab-etcd-tools"
  rm -rf "$work"
  gobuild "$work/etcdctl" "go.etcd.io/etcd/etcdctl/v3@v$etcd_ver" "$out/bin/etcdctl" go.etcd.io/etcd/etcdctl/v3 -ldflags "-s -w"
  gobuild "$work/etcdutl" "go.etcd.io/etcd/etcdutl/v3@v$etcd_ver" "$out/bin/etcdutl" go.etcd.io/etcd/etcdutl/v3 -ldflags "-s -w"
  rm -rf "$work"
} >>"$buildlog" 2>&1 || { tail -40 "$buildlog" >&2; log "etcdctl/etcdutl build failed (log: $buildlog)"; exit 1; }

# image <ref> <entrypoint> <binary>...: a one-layer image with the binaries in /usr/local/bin
image() {
  local ref=$1 entry=$2; shift 2
  local d; d=$(mktemp -d)
  mkdir -p "$d/root/usr/local/bin" "$d/root/tmp" "$d/root/etc" "$d/root/var/lib"
  chmod 1777 "$d/root/tmp"
  for b in "$@"; do cp "$b" "$d/root/usr/local/bin/"; done
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$d/root" -cf "$d/layer.tar" .
  local diff; diff=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
  printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":["%s"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$entry" "$diff" >"$d/config.json"
  local cfg; cfg=$(sha256sum "$d/config.json" | cut -d' ' -f1)
  mv "$d/config.json" "$d/$cfg.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$cfg" "$ref" >"$d/manifest.json"
  tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$d" -cf "$out/images/$(echo "$ref" | tr '/:' '__').tar" manifest.json "$cfg.json" layer.tar
  rm -rf "$d"
}
for ref in $images; do
  case "$ref" in
    */etcd:*) image "$ref" /usr/local/bin/etcd "$out/bin/etcd" "$out/bin/etcdctl" "$out/bin/etcdutl" ;;
    */pause:*) image "$ref" /usr/local/bin/pause "$out/bin/pause" ;;
    */kube-apiserver:*|*/kube-controller-manager:*|*/kube-scheduler:*)
      c=${ref##*/}; c=${c%%:*}; image "$ref" "/usr/local/bin/$c" "$kbin/$c" ;;
    *) image "$ref" /usr/local/bin/pause "$out/bin/pause" ;;   # stand-in, see the header
  esac
done

# deb <package> <version> <depends> <src dir>: a binary package of a staged tree
deb() {
  local pkg=$1 ver=$2 dep=$3 src=$4
  mkdir -p "$src/DEBIAN"
  {
    echo "Package: $pkg"; echo "Version: $ver"; echo "Architecture: amd64"
    echo "Maintainer: k8s-baremetal lab <lab@localhost>"
    [ -n "$dep" ] && echo "Depends: $dep"
    echo "Description: $pkg for the k8s-baremetal live lab (built from Go modules)"
  } >"$src/DEBIAN/control"
  dpkg-deb --root-owner-group -Znone --build "$src" "$out/debs/${pkg}_${ver}_amd64.deb" >/dev/null
  rm -rf "$src"
}
stage=$(mktemp -d)
single() { mkdir -p "$stage/$1/usr/bin" && cp "$2" "$stage/$1/usr/bin/" && deb "$1" "$3" "" "$stage/$1"; }
single kubeadm "$kbin/kubeadm" "$kver-1.1"
single kubectl "$kbin/kubectl" "$kver-1.1"
single cri-tools "$out/bin/crictl" "$crictl_ver-1.1"
s="$stage/kubelet"
mkdir -p "$s/usr/bin" "$s/etc/init.d" "$s/usr/lib/k8sbm-lab" "$s/etc/kubernetes/manifests"
cp "$kbin/kubelet" "$s/usr/bin/"
install -m 0755 "$here/testbed/node-image/kubelet.init" "$s/etc/init.d/kubelet"
install -m 0755 "$here/testbed/node-image/kubelet-supervise" "$s/usr/lib/k8sbm-lab/kubelet-supervise"
deb kubelet "$kver-1.1" "" "$s"
s="$stage/containerd"
mkdir -p "$s/usr/bin" "$s/etc/init.d" "$s/usr/share/k8sbm-lab/images"
cp "$out/bin/containerd" "$out/bin/containerd-shim-runc-v2" "$out/bin/ctr" "$s/usr/bin/"
install -m 0755 "$here/testbed/node-image/containerd.init" "$s/etc/init.d/containerd"
cp "$out/images/"*.tar "$s/usr/share/k8sbm-lab/images/"
deb containerd "$containerd_ver-1" "runc" "$s"
rm -rf "$stage"
echo "$recipe" >"$out/.complete"
echo "$out"
