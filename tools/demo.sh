#!/usr/bin/env bash
# Installs what xsktap needs, builds it, and runs a demo capture on a test bed
# of its own: two namespaces joined by a 2-queue veth pair, 5000 frames sent
# from one side, captured on the other into a pcap, summary printed, all torn down.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "demo.sh: run as root (it creates network namespaces and attaches XDP inside them)" >&2
    exit 1
fi
tools/install-deps.sh
cargo build --release --quiet --bins

name="xtdemo$$"
out="${XSKTAP_DEMO_OUT:-/tmp/xsktap-demo-$$.pcap}"
cleanup() {
    [[ -n ${cap_pid:-} ]] && kill "$cap_pid" 2>/dev/null || true
    tools/testbed.sh teardown "$name"
}
trap cleanup EXIT
tools/testbed.sh setup "$name" --queues 2

count=5000
echo "== capturing $count frames on $name-b (queues 0 and 1) into $out"
tools/testbed.sh exec "$name" b target/release/xsktap capture -i "$name-b" -w "$out" \
    -c "$count" --duration 30 --summary-json "$out.json" &
cap_pid=$!
# Wait until the XDP program is attached before sending.
for _ in $(seq 100); do
    ip -n "$name-b" -d link show dev "$name-b" | grep -q "prog/xdp" && break
    sleep 0.1
done
tools/testbed.sh exec "$name" a target/release/xsktap-bench send -i "$name-a" -c "$count" --flows 16
wait "$cap_pid"
cap_pid=""
echo "== first packets, read back by tcpdump"
tcpdump -r "$out" -nn -c 5 2>/dev/null
echo "== $(tcpdump -r "$out" -nn 2>/dev/null | wc -l) packets in $out; JSON summary in $out.json"
