#!/usr/bin/env bash
# Provide the Pulumi resource plugins the program's SDKs request, without downloading prebuilt
# binaries: today pulumi-resource-kubernetes, at exactly the version the installed
# @pulumi/kubernetes asks for (its package.json "pulumi": {"resource": true, "version": ...}).
# It is built from the published Go module github.com/pulumi/pulumi-kubernetes/provider/v4 into a
# cache outside the repo, then installed into Pulumi's plugin cache. scripts/pulumi runs this
# before every command; once installed it only runs node once and tests two paths (no go).
# Prints the installed plugin's directory.
#
# Where the plugin goes, and why there: Pulumi 3.248 (sdk/go/common/workspace/plugins.go,
# getPluginInfoAndPath) looks for pulumi-resource-kubernetes
#   1. on $PATH ("ambient"), unless PULUMI_IGNORE_AMBIENT_PLUGINS is set: ANY version found there
#      is used for every requested version, with the warning "using pulumi-resource-kubernetes
#      from $PATH" on each run;
#   2. in the plugin cache ${PULUMI_HOME:-~/.pulumi}/plugins: a real directory (not a symlink)
#      named resource-kubernetes-v<version> holding the pulumi-resource-kubernetes executable,
#      with no sibling resource-kubernetes-v<version>.partial (Pulumi's "not fully installed"
#      marker; the .lock sibling only serialises Pulumi's own installs). The version must be
#      EQUAL to the one the SDK requests (SelectCompatiblePlugin).
# We use the plugin cache: the exact-version match means a plugin that does not fit the pinned
# SDK is never used silently (the engine says "no resource plugin 'kubernetes-vX' found" instead),
# it works with PULUMI_IGNORE_AMBIENT_PLUGINS set and for pulumi started without scripts/pulumi's
# PATH (Automation API, a pulumi on PATH), it prints no warning, and `pulumi plugin ls` and the
# engine's plugin check see it as installed, so nothing tries to download it. The directory is
# assembled under a name Pulumi ignores (*.tmp<digits>) and renamed into place.
#
# Env: K8SBM_CACHE (cache root), PULUMI_HOME (Pulumi's home, default ~/.pulumi),
#      K8SBM_KUBERNETES_PROVIDER_MODULE (Go module version of provider/v4 to build, for an SDK
#      version missing from the table below).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${K8SBM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-baremetal}
plugins="${PULUMI_HOME:-$HOME/.pulumi}/plugins"
log() { echo "setup-plugins: $*" >&2; }
# run_logged LOGFILE CMD...: run quietly, show the log's tail if the command fails.
run_logged() {
  local logfile=$1; shift
  if ! "$@" >>"$logfile" 2>&1; then
    log "failed: $* (log: $logfile)"; tail -n 40 "$logfile" >&2; return 1
  fi
}

# The plugin version the installed SDK requests (follows the pin in package.json via npm ci).
version=$(node -p "require(require.resolve('@pulumi/kubernetes/package.json', {paths: ['$here']})).pulumi.version" 2>/dev/null) ||
  { log "@pulumi/kubernetes is not installed (run npm ci)"; exit 1; }
name=pulumi-resource-kubernetes
dir="$plugins/resource-kubernetes-v$version"
bin="$cache/pulumi-kubernetes-v$version/bin"

installed() { [ -x "$dir/$name" ] && [ ! -e "$dir.partial" ]; }
if installed; then echo "$dir"; exit 0; fi

# The provider module is not tagged (pulumi-kubernetes tags its releases v4.X.Y on the repository
# root, not provider/v4.X.Y), so the Go module proxy knows it only by pseudo-versions of commits,
# and serves only some. @pulumi/kubernetes version -> pseudo-version of its release commit:
case $version in
  4.25.0) modver=v4.0.0-20260115033456-f47bc2d6f199 ;;   # the commit tagged v4.25.0
  *) modver=${K8SBM_KUBERNETES_PROVIDER_MODULE:-} ;;
esac
if [ -z "$modver" ]; then
  log "cannot build $name v$version: the Go module proxy serves no provider/v4 version known to be v$version."
  log "Pin @pulumi/kubernetes to 4.25.0 in package.json (its plugin can be built), or set"
  log "K8SBM_KUBERNETES_PROVIDER_MODULE to the pseudo-version of the commit tagged v$version."
  exit 1
fi

mkdir -p "$cache" "$plugins"
# One build at a time (two callers may start together); builds write to *.tmp and rename.
exec 9>"$cache/.setup-plugins.lock"
flock 9
if installed; then echo "$dir"; exit 0; fi

if [ ! -x "$bin/$name" ]; then
  command -v go >/dev/null || { log "no Go toolchain to build $name v$version"; exit 1; }
  work="$cache/build-pulumi-kubernetes-v$version"
  buildlog="$cache/build-pulumi-kubernetes-v$version.log"
  rm -rf "$work"; mkdir -p "$work" "$bin"; : >"$buildlog"
  start=$SECONDS
  log "building $name v$version from github.com/pulumi/pulumi-kubernetes/provider/v4@$modver (first run: 20 min or more on 2 cores; log: $buildlog)"
  export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
  # The module's own go:generate step writes the embedded schema (stamped with VERSION) and
  # terraform mapping next to main.go, so build in a writable copy of the module.
  src=$(go mod download -json "github.com/pulumi/pulumi-kubernetes/provider/v4@$modver" 2>>"$buildlog" |
    sed -n 's/^\t"Dir": "\(.*\)",$/\1/p') || true
  if [ -z "$src" ] || [ ! -d "$src" ]; then
    tail -n 40 "$buildlog" >&2; log "cannot download provider/v4@$modver (log: $buildlog)"; exit 1
  fi
  cp -R "$src/." "$work/"
  chmod -R u+w "$work"
  (
    cd "$work"
    # go.mod replaces sdk/v4 with ../sdk, which the module does not contain: use the published SDK.
    run_logged "$buildlog" go mod edit -dropreplace=github.com/pulumi/pulumi-kubernetes/sdk/v4 \
      -require="github.com/pulumi/pulumi-kubernetes/sdk/v4@v$version"
    cd "cmd/$name"
    run_logged "$buildlog" env VERSION="$version" go generate .
    run_logged "$buildlog" go build -trimpath -o "$bin/$name.tmp" \
      -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$version" .
  )
  mv "$bin/$name.tmp" "$bin/$name"
  rm -rf "$work"
  log "$name v$version built in $((SECONDS - start))s ($(du -m "$bin/$name" | cut -f1) MB)"
fi

# Install: a hard link (no second copy; survives a cleared K8SBM_CACHE), else a copy.
tmp="$dir.tmp$$"
rm -rf "$tmp"; mkdir -p "$tmp"
ln "$bin/$name" "$tmp/$name" 2>/dev/null || cp "$bin/$name" "$tmp/$name"
rm -rf "$dir" "$dir.partial"
mv "$tmp" "$dir"
log "installed $name v$version in $dir"
echo "$dir"
