#!/usr/bin/env bash
# What the XDP program each AF_XDP receiver attaches costs per frame, on the
# same generated traffic: the kernel's run_time_ns / run_cnt of the program on
# the receiving veth (kernel.bpf_stats_enabled=1, read with bpftool).
#
#   bench/xdp-cost.sh [ROUNDS]     as root, after cargo build --release
#
# Receivers: xsktap capture -w /dev/shm (per-frame stamps, -j host_lowprec,
# --limit-pps by source and by flow), and dpdk-testpmd's AF_XDP driver
# (libxdp's default program) when installed. Everything runs on a test bed of
# its own (tools/testbed.sh), torn down on every path; the generator sends a
# bounded 2,000,000 frames at 500 kpps from namespace a.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
bed=xcost$$
testpmd=$(command -v dpdk-testpmd || echo /opt/xsktap-peers/dpdk/bin/dpdk-testpmd)
command -v bpftool >/dev/null || { echo "xdp-cost: bpftool is needed (apt-get install bpftool)" >&2; exit 1; }
stats=$(sysctl -n kernel.bpf_stats_enabled)
tools/testbed.sh setup "$bed" --queues 1 >/dev/null
trap 'sysctl -qw kernel.bpf_stats_enabled="$stats"; tools/testbed.sh teardown "$bed" >/dev/null 2>&1; rm -f /dev/shm/$bed.pcap' EXIT
sysctl -qw kernel.bpf_stats_enabled=1

measure() { # NAME COMMAND...
    local name=$1 pid id
    shift
    ip netns exec "$bed-b" "$@" >"/dev/shm/$bed-$name.log" 2>&1 &
    pid=$!
    sleep 3
    ip netns exec "$bed-a" target/release/xsktap-bench gen -i "$bed-a" -c 2000000 -s 60 \
        --cpus 0 --flows 16 --rate 500000 >/dev/null
    sleep 0.5
    id=$(ip -n "$bed-b" -j link show "$bed-b" | python3 -c '
import json, sys
x = json.load(sys.stdin)[0].get("xdp", {})
print(x.get("prog", {}).get("id") or (x.get("attached") or [{}])[0].get("prog", {}).get("id", ""))')
    bpftool prog show id "$id" -j | python3 -c "
import json, sys
p = json.load(sys.stdin)
print('$name: %s %.1f ns a frame (%d runs)' % (p['name'], p['run_time_ns'] / p['run_cnt'], p['run_cnt']))"
    kill -INT "$pid"
    wait "$pid" 2>/dev/null || true
    rm -f "/dev/shm/$bed-$name.log"
}

# Where per-frame stamps travel on this kernel: XDP metadata where it allows
# it, headroom where it refuses bpf_xdp_adjust_meta (the forced row measures
# headroom on any kernel).
carry=$(target/release/xsktap features --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["capture"]["carried_in"])')
echo "xdp-cost: per-frame stamps carried in $carry on $(uname -r)"
for _ in $(seq "$rounds"); do
    measure "xsktap-$carry" taskset -c 1 target/release/xsktap capture -i "$bed-b" --cores 1 -q -w "/dev/shm/$bed.pcap"
    [[ $carry == headroom ]] || measure xsktap-headroom env XSKTAP_TEST_MISSING=adjust_meta taskset -c 1 \
        target/release/xsktap capture -i "$bed-b" --cores 1 -q -w "/dev/shm/$bed.pcap"
    measure xsktap-host_lowprec taskset -c 1 target/release/xsktap capture -i "$bed-b" --cores 1 -q \
        -j host_lowprec -w "/dev/shm/$bed.pcap"
    # The rate limit, set far above the traffic: every frame pays the parse,
    # the bucket's lookup and its compare-and-swap, and none is dropped.
    measure xsktap-limit-src taskset -c 1 target/release/xsktap capture -i "$bed-b" --cores 1 -q \
        --limit-pps 100000000 -w "/dev/shm/$bed.pcap"
    measure xsktap-limit-flow taskset -c 1 target/release/xsktap capture -i "$bed-b" --cores 1 -q \
        --limit-pps 100000000 --limit-by flow -w "/dev/shm/$bed.pcap"
    # With a filter the frame is parsed anyway: what the bucket alone adds.
    measure xsktap-udp taskset -c 1 target/release/xsktap capture -i "$bed-b" --cores 1 -q \
        -w "/dev/shm/$bed.pcap" udp
    measure xsktap-udp-limit-src taskset -c 1 target/release/xsktap capture -i "$bed-b" --cores 1 -q \
        --limit-pps 100000000 -w "/dev/shm/$bed.pcap" udp
    if [[ -x $testpmd ]]; then
        measure testpmd "$testpmd" --no-huge --no-pci -m 512 --file-prefix "$bed" -l 0,1 --main-lcore 0 \
            --vdev "net_af_xdp0,iface=$bed-b,start_queue=0,queue_count=1" -- \
            --forward-mode=rxonly --nb-cores=1 --total-num-mbufs=32768 --stats-period 1
    fi
done
