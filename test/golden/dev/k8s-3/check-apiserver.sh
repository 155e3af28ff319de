#!/bin/sh
# Managed by k8s-baremetal (Pulumi). Local edits are reverted.
# keepalived vrrp_script for k8s-3: exit 0 = this node's apiserver is ready.
# Runs as keepalived_script; needs no secret (/readyz is public), only search permission on
# the manifest's directories (the program grants it): without it, fail rather than pass blind.
m=/etc/kubernetes/manifests/kube-apiserver.yaml
for d in "${m%/*/*}" "${m%/*}"; do
    if [ -e "$d" ] && [ ! -x "$d" ]; then echo "check-apiserver: cannot search $d as $(id -un)" >&2; exit 1; fi
done
# No manifest: not a control plane (yet, or any more); only the first one holds the VIP without one.
[ -f "$m" ] || { echo "check-apiserver: no $m" >&2; exit 1; }
url="https://10.118.12.22:6443/readyz"
if command -v curl >/dev/null 2>&1; then
    exec curl -fsk --max-time 1 -o /dev/null "$url"
fi
# Fallback for hosts without curl (BusyBox or GNU wget).
exec wget -q -T 1 -O /dev/null --no-check-certificate "$url"
