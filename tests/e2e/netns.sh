#!/usr/bin/env bash
# Run a command (the e2e pytest session) inside a fresh network namespace that has nothing but loopback.
#
#   bash tests/e2e/netns.sh COMMAND [ARG...]
#
# Everything the suite starts — etcd, kube-apiserver, kube-controller-manager, kwok, Knative Serving's
# controller and webhook, KEDA's operator, webhooks and metrics adapter, Prometheus, knscale — inherits
# this namespace. It has no interface but `lo` and no route off the machine: a DNS lookup or a dial to
# any registry fails at once (ENETUNREACH) instead of leaving the machine. Endpoints and EndpointSlices
# cannot name loopback addresses, so E2E_LO_ADDRS (below) are added to this namespace's `lo`; they exist
# only in here. tests/e2e/test_zz_network_isolation.py checks all of it after the scenarios ran.
#
# Root: `unshare --net`. Not root: `unshare --map-root-user --net` (needs unprivileged user namespaces).
set -euo pipefail

# Addresses on the namespace's loopback: Knative's and KEDA's webhooks and KEDA's metrics adapter are
# reached by the apiserver through EndpointSlices at 10.250.0.1 (tests/e2e/cluster.py NETNS_ADDRESS).
E2E_LO_ADDRS=${E2E_LO_ADDRS:-10.250.0.1/32}

if [[ ${KNSCALE_E2E_NETNS:-} != inner ]]; then
  [[ $# -gt 0 ]] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
  flags=(--net)
  [[ $(id -u) -eq 0 ]] || flags=(--map-root-user --net)
  # The namespace we leave: the isolation test checks that no process of the suite is still in it.
  KNSCALE_E2E_HOST_NETNS=$(readlink /proc/self/ns/net)
  export KNSCALE_E2E_HOST_NETNS KNSCALE_E2E_NETNS=inner E2E_LO_ADDRS
  exec unshare "${flags[@]}" -- bash "$0" "$@"
fi

ip link set lo up
for addr in $E2E_LO_ADDRS; do ip addr add "$addr" dev lo; done
KNSCALE_E2E_NETNS_ID=$(readlink /proc/self/ns/net)
export KNSCALE_E2E_NETNS_ID
exec "$@"
