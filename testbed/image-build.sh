# Sourced by testbed/cilium-image.sh and testbed/addons-image.sh (and part of their recipes: a
# change here rebuilds both): the build log, Go builds from module copies, one-layer images.
# The caller sets $work (scratch) and $out (results; images go to $out/images, listed in
# $out/images.txt).

# build_log <log file> <name>: from here on everything goes to the log; a failing command ends
# the script (set -e) and the log's tail is shown on the terminal, with the step it failed at.
# fd 3 is the terminal's stderr, fd 4 its stdout.
build_log() {
  buildlog=$1 build_name=$2 current=start
  : >"$buildlog"
  exec 3>&2 4>&1 >>"$buildlog" 2>&1
  build_fd=3
  trap 'rc=$?; if [ $rc -ne 0 ]; then tail -40 "$buildlog" >&3; log "failed at: $current (log: $buildlog)"; fi' EXIT
}
log() { echo "${build_name:-image-build}: $*" >&"${build_fd:-2}"; }
step() {
  current=$*
  log "$*"
  echo "=== $(date -u +%T) $*"
}

# modcopy <module@version> <dir>: a writable copy of a module, built as the main module so that
# its go.mod (replaces, pins) applies; nothing of it is kept in the repo.
modcopy() {
  local d
  d=$(go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$d" ] || { echo "no module directory for $1" >&2; return 1; }
  rm -rf "$2"; cp -r "$d" "$2"; chmod -R u+w "$2"
}

# gobuild <src dir> <out binary> <package> [go build flags...]: static, kept once built
gobuild() {
  local src=$1 bin=$2 pkg=$3; shift 3
  [ -x "$bin" ] && return 0
  (cd "$src" && CGO_ENABLED=0 go build -trimpath "$@" -o "$bin.tmp" "$pkg") && mv "$bin.tmp" "$bin"
}

# pack <ref> <root dir> <image config (JSON)>: a one-layer docker-archive image of the directory,
# for `ctr -n k8s.io images import`
pack() {
  local ref=$1 root=$2 conf=$3 d diff cfg file
  d=$(mktemp -d -p "$work")
  tar --sort=name --numeric-owner --xattrs --xattrs-include='security.capability' \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./run/*' \
    --exclude='./var/cache/apt/*' --exclude='./var/lib/apt/lists/*' --exclude='./var/log/*' \
    -C "$root" -cf "$d/layer.tar" .
  diff=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
  printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$conf" "$diff" >"$d/config.json"
  cfg=$(sha256sum "$d/config.json" | cut -d' ' -f1)
  mv "$d/config.json" "$d/$cfg.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$cfg" "$ref" >"$d/manifest.json"
  file="$(echo "$ref" | tr '/:' '__').tar"
  tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$d" -cf "$out/images/$file" manifest.json "$cfg.json" layer.tar
  echo "$ref $file" >>"$out/images.txt"
  rm -rf "$d"
}
