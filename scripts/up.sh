#!/usr/bin/env bash
# The main job: `pulumi up` on a stack (default: dev, the seed's libvirt lab) with a local file
# backend and no cloud login. First use creates the stack and its secrets: a fresh SSH key for
# the lab VMs and a random VRRP password. Extra arguments go to `pulumi up`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
stack=${STACK:-dev}
p() { "$here/scripts/pulumi" "$@"; }

p stack select --create "$stack" >/dev/null
secret_set() { p config get "$1" >/dev/null 2>&1; }
if ! secret_set sshPrivateKey; then
  key="$here/.pulumi/$stack-id_ed25519"
  [ -f "$key" ] || ssh-keygen -q -t ed25519 -N "" -C "k8s-baremetal-$stack" -f "$key"
  p config set --secret sshPrivateKey <"$key"
  echo "up: generated the $stack stack's SSH key: $key" >&2
fi
if [ "$(p config get --path vrrp.authType 2>/dev/null || echo none)" != none ] && ! secret_set vrrpPassword; then
  head -c 6 /dev/urandom | base64 | tr -d '/+=' | p config set --secret vrrpPassword
fi
exec "$here/scripts/pulumi" up --stack "$stack" "$@"
