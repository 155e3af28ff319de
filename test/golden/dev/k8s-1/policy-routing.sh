#!/bin/sh
# Managed by k8s-baremetal (Pulumi). Local edits are reverted.
# Policy routing for k8s-1 (the seed's routes_wan1 and rules).
set -e
while ip rule del priority 200 2>/dev/null; do :; done
while ip rule del priority 201 2>/dev/null; do :; done
ip route replace 10.118.11.0/24 dev wan1
ip route replace 10.118.11.0/24 dev wan1 scope link table vswitch
ip route replace 10.118.12.0/24 dev wan1 scope link table vswitch
ip route replace default via 10.118.11.1 dev wan1 table vswitch
ip rule add from all to 10.244.0.0/16 lookup main priority 200
ip rule add from 10.118.11.0/24 lookup vswitch priority 201
