#!/usr/bin/env bash
# The market-data tap at rate: `xsktap feed --ab … --publish` with one subscriber
# (examples/feed_consumer.rs, reliable), fed by the generator (`xsktap-bench feed`,
# A and B lines, no faults) on a test bed of its own, at each offered rate (packets/s,
# both lines together; `max` = as fast as the generator goes). Prints one line per run:
# what was sent and captured, loss, receive-to-decode and receive-to-publish latency
# (the tap's, from each frame's XDP receive stamp), what the subscriber got.
#
#   sudo bench/feed-bench.sh [SECONDS] [RATE ...]   (default 3 s at 250000 500000 1000000 max)
#   XSKTAP_FLAGS="--busy-poll" sudo bench/feed-bench.sh …   (more `xsktap feed` flags)
#
# Needs root and a release build with the example:
#   cargo build --release && cargo build --release -p xsktap-consumer --example feed_consumer
# The generator runs on CPU 0 (with the veth's receive softirq, as in the harness), the
# worker on CPU 1 (--cores 1); the subscriber, polling every 50 us, on CPU 0.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-3}
shift || true
rates=("$@")
[[ ${#rates[@]} -gt 0 ]] || rates=(250000 500000 1000000 max)
xsktap=$root/target/release/xsktap
bench=$root/target/release/xsktap-bench
consumer=$root/target/release/examples/feed_consumer
for b in "$xsktap" "$bench" "$consumer"; do
    [[ -x $b ]] || { echo "feed-bench: $b is missing: build it first (see the header)" >&2; exit 1; }
done
bed=fb$((RANDOM % 100000))
dir=$(mktemp -d /tmp/xsktap-feed-bench.XXXXXX)
cleanup() {
    [[ -n ${tap:-} ]] && kill "$tap" 2>/dev/null || true
    [[ -n ${sub:-} ]] && kill "$sub" 2>/dev/null || true
    "$root/tools/testbed.sh" teardown "$bed" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
"$root/tools/testbed.sh" setup "$bed" --queues 1 >/dev/null
printf '%-8s %9s %9s %9s %6s %8s %19s %19s %9s %7s\n' rate sent/s packets messages gaps lost \
    "rx->decode p50/p99" "rx->publish p50/p99" sub_msgs missed
for rate in "${rates[@]}"; do
    name=bench$RANDOM
    # shellcheck disable=SC2086 # XSKTAP_FLAGS is a list of words
    ip netns exec "$bed-b" "$xsktap" feed -i "$bed-b" --cores 1 --json ${XSKTAP_FLAGS:-} \
        --ab "$name=198.18.0.2:26400,198.18.0.2:26401" --publish \
        --summary-json "$dir/s.json" >"$dir/events" 2>"$dir/tap.err" &
    tap=$!
    for _ in $(seq 100); do grep -q "xsktap: capturing" "$dir/tap.err" 2>/dev/null && break; sleep 0.1; done
    # The subscriber shares CPU 0 with the generator, away from the worker.
    taskset -c 0 "$consumer" "$name" --reliable --quiet >"$dir/sub.json" 2>"$dir/sub.err" &
    sub=$!
    for _ in $(seq 100); do grep -q subscribed "$dir/sub.err" 2>/dev/null && break; sleep 0.1; done
    if [[ $rate == max ]]; then
        packets=$((secs * 1000000)); rate_flag=()
    else
        packets=$((secs * rate / 2)); rate_flag=(--rate "$rate")
    fi
    ip netns exec "$bed-a" "$bench" feed -i "$bed-a" --packets "$packets" --cpu 0 "${rate_flag[@]}" \
        2>"$dir/gen.err"
    wait "$sub" || true
    sub=
    sleep 0.3
    kill -INT "$tap"
    wait "$tap" || true
    tap=
    python3 - "$rate" "$dir" <<'PY'
import json, re, sys
rate, d = sys.argv[1], sys.argv[2]
s = json.load(open(f"{d}/s.json"))
f = s["feeds"][0]
gen = open(f"{d}/gen.err").read()
m = re.search(r"\(([\d.]+) frames/s sent", gen)
sub = json.load(open(f"{d}/sub.json"))
r, p = f["receive_to_decode"], f["consumers"][0]["receive_to_delivery"]
us = lambda ns: f"{ns/1000:.1f}"
print(f"{rate:<8} {float(m.group(1)) if m else 0:9.0f} {sum(l['packets'] for l in f['lines']):9d} "
      f"{f['messages']:9d} {f['gaps']:6d} {s['lost']:8d} {us(r['p50_ns']):>9}/{us(r['p99_ns']):<9} "
      f"{us(p['p50_ns']):>9}/{us(p['p99_ns']):<9} {sub['messages']:9d} {sub['missed_samples']:7d}")
PY
done
echo "(latencies in us; packets = both lines; gaps = messages neither line brought)"
