#!/usr/bin/env bash
# Machine CPU per frame on the skb bed: a socket sender (trafgen, PF_PACKET
# with the qdisc bypassed; AF_XDP TX in copy mode is the same for the veth)
# pinned to CPU 0 sends FRAMES 64-byte frames as fast as it goes, and each
# receiver in turn captures them on side b. For every receiver: the frames
# it recorded, the sender's rate, and every CPU's busy time (user, nice,
# system, irq, softirq from /proc/stat, sender included) over the sender's
# run, per frame sent.
# "none" is the bed without a receiver (the stack drops the frames).
#
#   bench/skb-cpu.sh [ROUNDS] [FRAMES] [RECEIVERS]    as root, after cargo build --release
#
# RECEIVERS: comma-separated, of none, xsktap, xsktap-busy-poll,
# xsktap-lowprec, tcpdump (default: all). Extra xsktap flags for the
# "xsktap" receiver: XSKTAP_FLAGS="--coalesce-usecs 0". PERF_OUT=PREFIX
# records the machine (perf record -a -g) over each sender's run into
# PREFIX.NAME; perf's own cost then shows in the figures.
#
# The machine must be quiet. Everything runs on a test bed of its own
# (tools/testbed.sh), torn down on every path; every sender is bounded in
# frames and in time.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
frames=${2:-3000000}
receivers=${3:-none,xsktap,xsktap-busy-poll,xsktap-lowprec,tcpdump}
bed=xsc$$
shm=/dev/shm/$bed
tools/testbed.sh setup "$bed" --queues 1 >/dev/null
mkdir -p "$shm"
trap 'tools/testbed.sh teardown "$bed" >/dev/null 2>&1; rm -rf "$shm"' EXIT
a=$bed-a
b=$bed-b
# shellcheck source=bench/trafgen.sh
. bench/trafgen.sh
trafgen_config "$a" "$b" >"$shm/trafgen.cfg"

busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

# Starts receiver NAME in namespace b; waits until it is ready.
start() { # NAME
    local log=$shm/rx.log
    : >"$log"
    rm -f "$shm/rx.pcap" "$shm/rx.json"
    case $1 in
    none) return ;;
    xsktap) set -- target/release/xsktap capture -i "$b" --cores 1 -q ${XSKTAP_FLAGS:-} ;;
    xsktap-busy-poll) set -- target/release/xsktap capture -i "$b" --cores 1 -q --busy-poll ;;
    xsktap-lowprec) set -- target/release/xsktap capture -i "$b" --cores 1 -q -j host_lowprec ;;
    tcpdump) set -- taskset -c 1 tcpdump -i "$b" -Q in -n -B 65536 ;;
    esac
    if [[ $1 == taskset ]]; then
        ip netns exec "$b" "$@" -w "$shm/rx.pcap" >"$log" 2>&1 &
    else
        ip netns exec "$b" taskset -c 1 "$@" -w "$shm/rx.pcap" --summary-json "$shm/rx.json" \
            >"$log" 2>&1 &
    fi
    rx=$!
    for _ in $(seq 100); do
        grep -q "capturing\|listening on" "$log" && return
        sleep 0.1
    done
    echo "skb-cpu: $1 did not start: $(cat "$log")" >&2
    exit 1
}

# Stops the receiver and waits for it to exit (in this shell: only the
# shell that started it can wait for it).
stop() { # NAME
    [[ $1 == none ]] && return
    kill -INT "$rx"
    wait "$rx" 2>/dev/null || true
}

# Prints the frames the stopped receiver recorded.
recorded() { # NAME
    [[ $1 == none ]] && { echo 0; return; }
    if [[ $1 == tcpdump ]]; then
        grep -o '^[0-9]* packets captured' "$shm/rx.log" | cut -d' ' -f1
    elif [[ ! -s $shm/rx.json ]]; then
        echo "skb-cpu: $1 wrote no summary: $(cat "$shm/rx.log")" >&2
        echo 0
    else
        python3 - "$shm/rx.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
q = s["queues"][0]
print(s["packets"], f"(naps {q['naps']}, waits {q['waits']}, kicks {q['kicks']}, empty polls {q['empty_polls']})")
PY
    fi
}

hz=$(getconf CLK_TCK)
secs=$((frames / 200000 + 5))
for round in $(seq "$rounds"); do
    echo "== round $round: $frames frames of 64 bytes, trafgen on CPU 0, receivers on CPU 1"
    for name in ${receivers//,/ }; do
        start "$name"
        sleep 0.5
        if [[ -n ${PERF_OUT:-} ]]; then
            perf record -q -a -g -o "$PERF_OUT.$name" 2>/dev/null &
            perf=$!
            sleep 0.5
        fi
        before=$(busy)
        out=$(ip netns exec "$a" timeout -s INT "$secs" taskset -c 0 trafgen -o "$a" \
            -i "$shm/trafgen.cfg" -n "$frames" -P 1 -Q 2>&1 || true)
        after=$(busy)
        if [[ -n ${PERF_OUT:-} ]]; then
            kill -INT "$perf"
            wait "$perf" || true
        fi
        # Let the receivers hand over what they hold (tcpdump's 1 s block
        # timeout), outside the window: an idle receiver's CPU is not the
        # frames' cost.
        sleep 1.5
        stop "$name"
        got=$(recorded "$name")
        NAME=$name OUT=$out GOT=$got BUSY=$((after - before)) HZ=$hz python3 - <<'PY'
import os, re
out = os.environ["OUT"]
m = re.search(r"(\d+) packets outgoing", out)
t = re.search(r"(\d+) sec, (\d+) usec", out)
sent = int(m.group(1)) if m else 0
secs = int(t.group(1)) + int(t.group(2)) / 1e6 if t else 0
busy = int(os.environ["BUSY"]) / int(os.environ["HZ"])
got, _, how = os.environ["GOT"].partition(" ")
got = int(got or 0)
name = os.environ["NAME"]
rate = sent / secs / 1e6 if secs else 0
per = busy * 1e9 / sent if sent else 0
rec = f"{got:>9} recorded" if name != "none" else " " * 18
print(f"{name:18} sent {sent:>9} at {rate:5.3f} Mpps  {rec}  machine CPU {per:6.0f} ns/frame {how}".rstrip())
PY
    done
done
