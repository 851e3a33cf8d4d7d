#!/usr/bin/env bash
# A long run (issue 11): steady traffic for MINUTES minutes at RATE frames/s into a capture that
# rotates (-C 100m -W 5 on tmpfs) and serves the dashboard, on a test bed of its own. Samples the
# capture's RSS every 10 s and checks at the end that no frame was lost and that the packets of all
# files (those on disk and those the ring overwrote) add up to what the generator sent.
#
#   bench/soak.sh [MINUTES] [RATE] [OUT_DIR]     (defaults: 10, 1000000, bench/runs/DATE-soak)
#
# Writes OUT_DIR/rss.csv (seconds, RSS KiB), OUT_DIR/rss.svg, OUT_DIR/summary.json and
# OUT_DIR/RESULTS.md. Needs root and a release build (cargo build --release).
# Safety: traffic stays in the two namespaces of the test bed this script creates and removes.
set -euo pipefail
minutes=${1:-10}
rate=${2:-1000000}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${3:-$root/bench/runs/$(date +%F)-soak}
xsktap=$root/target/release/xsktap
bench=$root/target/release/xsktap-bench
name="soak$$"
name=${name:0:12}
files=$(mktemp -d /dev/shm/xsktap-soak.XXXXXX)
mkdir -p "$out"
pid=
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
    "$root/tools/testbed.sh" teardown "$name" >/dev/null 2>&1 || true
    rm -rf "$files"
}
trap cleanup EXIT
"$root/tools/testbed.sh" setup "$name" --queues 1 >/dev/null
seconds=$((minutes * 60))
count=$((rate * seconds))
ip netns exec "$name-b" "$xsktap" capture -i "$name-b" -w "$files/soak.pcap" -C 100m -W 5 \
    --serve 127.0.0.1:0 -q --summary-json "$out/summary.json" 2>"$out/xsktap.log" &
pid=$!
for _ in $(seq 100); do grep -q "capturing" "$out/xsktap.log" && break; sleep 0.1; done
# The generator runs on CPU 0; the worker is placed by xsktap.
ip netns exec "$name-a" "$bench" gen -i "$name-a" -c "$count" --rate "$rate" --flows 64 \
    --max-secs $((seconds + 60)) >"$out/generator.json" &
gen=$!
echo "seconds,rss_kib" >"$out/rss.csv"
start=$(date +%s)
while kill -0 "$gen" 2>/dev/null; do
    now=$(($(date +%s) - start))
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
    echo "$now,$rss" >>"$out/rss.csv"
    sleep 10
done
wait "$gen"
sleep 1
kill -INT "$pid"
wait "$pid" || true
pid=
python3 - "$out" <<'PY'
import csv, json, sys
out = sys.argv[1]
rows = [(int(r["seconds"]), int(r["rss_kib"])) for r in csv.DictReader(open(f"{out}/rss.csv"))]
s = json.load(open(f"{out}/summary.json"))
g = json.load(open(f"{out}/generator.json"))
files = s["files"]
in_files = sum(f["packets"] for f in files["files"]) + files["removed_packets"]
after_first_minute = [kib for t, kib in rows if t >= 60]
growth = (max(after_first_minute) - min(after_first_minute)) if after_first_minute else 0
w, h, pad = 640, 240, 40
tmax = max(t for t, _ in rows) or 1
kmax = max(k for _, k in rows) * 1.1
pts = " ".join(f"{pad + t / tmax * (w - 2 * pad):.1f},{h - pad - k / kmax * (h - 2 * pad):.1f}" for t, k in rows)
svg = f'''<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">
<text x="{pad}" y="20">xsktap RSS during the soak (KiB), every 10 s; max {max(k for _, k in rows)} KiB</text>
<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>
<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>
<text x="{w - pad}" y="{h - pad + 15}" text-anchor="end">{tmax} s</text>
<text x="{pad - 4}" y="{pad}" text-anchor="end">{kmax:.0f}</text>
<polyline fill="none" stroke="steelblue" stroke-width="2" points="{pts}"/>
</svg>'''
open(f"{out}/rss.svg", "w").write(svg)
ok = s["lost"] == 0 and in_files == s["packets"] == g["sent"] and growth < 1024
text = f"""# Soak: {tmax} s at {g['rate']:.0f} frames/s, -C 100m -W 5 on tmpfs, --serve

| | |
|---|---|
| frames sent (generator) | {g['sent']} |
| packets in the summary | {s['packets']} |
| packets in the files (on disk + overwritten) | {in_files} |
| lost | {s['lost']} |
| files on disk / overwritten | {len(files['files'])} / {files['removed_files']} |
| RSS after the first minute: min / max (KiB) | {min(after_first_minute) if after_first_minute else '-'} / {max(after_first_minute) if after_first_minute else '-'} |
| RSS growth after the first minute | {growth} KiB |
| verdict | {'PASS' if ok else 'FAIL'} (0 lost, files = summary = sent, growth < 1 MiB) |

![RSS](rss.svg)
"""
open(f"{out}/RESULTS.md", "w").write(text)
print(text)
sys.exit(0 if ok else 1)
PY
