#!/usr/bin/env bash
# The live lab's upgrade target: what a rolling upgrade from the pinned Kubernetes version to the
# next minor one (package.json config.labUpgradeVersion) needs on the nodes, built here because
# nothing can be pulled or downloaded. Produces, in a cache outside the repo:
#   debs/        kubeadm, kubelet, kubectl of that version (testbed/node-image.sh --version), for
#                the apt repository a lab host serves in place of the Kubernetes project's;
#   images/      its kube-apiserver, -controller-manager, -scheduler, etcd and pause images, and the
#                CoreDNS its kubeadm deploys, built from its Go module, under the exact names
#                kubeadm asks for: imported into each node's containerd in place of a registry pull;
#   images.txt   "<image ref> <tar file>" lines.
# Prints the output directory.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
to=$(node -p "require('$here/package.json').config.labUpgradeVersion")
cache=${K8SBM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-baremetal}
out="$cache/lab-upgrade-v$to"
build_name=upgrade-image
# shellcheck source=testbed/image-build.sh
. "$here/testbed/image-build.sh"

node=$(bash "$here/testbed/node-image.sh" --version "$to")
kbin=$(bash "$here/scripts/setup-kube.sh" --node --version "$to")
images=$("$kbin/kubeadm" config images list --kubernetes-version "v$to")
coredns_ref=$(echo "$images" | grep '/coredns:')
coredns_ver=${coredns_ref##*:}
recipe=$({ cat "$0" "$here/testbed/image-build.sh"; cat "$node/.complete"; echo "$images"; } | sha256sum | cut -c1-16)
done_() { [ "$(cat "$out/.complete" 2>/dev/null)" = "$recipe" ]; }
if done_; then echo "$out"; exit 0; fi
mkdir -p "$cache"
exec 9>"$cache/.upgrade-image.lock"
flock 9
if done_; then echo "$out"; exit 0; fi
rm -rf "$out/debs" "$out/images" "$out/.complete"; mkdir -p "$out/bin" "$out/debs" "$out/images"
work="$cache/build-lab-upgrade"
rm -rf "$work"; mkdir -p "$work"
build_log "$cache/lab-upgrade-v$to.log" upgrade-image

step "coredns $coredns_ver (first time: about 10 min)"
if [ ! -x "$out/bin/coredns-$coredns_ver" ]; then
  modcopy "github.com/coredns/coredns@$coredns_ver" "$work/coredns"
  gobuild "$work/coredns" "$out/bin/coredns-$coredns_ver" . \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$coredns_ver"
fi
step "packing"
for p in kubeadm kubelet kubectl; do cp "$node/debs/${p}_$to-"*.deb "$out/debs/"; done
: >"$out/images.txt"
for ref in $images; do
  case "$ref" in
    */coredns:*) ;;
    */kube-proxy:*) ;;   # never deployed: cilium replaces it
    *) f="$(echo "$ref" | tr '/:' '__').tar"; cp "$node/images/$f" "$out/images/"; echo "$ref $f" >>"$out/images.txt" ;;
  esac
done
# as testbed/cilium-image.sh's CoreDNS: the entrypoint /coredns, kubeadm's Deployment gives the args
dnsfs="$work/dnsfs"
mkdir -p "$dnsfs/etc" "$dnsfs/tmp"
chmod 1777 "$dnsfs/tmp"
echo 'root:x:0:0:root:/:/sbin/nologin' >"$dnsfs/etc/passwd"
install -m 0755 "$out/bin/coredns-$coredns_ver" "$dnsfs/coredns"
pack "$coredns_ref" "$dnsfs" '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":["/coredns"],"ExposedPorts":{"53/tcp":{},"53/udp":{}}}'
rm -rf "$work"
echo "$recipe" >"$out/.complete"
step "done: $out"
echo "$out" >&4
