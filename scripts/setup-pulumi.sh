#!/usr/bin/env bash
# Provide a Pulumi CLI without downloading a prebuilt binary: use `pulumi` from PATH when its
# version matches (the official installer ships the Node.js language host beside it), otherwise
# build it from the published Go modules into a cache outside the repo, together with our own
# Node.js language host (tools/pulumi-language-nodejs) and the dynamic-provider launcher.
# Prints the directory holding pulumi, pulumi-language-nodejs and pulumi-resource-pulumi-nodejs.
#
# Offline use: run pulumi through scripts/pulumi, which sets PULUMI_SKIP_UPDATE_CHECK,
# PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK, PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION,
# a local file backend and a passphrase for secrets.
#
# Env: K8SBM_CACHE (cache root), K8SBM_FORCE_BUILD=1 (ignore a pulumi on PATH).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# package.json's config.pulumiVersion, read without starting node (this runs before every command)
version=$(sed -n 's/^ *"pulumiVersion": *"\([^"]*\)".*/\1/p' "$here/package.json")
[ -n "$version" ] || version=$(node -p "require('$here/package.json').config.pulumiVersion")
cache=${K8SBM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-baremetal}
bin="$cache/pulumi-v$version/bin"
langsrc="$here/tools/pulumi-language-nodejs"
log() { echo "setup-pulumi: $*" >&2; }

if command -v pulumi >/dev/null 2>&1 && [ -z "${K8SBM_FORCE_BUILD:-}" ]; then
  onpath=$(dirname "$(command -v pulumi)")
  if [ "$onpath" != "$bin" ]; then
    have=$(pulumi version 2>/dev/null | sed 's/^v//' || true)
    if [ "$have" = "$version" ] && command -v pulumi-language-nodejs >/dev/null 2>&1; then
      echo "$onpath"; exit 0
    fi
  fi
fi

mkdir -p "$bin"
# One build at a time (two callers may start together); builds write to *.tmp and rename.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.setup-pulumi.lock"
  flock 9
fi

# run_logged LOGFILE CMD...: run quietly, show the log's tail if the command fails.
run_logged() {
  local logfile=$1; shift
  if ! "$@" >>"$logfile" 2>&1; then
    log "failed: $*"; tail -n 40 "$logfile" >&2; return 1
  fi
}

if [ ! -x "$bin/pulumi" ]; then
  command -v go >/dev/null || { log "no pulumi $version on PATH and no Go toolchain to build one"; exit 1; }
  work="$cache/build-pulumi-v$version"
  buildlog="$cache/build-pulumi-v$version.log"
  rm -rf "$work"; mkdir -p "$work"; : >"$buildlog"
  start=$SECONDS
  # A dependency's replace directives are ignored, so the published module builds as is.
  log "building pulumi v$version from its Go modules (first run: about 7 min on 2 cores; log: $buildlog)"
  (
    cd "$work"
    run_logged "$buildlog" go mod init k8sbm.local/pulumi-cli
    run_logged "$buildlog" env GOFLAGS=-mod=mod go get "github.com/pulumi/pulumi/pkg/v3@v$version"
    run_logged "$buildlog" env GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$bin/pulumi.tmp" \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$version" \
      github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  )
  mv "$bin/pulumi.tmp" "$bin/pulumi"
  rm -rf "$work"
  log "pulumi v$version built in $((SECONDS - start))s"
fi

# Our Node.js language host: rebuilt whenever its sources or the Pulumi version change.
[ -f "$langsrc/main.go" ] || { log "missing $langsrc/main.go"; exit 1; }
hash=$( { cat "$langsrc/main.go" "$langsrc/go.mod" "$langsrc/go.sum"; echo "$version"; } | sha256sum | cut -d' ' -f1)
if [ ! -x "$bin/pulumi-language-nodejs" ] || [ "$(cat "$bin/pulumi-language-nodejs.srchash" 2>/dev/null)" != "$hash" ]; then
  command -v go >/dev/null || { log "no Go toolchain to build tools/pulumi-language-nodejs"; exit 1; }
  start=$SECONDS
  buildlog="$cache/build-pulumi-language-nodejs.log"; : >"$buildlog"
  log "building pulumi-language-nodejs (tools/pulumi-language-nodejs)"
  (cd "$langsrc" && run_logged "$buildlog" env CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X main.version=$version" -o "$bin/pulumi-language-nodejs.tmp" .)
  mv "$bin/pulumi-language-nodejs.tmp" "$bin/pulumi-language-nodejs"
  echo "$hash" >"$bin/pulumi-language-nodejs.srchash"
  log "pulumi-language-nodejs built in $((SECONDS - start))s"
fi

# Dynamic providers (pulumi.dynamic.Resource) run through this launcher, which starts the provider
# host of the @pulumi/pulumi package resolved from the program's working directory.
launcher=$(cat <<'EOF'
#!/bin/sh
# Written by scripts/setup-pulumi.sh: runs the dynamic-provider host of the program's @pulumi/pulumi:
# ./node_modules' (the engine starts us in the program's directory), else wherever node resolves it.
script="$PWD/node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js"
[ -f "$script" ] || script=$(node -e "process.stdout.write(require.resolve('@pulumi/pulumi/cmd/dynamic-provider'))") || exit 1
# the program's tools/node-preload.js, as for the program (Pulumi.yaml nodeargs)
pre="$PWD/tools/node-preload.js"
if [ -f "$pre" ]; then exec node --require "$pre" "$script" "$@"; fi
exec node "$script" "$@"
EOF
)
if [ "$(cat "$bin/pulumi-resource-pulumi-nodejs" 2>/dev/null)" != "$launcher" ]; then
  printf '%s\n' "$launcher" >"$bin/pulumi-resource-pulumi-nodejs.tmp"
  chmod 755 "$bin/pulumi-resource-pulumi-nodejs.tmp"
  mv "$bin/pulumi-resource-pulumi-nodejs.tmp" "$bin/pulumi-resource-pulumi-nodejs"
fi

echo "$bin"
