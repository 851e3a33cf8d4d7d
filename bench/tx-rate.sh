#!/usr/bin/env bash
# Transmit rate of the senders on the bed: xsktap-bench gen over AF_XDP TX,
# dpdk-testpmd's af_xdp PMD in txonly mode, and trafgen (netsniff-ng,
# PF_PACKET with the qdisc bypassed); each pinned to CPU 0, one queue,
# 64-byte frames, into an XDP drop receiver on side b (xsktap-bench drop)
# that counts what arrived.
#
#   bench/tx-rate.sh [ROUNDS] [FRAMES]    as root, after cargo build --release
#
# Everything runs on a test bed of its own (tools/testbed.sh), torn down on
# every path; every sender is bounded in frames and in time.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
frames=${2:-3000000}
bed=xtx$$
testpmd=$(command -v dpdk-testpmd || echo /opt/xsktap-peers/dpdk/bin/dpdk-testpmd)
tools/testbed.sh setup "$bed" --queues 1 >/dev/null
trap 'tools/testbed.sh teardown "$bed" >/dev/null 2>&1; rm -f /dev/shm/$bed-*' EXIT
a=$bed-a
b=$bed-b
# shellcheck source=bench/trafgen.sh
. bench/trafgen.sh
trafgen_config "$a" "$b" >"/dev/shm/$bed-trafgen.cfg"

# Runs receiver, then SENDER... in namespace a; prints NAME, the sender's
# rate and what arrived.
measure() { # NAME SENDER...
    local name=$1 pid out
    shift
    ip netns exec "$b" target/release/xsktap-bench drop -i "$b" --json "/dev/shm/$bed-drop.json" &
    pid=$!
    sleep 1
    out=$(ip netns exec "$a" "$@" 2>&1 || true)
    sleep 0.5
    kill -INT "$pid"
    wait "$pid" 2>/dev/null || true
    NAME=$name OUT=$out DROP=/dev/shm/$bed-drop.json python3 - <<'PY'
import json, os, re, statistics
name, out = os.environ["NAME"], os.environ["OUT"]
got = json.load(open(os.environ["DROP"])).get("dropped", 0)
if name == "xsktap-bench-gen":
    v = json.loads(out.strip().splitlines()[-1])
    sent, rate = v["sent"], v["rate"]
elif name == "testpmd-txonly":
    pps = [int(x) for x in re.findall(r"Tx-pps:\s+(\d+)", out)]
    pps = [p for p in pps if p > 0][1:-1] or pps
    rate = statistics.median(pps) if pps else 0
    m = re.findall(r"TX-packets:\s+(\d+)", out)
    sent = int(m[-1]) if m else 0
else:
    m = re.search(r"(\d+) packets outgoing", out)
    t = re.search(r"(\d+) sec, (\d+) usec", out)
    sent = int(m.group(1)) if m else 0
    secs = int(t.group(1)) + int(t.group(2)) / 1e6 if t else 0
    rate = sent / secs if secs else 0
print(f"{name:18} {rate / 1e6:6.3f} Mpps sent {sent:>9}  arrived {got:>9}")
PY
}

secs=$((frames / 200000 + 5))
for round in $(seq "$rounds"); do
    echo "== round $round: $frames frames of 64 bytes, sender on CPU 0"
    measure xsktap-bench-gen taskset -c 0 target/release/xsktap-bench gen -i "$a" -c "$frames" \
        -s 64 --cpus 0 --via af-xdp --max-secs "$secs"
    if [[ -x $testpmd ]]; then
        measure testpmd-txonly timeout -s INT "$((frames / 800000 + 3))" "$testpmd" --no-huge --no-pci \
            -m 512 --file-prefix "$bed" -l 1,0 --main-lcore 1 \
            --vdev "net_af_xdp0,iface=$a,start_queue=0,queue_count=1" -- \
            --forward-mode=txonly --txpkts=64 --nb-cores=1 --total-num-mbufs=32768 \
            --stats-period 1
    fi
    measure trafgen timeout -s INT "$secs" taskset -c 0 trafgen -o "$a" -i "/dev/shm/$bed-trafgen.cfg" \
        -n "$frames" -P 1 -Q
done
