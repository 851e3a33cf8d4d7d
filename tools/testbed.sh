#!/usr/bin/env bash
# A named test bed: two network namespaces joined by a veth pair with N queues.
#
#   testbed.sh setup NAME [--queues N] [--ipv6]   create NAME-a and NAME-b
#   testbed.sh teardown NAME                      delete both namespaces (and the veth)
#   testbed.sh exec NAME a|b CMD [ARGS...]        run CMD inside NAME-a or NAME-b
#   testbed.sh status NAME                        show links, addresses and XDP
#
# Safety: everything lives in the two namespaces this script creates; the veth is
# created inside NAME-a and its peer moved straight into NAME-b, nothing is added
# to the root namespace, no default route is set, and addresses come from
# 198.18.0.0/15 and 2001:2::/48. In each namespace the device is named like the
# namespace (NAME-a, NAME-b), with fixed MACs and permanent neighbour entries.
# IPv6 is disabled before the links come up (so the kernel sends no DAD/MLD/RS
# frames) unless --ipv6 is given.
set -euo pipefail

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[[ $# -ge 2 ]] || usage
cmd=$1
name=$2
shift 2

if [[ ! $name =~ ^[a-zA-Z0-9]{1,13}$ ]]; then
    echo "testbed.sh: name '$name' must be 1 to 13 letters or digits (it names interfaces)" >&2
    exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "testbed.sh: must run as root (it creates network namespaces)" >&2
    exit 1
fi

ns_a="$name-a"
ns_b="$name-b"
mac_a=02:00:c6:12:00:01
mac_b=02:00:c6:12:00:02

teardown() {
    ip netns del "$ns_a" 2>/dev/null || true
    ip netns del "$ns_b" 2>/dev/null || true
}

setup() {
    local queues=1 ipv6=0
    while [[ $# -gt 0 ]]; do
        case $1 in
        --queues) queues=$2; shift 2 ;;
        --ipv6) ipv6=1; shift ;;
        *) echo "testbed.sh: unknown option $1" >&2; exit 2 ;;
        esac
    done
    if [[ ! $queues =~ ^[0-9]+$ ]] || ((queues < 1 || queues > 64)); then
        echo "testbed.sh: --queues must be a number from 1 to 64" >&2
        exit 2
    fi
    if ip netns list | grep -qE "^($ns_a|$ns_b)( |$)"; then
        echo "testbed.sh: namespace $ns_a or $ns_b already exists; tear it down first" >&2
        exit 1
    fi
    trap 'teardown' ERR
    ip netns add "$ns_a"
    ip netns add "$ns_b"
    for ns in "$ns_a" "$ns_b"; do
        ip -n "$ns" link set lo up
        if ((ipv6 == 0)); then
            ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
            ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
        fi
    done
    ip -n "$ns_a" link add "$ns_a" address $mac_a numtxqueues "$queues" numrxqueues "$queues" \
        type veth peer name "$ns_b" address $mac_b netns "$ns_b" numtxqueues "$queues" numrxqueues "$queues"
    ip -n "$ns_a" addr add 198.18.0.1/24 dev "$ns_a"
    ip -n "$ns_b" addr add 198.18.0.2/24 dev "$ns_b"
    ip -n "$ns_a" neigh replace 198.18.0.2 lladdr $mac_b dev "$ns_a" nud permanent
    ip -n "$ns_b" neigh replace 198.18.0.1 lladdr $mac_a dev "$ns_b" nud permanent
    if ((ipv6 == 1)); then
        ip -n "$ns_a" addr add 2001:2::1/64 dev "$ns_a" nodad
        ip -n "$ns_b" addr add 2001:2::2/64 dev "$ns_b" nodad
        ip -n "$ns_a" neigh replace 2001:2::2 lladdr $mac_b dev "$ns_a" nud permanent
        ip -n "$ns_b" neigh replace 2001:2::1 lladdr $mac_a dev "$ns_b" nud permanent
    fi
    ip -n "$ns_a" link set "$ns_a" up
    ip -n "$ns_b" link set "$ns_b" up
    trap - ERR
    echo "test bed $name: $ns_a/$ns_a (198.18.0.1, $mac_a) <-> $ns_b/$ns_b (198.18.0.2, $mac_b), $queues queue(s)"
}

case $cmd in
setup) setup "$@" ;;
teardown) teardown ;;
exec)
    [[ $# -ge 2 ]] || usage
    side=$1
    shift
    case $side in
    a) exec ip netns exec "$ns_a" "$@" ;;
    b) exec ip netns exec "$ns_b" "$@" ;;
    *) usage ;;
    esac
    ;;
status)
    for ns in "$ns_a" "$ns_b"; do
        if ip netns list | grep -qE "^$ns( |$)"; then
            echo "== $ns"
            ip -n "$ns" -d link show dev "$ns" | sed -n '1,3p'
            ip -n "$ns" -br addr show dev "$ns"
        else
            echo "== $ns: absent"
        fi
    done
    ;;
*) usage ;;
esac
