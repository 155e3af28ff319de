#!/usr/bin/env bash
# What the live lab cluster's add-on test needs (issue 12), built here because nothing can be
# pulled: Go binaries from the published Go modules, the chart from the module's files. Produces,
# in a cache outside the repo:
#   images/  docker-archive tars for `ctr -n k8s.io images import` (as testbed/cilium-image.sh):
#              quay.io/jetstack/cert-manager-{controller,webhook,cainjector,ctl}:vX
#              the names the chart asks for (its appVersion), one static binary each, user 1000
#              as upstream's images (the chart sets runAsNonRoot)
#   chart/cert-manager   the module's chart, made as its Makefile makes the release's: Chart.yaml
#                        from Chart.template.yaml, templates/crds.yaml from deploy/crds
#              docker.io/library/traefik:vT  Traefik (the web dashboard's browser bundle is not
#                                                built: its module holds only a placeholder, so the
#                                                dashboard page is empty; the proxy is whole)
#   chart/traefik        the Traefik chart, from its repository as the module proxy serves it
#                        (github.com/traefik/traefik-helm-chart, +incompatible: no go.mod)
#   gateway-api/standard-install.yaml  the Gateway API CRDs of the release Traefik is built
#                        against (sigs.k8s.io/gateway-api's config/crd/standard, concatenated as
#                        the release's file is)
#   bin/pebble           Let's Encrypt's ACME test server, run on a lab client (not in the cluster)
#   versions.txt
# cert-manager is v1.11.5: from v1.12 on, the controller, webhook and cainjector main packages are
# separate modules whose paths (…/controller-binary) do not match their directories, so no module
# proxy serves them; v1.11.5 is the newest release whose module holds them. User stacks keep the
# chart repository's current release (model/schema.ts); README "Add-ons" says what this proves.
# Traefik is v3.6.12 with chart 41.6.0 (which supports Traefik >= 3.6.0): chart 41.6.0 is the one
# release of the chart the module proxy serves, and Traefik 3.7's module graph pins versions the
# proxy refuses (github.com/containous/go-http-auth, github.com/nrdcg/oci-go-sdk); 3.6.12's is whole.
# Prints the output directory.
set -euo pipefail
cm_ver=1.11.5
pebble_ver=2.10.3
traefik_ver=3.6.12
traefik_chart_ver=41.6.0
gateway_api_ver=v1.4.0   # what Traefik $traefik_ver's go.mod requires
here=$(cd "$(dirname "$0")" && while [ ! -f package.json ] && [ "$PWD" != / ]; do cd ..; done && pwd)   # the repo root
cache=${K8SBM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-baremetal}
out="$cache/lab-addons"
build_name=addons-image
# shellcheck source=testbed/image-build.sh
. "$here/testbed/image-build.sh"
recipe=$(cat "$0" "$here/testbed/image-build.sh" | sha256sum | cut -c1-16)
done_() { [ "$(cat "$out/.complete" 2>/dev/null)" = "$recipe" ]; }
if done_; then echo "$out"; exit 0; fi
command -v go >/dev/null || { log "no Go toolchain"; exit 1; }
mkdir -p "$cache"
exec 9>"$cache/.addons-image.lock"
flock 9
if done_; then echo "$out"; exit 0; fi
rm -rf "$out/images" "$out/chart" "$out/gateway-api" "$out/.complete"
mkdir -p "$out/bin" "$out/images" "$out/chart" "$out/gateway-api"
work="$cache/build-lab-addons"
rm -rf "$work"; mkdir -p "$work"
build_log "$cache/lab-addons.log" addons-image

step "cert-manager v$cm_ver source"
cm="$work/cert-manager"
modcopy "github.com/cert-manager/cert-manager@v$cm_ver" "$cm"
step "cert-manager controller, webhook, cainjector, ctl (first time: about 6 min on 2 cores)"
for b in controller webhook cainjector ctl; do
  gobuild "$cm" "$out/bin/cert-manager-$b-v$cm_ver" "./cmd/$b" \
    -ldflags "-s -w -X github.com/cert-manager/cert-manager/pkg/util.AppVersion=v$cm_ver"
done
step "pebble v$pebble_ver"
if [ ! -x "$out/bin/pebble-v$pebble_ver" ]; then
  modcopy "github.com/letsencrypt/pebble/v2@v$pebble_ver" "$work/pebble"
  gobuild "$work/pebble" "$out/bin/pebble-v$pebble_ver" ./cmd/pebble -ldflags "-s -w"
fi
ln -sfn "pebble-v$pebble_ver" "$out/bin/pebble"
step "traefik v$traefik_ver (first time: about 12 min on 2 cores)"
if [ ! -x "$out/bin/traefik-v$traefik_ver" ]; then
  modcopy "github.com/traefik/traefik/v3@v$traefik_ver" "$work/traefik"
  gobuild "$work/traefik" "$out/bin/traefik-v$traefik_ver" ./cmd/traefik \
    -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=v$traefik_ver"
fi

step "packing images"
: >"$out/images.txt"
for b in controller webhook cainjector ctl; do
  root="$work/root-$b"
  mkdir -p "$root/app/cmd/$b" "$root/etc/ssl/certs" "$root/tmp"
  chmod 1777 "$root/tmp"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  printf 'root:x:0:0:root:/:/sbin/nologin\ncert-manager:x:1000:1000::/:/sbin/nologin\n' >"$root/etc/passwd"
  install -m 0755 "$out/bin/cert-manager-$b-v$cm_ver" "$root/app/cmd/$b/$b"
  pack "quay.io/jetstack/cert-manager-$b:v$cm_ver" "$root" \
    "{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\"Entrypoint\":[\"/app/cmd/$b/$b\"],\"User\":\"1000\"}"
done

# as the official image: the binary at /traefik, CA certificates, a writable /tmp; the chart
# runs it as 65532 with a read-only root, /data and /tmp mounted
root="$work/root-traefik"
mkdir -p "$root/etc/ssl/certs" "$root/tmp"
chmod 1777 "$root/tmp"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532::/:/sbin/nologin\n' >"$root/etc/passwd"
install -m 0755 "$out/bin/traefik-v$traefik_ver" "$root/traefik"
pack "docker.io/library/traefik:v$traefik_ver" "$root" \
  "{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\"Entrypoint\":[\"/traefik\"],\"ExposedPorts\":{\"80/tcp\":{}}}"

step "charts, the Gateway API CRDs"
tc=$(go mod download -json "github.com/traefik/traefik-helm-chart@v$traefik_chart_ver+incompatible" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
cp -r "$tc/traefik" "$out/chart/traefik"
chmod -R u+w "$out/chart/traefik"
ga=$(go mod download -json "sigs.k8s.io/gateway-api@$gateway_api_ver" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
first=1
for f in "$ga"/config/crd/standard/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] && continue
  [ $first = 1 ] || echo '---'
  first=0
  cat "$f"
done >"$out/gateway-api/standard-install.yaml"
chart="$out/chart/cert-manager"
cp -r "$cm/deploy/charts/cert-manager" "$chart"
sed -e "s/^version: .*/version: v$cm_ver/" -e "s/^appVersion: .*/appVersion: v$cm_ver/" \
  -e 's/{{IS_PRERELEASE}}/false/' "$chart/Chart.template.yaml" >"$chart/Chart.yaml"
rm "$chart/Chart.template.yaml" "$chart/README.template.md" "$chart/signkey_annotation.txt"
{
  echo '{{- if .Values.installCRDs }}'
  first=1
  for f in "$cm"/deploy/crds/crd-*.yaml; do
    [ $first = 1 ] || echo '---'
    first=0
    cat "$f"
  done
  echo '{{- end }}'
} >"$chart/templates/crds.yaml"

{
  echo "cert-manager v$cm_ver"
  echo "pebble v$pebble_ver"
  echo "traefik v$traefik_ver"
  echo "traefik-chart $traefik_chart_ver"
  echo "gateway-api $gateway_api_ver"
} >"$out/versions.txt"
rm -rf "$work"
echo "$recipe" >"$out/.complete"
step "done: $out"
echo "$out" >&4
