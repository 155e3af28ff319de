#!/bin/sh
# Managed by k8s-baremetal (Pulumi). Local edits are reverted.
# keepalived vrrp_script for k8s-1: exit 0 = this node's apiserver is ready.
# Not a control plane yet (kubeadm has not written the manifest): nothing to check, pass.
[ -f /etc/kubernetes/manifests/kube-apiserver.yaml ] || exit 0
url="https://10.118.12.20:6443/readyz"
if command -v curl >/dev/null 2>&1; then
    exec curl -fsk --max-time 1 -o /dev/null "$url"
fi
# Fallback for hosts without curl (BusyBox or GNU wget).
exec wget -q -T 1 -O /dev/null --no-check-certificate "$url"
