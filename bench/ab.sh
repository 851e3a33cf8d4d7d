#!/usr/bin/env bash
# Side-by-side A/B of two xsktap captures on the same traffic, alternating A and B: `capture -w`
# to tmpfs, 2 M frames at 500 kpps from the generator on CPU 0, worker on CPU 1, on a test bed of
# its own. Prints CPU per packet (whole-machine busy time minus the generator process, as the
# harness counts it) and one-way latency per trial.
#   bench/ab.sh BIN_A "FLAGS_A" BIN_B "FLAGS_B" [PAIRS]
# Needs root and a release build of xsktap-bench; bounded (2 M frames a trial).
set -euo pipefail
cd "$(dirname "$0")/.."
bins=("$1" "$3")
flags=("$2" "$4")
pairs=${5:-3}
name=ab$$
work=$(mktemp -d)
tools/testbed.sh setup "$name" >/dev/null
trap 'tools/testbed.sh teardown "$name" >/dev/null || true; rm -rf "$work"' EXIT
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null; }
for ((i = 0; i < pairs; i++)); do
    for side in 0 1; do
        # shellcheck disable=SC2086 # the flags are words
        tools/testbed.sh exec "$name" b taskset -c 1 "${bins[$side]}" capture -i "$name-b" \
            --cores 1 -q ${flags[$side]} -w "$work/x.pcap" --summary-json "$work/s.json" \
            --duration 6 2>/dev/null &
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
        label="$([[ $side == 0 ]] && echo A || echo B) ${flags[$side]}"
        python3 - "$label" "$((b1 - b0 - (g1 - g0)))" "$work/s.json" <<'PY'
import json, os, sys
label, busy, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = json.load(open(path))
l = s["latency"]
ns = busy / os.sysconf("SC_CLK_TCK") * 1e9 / s["received"]
print(f"{label}: received {s['received']} lost {s['lost']}  CPU {ns:.0f} ns/packet  "
      f"p50 {l['p50_ns']/1e3:.0f} us  p99 {l['p99_ns']/1e3:.0f} us")
PY
    done
done
