#!/usr/bin/env bash
# Provide kubeadm and kubectl of the pinned Kubernetes version without downloading binaries:
# build them from the published Go modules (k8s.io/kubernetes requires its staging modules at
# v0.0.0; a wrapper module points them at their published v0.X.Y) into a cache outside the repo.
# Prints the directory holding kubeadm and kubectl.
# --node also builds what a node runs (kubelet and the control-plane binaries); only the live
# lab cluster needs them (testbed/node-image.sh), an operator's servers get distro packages.
# --version X.Y.Z builds another version than the pinned one (the live lab's upgrade target).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cmds="kubeadm kubectl"
version=$(node -p "require('$here/package.json').config.kubernetesVersion")   # 1.36.3
while [ $# -gt 0 ]; do
  case "$1" in
    --node) cmds="$cmds kubelet kube-apiserver kube-controller-manager kube-scheduler" ;;
    --version) version=$2; shift ;;
    *) echo "setup-kube: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
cache=${K8SBM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-baremetal}
bin="$cache/kube-v$version/bin"
log() { echo "setup-kube: $*" >&2; }

built() { for c in $cmds; do [ -x "$bin/$c" ] || return 1; done; }
if built; then echo "$bin"; exit 0; fi
command -v go >/dev/null || { log "no Go toolchain to build kubeadm v$version"; exit 1; }
mkdir -p "$cache"
exec 9>"$cache/.setup-kube.lock"
flock 9
if built; then echo "$bin"; exit 0; fi

work="$cache/build-kube-v$version"
rm -rf "$work"; mkdir -p "$work" "$bin"
cd "$work"
buildlog="$cache/build-kube-v$version.log"
{
  go mod init k8sbm.local/kube
  gomod=$(go mod download -json "k8s.io/kubernetes@v$version" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
  staging=$(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod" | sort -u)
  minor=${version#*.}
  {
    echo "require k8s.io/kubernetes v$version"
    for m in $staging; do echo "replace $m => $m v0.${minor}"; done
  } >>go.mod
  GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
  GOFLAGS=-mod=mod go get $(for c in $cmds; do echo "k8s.io/kubernetes/cmd/$c@v$version"; done)
  pkg=k8s.io/component-base/version
  ldflags="-s -w -X $pkg.gitVersion=v$version -X $pkg.gitMajor=${version%%.*} -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean"
  for cmd in $cmds; do
    [ -x "$bin/$cmd" ] && continue
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
    mv "$bin/$cmd.tmp" "$bin/$cmd"
  done
} >"$buildlog" 2>&1 || { tail -40 "$buildlog" >&2; log "build failed (log: $buildlog)"; exit 1; }
rm -rf "$work"
echo "$bin"
