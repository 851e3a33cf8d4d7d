#!/usr/bin/env bash
# Reading files back (-r): frames read, parsed, filtered and counted per second
# on one core, from tmpfs. Not a test: prints one line per case.
#
#   bench/read-bench.sh [FRAMES]     (default 5000000 64-byte frames, 4096 flows)
#
# The input is a pcap of 64-byte IPv4/UDP frames written to /dev/shm; each
# case runs three times pinned to CPU 1 and the median is printed.
set -euo pipefail
frames=${1:-5000000}
root=$(cd "$(dirname "$0")/.." && pwd)
xsktap=${XSKTAP:-$root/target/release/xsktap}
dir=$(mktemp -d /dev/shm/xsktap-read.XXXXXX)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir/in.pcap" "$frames" <<'PY'
import struct, sys
path, n = sys.argv[1], int(sys.argv[2])
def frame(i):
    sport = 1024 + i % 4096
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 50, 0, 0x4000, 64, 17, 0,
                     bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2]))
    udp = struct.pack("!HHHH", sport, 53, 30, 0) + bytes(22)
    return bytes.fromhex("0200c6120002" "0200c6120001" "0800") + ip + udp
recs = []
for i in range(4096):
    f = frame(i)
    recs.append(struct.pack("<IIII", 1700000000 + i // 1000000, (i % 1000000) * 1000, len(f), len(f)) + f)
block = b"".join(recs)
with open(path, "wb") as out:
    out.write(struct.pack("<IHHiIII", 0xa1b23c4d, 2, 4, 0, 0, 262144, 1))
    full, rest = divmod(n, 4096)
    for _ in range(full):
        out.write(block)
    out.write(b"".join(recs[:rest]))
PY
run() {
    local label=$1; shift
    local times=()
    for _ in 1 2 3; do
        local t0 t1
        t0=$(date +%s.%N)
        taskset -c 1 "$xsktap" capture -r "$dir/in.pcap" "$@" 2>/dev/null
        t1=$(date +%s.%N)
        times+=("$(echo "$t1 - $t0" | bc -l)")
    done
    local med
    med=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
    printf '%-34s %6.2f Mframes/s (median of 3: %.3f s for %d frames)\n' \
        "$label" "$(echo "$frames / $med / 1000000" | bc -l)" "$med" "$frames"
}
run "count only"
run "filter 'udp port 53'" udp port 53
run "filter, -w tmpfs pcap" -w "$dir/out.pcap" udp port 53
