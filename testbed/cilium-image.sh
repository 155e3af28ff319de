#!/usr/bin/env bash
# The images a live lab cluster needs to run cilium (issue 11), built here because nothing can be
# pulled: Go binaries from the published Go modules, root filesystems from Debian packages (apt,
# through mmdebstrap). Produces, in a cache outside the repo:
#   images/  docker-archive tars for `ctr -n k8s.io images import`:
#              quay.io/cilium/cilium:vX            agent, init-container tools, cilium-cni, the bpf/
#                                                  sources, clang (Debian's clang-19: the agent
#                                                  compiles its datapath at run time and wants
#                                                  clang >= 18.1), iproute2, iptables, ipset, bpftool
#              quay.io/cilium/operator-generic:vX  the operator (IPAM "cluster-pool"/"kubernetes")
#              registry.k8s.io/coredns/coredns:vY  the CoreDNS kubeadm asks for, built from its module
#              k8sbm.local/lab/httpd:v1            busybox httpd on :8080 (Debian busybox-static);
#                                                  /cgi-bin/host answers the serving pod's name
#            the cilium names are those of the chart below with digests off (image.useDigest and
#            operator.image.useDigest false, already so in the module's chart).
#   chart/cilium   the Helm chart of the same cilium version, for a Release from a local path.
#   images.txt     "<image ref> <tar file>" lines; versions.txt the versions inside.
# Not built (no Go module, C++): cilium-envoy. The chart must run with envoy.enabled=false and
# l7Proxy=false (no L7 policy, no Ingress/Gateway API); hubble-relay/ui stay off (their default).
# A lab host loads them as containerd.init does the node image's:
#   ctr -n k8s.io images import --local --snapshotter native --platform linux/amd64 <tar>
# Prints the output directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && while [ ! -f package.json ] && [ "$PWD" != / ]; do cd ..; done && pwd)   # the repo root
kver=$(node -p "require('$here/package.json').config.kubernetesVersion")
# 1.19.6, the newest 1.19 patch: its whole module graph, as its go.mod pins and replaces it, is
# served by the module proxy, agent and operator build unchanged (1.20.2 pins a gobgp v4
# pseudo-version and a sigs.k8s.io/mcs-api/controllers that are refused; 1.18.4 replaces
# k8s.io/apimachinery with a fork that is refused).
cilium_ver=1.19.6
cni_plugins_ver=1.9.1     # the loopback CNI plugin in the agent image, as images/runtime/build-cni.sh
cache=${K8SBM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-baremetal}
out="$cache/lab-cilium-v$cilium_ver"
build_name=cilium-image
# shellcheck source=testbed/image-build.sh
. "$here/testbed/image-build.sh"

kbin=$(bash "$here/scripts/setup-kube.sh")
coredns_ref=$("$kbin/kubeadm" config images list --kubernetes-version "v$kver" | grep '/coredns:')
coredns_ver=${coredns_ref##*:}
# the images are redone whenever this script changes (or kubeadm wants another CoreDNS); Go builds are kept
recipe=$({ cat "$0" "$here/testbed/image-build.sh"; echo "$coredns_ref"; } | sha256sum | cut -c1-16)
done_() { [ "$(cat "$out/.complete" 2>/dev/null)" = "$recipe" ]; }
if done_; then echo "$out"; exit 0; fi
command -v go >/dev/null || { log "no Go toolchain"; exit 1; }
mkdir -p "$cache"
exec 9>"$cache/.cilium-image.lock"
flock 9
if done_; then echo "$out"; exit 0; fi
command -v mmdebstrap >/dev/null || {
  log "installing mmdebstrap (Debian package)"
  apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null; }
}
rm -rf "$out/images" "$out/chart" "$out/.complete"; mkdir -p "$out/bin" "$out/images" "$out/chart"
work="$cache/build-lab-cilium"
rm -rf "$work"; mkdir -p "$work"
build_log "$cache/lab-cilium-v$cilium_ver.log" cilium-image

# --- Go builds (kept in $out/bin across recipe changes) -------------------------------------
cil="$work/cilium"
step "cilium v$cilium_ver source"
modcopy "github.com/cilium/cilium@v$cilium_ver" "$cil"
(cd "$cil" && go mod download)
# as Makefile.defs: version string, the envoy version the agent expects, tag osusergo
envoy_sha=$(sed -nE 's/^ARG CILIUM_ENVOY_IMAGE=([^ ]*)/\1/p' "$cil/images/cilium/Dockerfile" | head -1 |
  sed -E 's/[^/]*\/[^:]*:(.*-)?([^:@]*).*/\2/p;d')
cldflags="-s -w -X 'github.com/cilium/cilium/pkg/version.ciliumVersion=$cilium_ver' -X 'github.com/cilium/cilium/pkg/envoy.requiredEnvoyVersionSHA=$envoy_sha'"
step "cilium agent binaries (first time: 15 to 40 min on 2 cores, by what else is building)"
for b in cilium-agent:./daemon cilium-dbg:./cilium-dbg cilium-health:./cilium-health \
    cilium-health-responder:./cilium-health/responder cilium-cni:./plugins/cilium-cni \
    cilium-mount:./tools/mount cilium-sysctlfix:./tools/sysctlfix cilium-bugtool:./bugtool; do
  gobuild "$cil" "$out/bin/${b%%:*}" "${b#*:}" -tags osusergo -ldflags "$cldflags"
done
step "cilium operator-generic"
gobuild "$cil" "$out/bin/cilium-operator-generic" ./operator -tags osusergo,ipam_provider_operator \
  -ldflags "$cldflags"
step "loopback CNI plugin v$cni_plugins_ver"
if [ ! -x "$out/bin/loopback" ]; then
  modcopy "github.com/containernetworking/plugins@v$cni_plugins_ver" "$work/cni"
  gobuild "$work/cni" "$out/bin/loopback" ./plugins/main/loopback \
    -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=v$cni_plugins_ver"
fi
step "coredns $coredns_ver (first time: about 10 min)"
if [ ! -x "$out/bin/coredns-$coredns_ver" ]; then
  modcopy "github.com/coredns/coredns@$coredns_ver" "$work/coredns"
  gobuild "$work/coredns" "$out/bin/coredns-$coredns_ver" . \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$coredns_ver"
fi

# --- root filesystems from Debian packages ---------------------------------------------------
# The host's apt sources (its suite) are used; downloaded .debs are kept in $debs for next time.
. /etc/os-release
suite=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -s "$f" ] && grep -qvE '^\s*(#|$)' "$f" && sources+=("$f")
done
debs="$cache/lab-cilium-debs"
mkdir -p "$debs"
# rootfs <dir> <variant> <packages> [mmdebstrap options...]
rootfs() {
  local dir=$1 variant=$2 pkgs=$3; shift 3
  mmdebstrap --variant="$variant" --include="$pkgs" \
    --dpkgopt=force-unsafe-io \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --skip=essential/unlink \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
    --setup-hook="sync-in $debs /var/cache/apt/archives/" \
    "$@" \
    --customize-hook="sync-out /var/cache/apt/archives $debs" \
    "$suite" "$dir" "${sources[@]}" 3>&- 4>&- 9>&-   # apt's hooks run `cat >&N` in dash: N must stay below 10
}

step "agent root filesystem (Debian $suite: clang-19, iproute2, iptables, ipset, kmod, bpftool)"
agentfs="$work/agentfs"
# clang-19 depends on the C toolchain (gcc's libs and headers, binutils, libc6-dev) for linking
# user programs; the agent only runs `clang --target=bpf -nostdinc -c`, so those are dropped, and
# so is usrmerge with the perl it pulls in (only needed to convert an unmerged /usr).
cat >"$work/slim.sh" <<'EOF'
set -e
drop="libclang1-19 llvm-19-linker-tools libstdc++-12-dev libgcc-12-dev libobjc-12-dev libobjc4 libc6-dev
  libc-dev-bin linux-libc-dev libcrypt-dev libnsl-dev libtirpc-dev rpcsvc-proto binutils
  binutils-x86-64-linux-gnu binutils-common libbinutils libctf0 libctf-nobfd0 libgprofng0 libsframe1
  libjansson4 libasan8 libtsan2 liblsan0 libubsan1 libhwasan0 libitm1 libquadmath0 libgomp1 libcc1-0
  usrmerge libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl perl perl-modules-5.36
  libperl5.36 libgdbm-compat4 libgdbm6"
have=$(for p in $drop; do dpkg -s "$p" >/dev/null 2>&1 && echo "$p"; done; true)
[ -z "$have" ] || dpkg --purge --force-depends $have
EOF
rootfs "$agentfs" essential mount,iproute2,iptables,ipset,kmod,ca-certificates,bpftool,clang-19 \
  --customize-hook="copy-in $work/slim.sh /tmp" \
  --customize-hook='chroot "$1" sh /tmp/slim.sh && rm "$1/tmp/slim.sh"' \
  --customize-hook="copy-in $cil/images/runtime/iptables-wrapper-installer.sh /tmp" \
  --customize-hook='chroot "$1" bash /tmp/iptables-wrapper-installer.sh --no-sanity-check'
ln -sf /usr/bin/clang-19 "$agentfs/usr/local/bin/clang"   # the agent runs `clang` from PATH
ln -sf /usr/sbin/bpftool "$agentfs/usr/local/bin/bpftool"
for b in cilium-agent cilium-dbg cilium-health cilium-health-responder cilium-mount cilium-sysctlfix cilium-bugtool; do
  install -m 0755 "$out/bin/$b" "$agentfs/usr/bin/$b"
done
install -D -m 0755 "$out/bin/cilium-cni" "$agentfs/opt/cni/bin/cilium-cni"
install -D -m 0755 "$out/bin/loopback" "$agentfs/cni/loopback"
install -m 0755 "$cil/images/cilium/init-container.sh" "$cil/plugins/cilium-cni/install-plugin.sh" \
  "$cil/plugins/cilium-cni/cni-uninstall.sh" "$agentfs/"
# as `make install-bpf`: the datapath sources the agent compiles, in /var/lib/cilium/bpf
install -m 0750 -d "$agentfs/var/lib/cilium"
(cd "$cil" && find bpf -type f ! -path 'bpf/tests/*' ! -path 'bpf/complexity-tests/*' ! -path 'bpf/custom/*' \
  ! -name Makefile ! -name Makefile.bpf ! -name .gitignore ! -name '*.i' ! -name '*.s' ! -name .rebuild_all |
  LC_ALL=C sort | while read -r f; do install -D -m 0644 "$f" "$agentfs/var/lib/cilium/$f" || exit 1; done)
mkdir -p "$agentfs/home/cilium" "$agentfs/usr/share/doc/cilium"
cp "$cil/LICENSE" "$agentfs/usr/share/doc/cilium/"
# sed, not head: head leaves the writer a SIGPIPE, which pipefail turns into a failed build
chroot "$agentfs" /usr/bin/clang-19 --version | sed -n 1p >"$work/clang-version"
echo 'int f(int x) { return x + 1; }' >"$agentfs/tmp/t.c"
chroot "$agentfs" clang -O2 --target=bpf -nostdinc -c /tmp/t.c -o /tmp/t.o
rm -f "$agentfs/tmp/t.c" "$agentfs/tmp/t.o"

step "workload root filesystem (Debian busybox-static)"
bbfs="$work/bbfs"
rootfs "$bbfs.deb" extract busybox-static
mkdir -p "$bbfs/bin" "$bbfs/www/cgi-bin" "$bbfs/tmp" "$bbfs/etc"
chmod 1777 "$bbfs/tmp"
cp "$bbfs.deb/bin/busybox" "$bbfs/bin/busybox"
for a in $("$bbfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$bbfs/bin/$a"; done
echo 'root:x:0:0:root:/:/bin/sh' >"$bbfs/etc/passwd"
echo 'k8s-baremetal lab httpd' >"$bbfs/www/index.html"
printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%%s\\n" "$(hostname)"\n' >"$bbfs/www/cgi-bin/host"
chmod 0755 "$bbfs/www/cgi-bin/host"
bb_ver=$("$bbfs/bin/busybox" | sed -n '1s/^BusyBox v\([^ ]*\).*/\1/p')
echo "$bb_ver" >"$work/busybox-version"

# small roots for the operator and CoreDNS: a static binary, CA certificates, /tmp
static_root() {
  local dir=$1; shift
  mkdir -p "$dir/usr/bin" "$dir/etc/ssl/certs" "$dir/tmp"
  chmod 1777 "$dir/tmp"
  cp "$agentfs/etc/ssl/certs/ca-certificates.crt" "$dir/etc/ssl/certs/"
  echo 'root:x:0:0:root:/:/sbin/nologin' >"$dir/etc/passwd"
  echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >>"$dir/etc/passwd"
}
opfs="$work/opfs"; static_root "$opfs"
install -m 0755 "$out/bin/cilium-operator-generic" "$opfs/usr/bin/"
install -m 0777 -d "$opfs/home/gops"
dnsfs="$work/dnsfs"; static_root "$dnsfs"
install -m 0755 "$out/bin/coredns-$coredns_ver" "$dnsfs/coredns"

# --- images ------------------------------------------------------------------------------------
path='"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"'
step "packing images"
: >"$out/images.txt"
# as upstream's images/cilium/Dockerfile (the chart gives every container its command)
pack "quay.io/cilium/cilium:v$cilium_ver" "$agentfs" \
  "{\"Env\":[$path,\"HUBBLE_SERVER=unix:///var/run/cilium/hubble.sock\",\"INITSYSTEM=SYSTEMD\"],\"Cmd\":[\"/usr/bin/cilium-dbg\"],\"WorkingDir\":\"/home/cilium\"}"
pack "quay.io/cilium/operator-generic:v$cilium_ver" "$opfs" \
  "{\"Env\":[$path,\"GOPS_CONFIG_DIR=/home/gops\"],\"Cmd\":[\"/usr/bin/cilium-operator-generic\"],\"WorkingDir\":\"/\"}"
# kubeadm's Deployment gives only args: the entrypoint is /coredns, as upstream's image. It runs
# as root here (upstream: user 65532 with a file capability); kubeadm drops all capabilities
# but NET_BIND_SERVICE, so it can still bind :53.
pack "$coredns_ref" "$dnsfs" "{\"Env\":[$path],\"Entrypoint\":[\"/coredns\"],\"ExposedPorts\":{\"53/tcp\":{},\"53/udp\":{}}}"
pack "k8sbm.local/lab/httpd:v1" "$bbfs" \
  "{\"Env\":[\"PATH=/bin\"],\"Entrypoint\":[\"/bin/httpd\",\"-f\",\"-v\",\"-p\",\"8080\",\"-h\",\"/www\"],\"ExposedPorts\":{\"8080/tcp\":{}}}"

cp -r "$cil/install/kubernetes/cilium" "$out/chart/cilium"
{
  echo "cilium $cilium_ver"
  echo "coredns $coredns_ver"
  echo "clang $(cat "$work/clang-version")"
  echo "busybox $(cat "$work/busybox-version")"
  echo "cni-plugins $cni_plugins_ver"
} >"$out/versions.txt"
rm -rf "$work"
echo "$recipe" >"$out/.complete"
step "done: $out"
echo "$out" >&4
