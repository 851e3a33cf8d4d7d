#!/usr/bin/env bash
# Does serving the dashboard slow the capture? Runs `xsktap capture -w` on a test
# bed of its own, unpaced generator on CPU 0, worker on CPU 1, alternately plain
# and with --serve while headless Chromium shows the page and /metrics is scraped
# every 100 ms (browser and scraper on CPU 0, the server on the CPU no worker uses).
# Prints offered rate, frames sent, received and lost per run. Needs root, a
# release build and chromium. Bounded: 8 M frames or 5 s per run.
set -euo pipefail
cd "$(dirname "$0")/.."
name=si$$
work=$(mktemp -d)
tools/testbed.sh setup "$name" >/dev/null
cleanup() {
    pkill -f "user-data-dir=$work/profile" || true
    tools/testbed.sh teardown "$name" >/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
for mode in plain serve plain serve; do
    extra=()
    [[ $mode == serve ]] && extra=(--serve 9100)
    tools/testbed.sh exec "$name" b target/release/xsktap capture -i "$name-b" --cores 1 -q \
        -w "$work/x.pcap" --summary-json "$work/s.json" --duration 9 "${extra[@]}" 2>/dev/null &
    capture=$!
    sleep 1.5
    if [[ $mode == serve ]]; then
        ip netns exec "$name-b" taskset -c 0 chromium --headless=new --no-sandbox --disable-gpu \
            --user-data-dir="$work/profile" http://127.0.0.1:9100/ >/dev/null 2>&1 &
        (for _ in $(seq 1 80); do
            ip netns exec "$name-b" taskset -c 0 curl -s -m 1 127.0.0.1:9100/metrics >/dev/null || true
            sleep 0.1
        done) &
        sleep 2
    fi
    gen=$(tools/testbed.sh exec "$name" a taskset -c 0 target/release/xsktap-bench gen \
        -i "$name-a" -c 8000000 --cpus 0 --max-secs 5 2>&1 | tail -1)
    wait "$capture"
    pkill -f "user-data-dir=$work/profile" || true
    wait || true
    python3 - "$mode" "$gen" "$work/s.json" <<'PY'
import json, sys
mode, gen, path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
s = json.load(open(path))
q = s["queues"][0]
print(f"{mode:6} offered {gen['rate']/1e6:.2f} Mpps  sent {gen['sent']}  received {s['received']}  "
      f"lost {s['lost']} (rx_ring_full {q['rx_ring_full']}, rx_dropped {q['rx_dropped']})")
PY
done
