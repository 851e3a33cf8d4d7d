#!/usr/bin/env bash
# A/B of two xsktap binaries on the same traffic: `capture -w` alternating A and B, 2 M frames at
# 500 kpps from the generator on CPU 0, worker on CPU 1, on a test bed of its own. Prints CPU per
# packet (whole-machine busy time minus the generator process) and one-way latency per trial.
#   bench/refill-ab.sh OLD_XSKTAP NEW_XSKTAP [PAIRS]
# Needs root and a release build of xsktap-bench; bounded (2 M frames a trial).
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1
b=$2
pairs=${3:-3}
name=rab$$
work=$(mktemp -d)
tools/testbed.sh setup "$name" >/dev/null
trap 'tools/testbed.sh teardown "$name" >/dev/null || true; rm -rf "$work"' EXIT
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null; }
for ((i = 0; i < pairs; i++)); do
    for side in A B; do
        bin=$a
        [[ $side == B ]] && bin=$b
        tools/testbed.sh exec "$name" b taskset -c 1 "$bin" capture -i "$name-b" \
            --cores 1 -q -w "$work/x.pcap" --summary-json "$work/s.json" --duration 6 2>/dev/null &
        capture=$!
        sleep 1.2
        b0=$(busy)
        ip netns exec "$name-a" taskset -c 0 target/release/xsktap-bench gen -i "$name-a" \
            -c 2000000 --rate 500000 --cpus 0 >/dev/null 2>&1 &
        gen=$!
        g0=$(cpu_ticks "$gen")
        g1=$g0
        while t=$(cpu_ticks "$gen"); do
            g1=$t
            sleep 0.05
        done
        b1=$(busy)
        wait "$gen" || true
        wait "$capture"
        python3 - "$side" "$((b1 - b0 - (g1 - g0)))" "$work/s.json" <<'PY'
import json, os, sys
side, busy, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = json.load(open(path))
l = s["latency"]
ns = busy / os.sysconf("SC_CLK_TCK") * 1e9 / s["received"]
print(f"{side}: received {s['received']} lost {s['lost']}  CPU {ns:.0f} ns/packet  "
      f"p50 {l['p50_ns']/1e3:.0f} us  p99 {l['p99_ns']/1e3:.0f} us")
PY
    done
done
