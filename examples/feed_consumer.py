#!/usr/bin/env python3
"""Subscribes to a feed `xsktap feed --publish` publishes, counts its messages
by ITCH message type (the first byte), follows the notices, and prints one
JSON summary line when the session ends (or on Ctrl-C, or after --seconds).

    pip install iceoryx2==0.10.0
    sudo xsktap feed -i eth1 --ab itch=233.54.12.1:26400,233.54.13.1:26400 --publish
    sudo python3 examples/feed_consumer.py itch

The sample layout is xsktap-consumer's FeedHeader (consumer/src/lib.rs): the
same fields in the same order, and the same type name, or iceoryx2 refuses
to connect the two. A message sample carries messages seq..to as MoldUDP64
message blocks.
"""

import argparse
import ctypes
import json
import sys
import time

import iceoryx2 as iox2

KINDS = ["message", "gap", "recovered", "session_start", "session_end",
         "line_silent", "line_back"]
LOSSY_BUFFER = 4096


class FeedHeader(ctypes.Structure):
    """xsktap's sample header (64 bytes, C layout)."""

    _fields_ = [
        ("publish_seq", ctypes.c_uint64),
        ("seq", ctypes.c_uint64),
        ("to", ctypes.c_uint64),
        ("rx_ns", ctypes.c_uint64),
        ("publish_ns", ctypes.c_uint64),
        ("open_ns", ctypes.c_uint64),
        ("session", ctypes.c_uint8 * 10),
        ("kind", ctypes.c_uint8),
        ("line", ctypes.c_uint8),
        ("reserved", ctypes.c_uint8 * 4),
    ]

    @staticmethod
    def type_name() -> str:
        return "XsktapFeedHeader"


def quantiles(values):
    if not values:
        return {"count": 0, "p50_ns": 0, "p99_ns": 0, "max_ns": 0}
    values.sort()
    at = lambda p: values[min(len(values) - 1, int(p * len(values)))]
    return {"count": len(values), "p50_ns": at(0.5), "p99_ns": at(0.99),
            "max_ns": values[-1]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("feed", help="the feed's name: GROUP:PORT or the --ab name")
    ap.add_argument("--reliable", action="store_true",
                    help="the largest buffer the tap offers instead of a lossy one")
    ap.add_argument("--seconds", type=float, help="stop after this long")
    ap.add_argument("--quiet", action="store_true", help="no notice lines")
    o = ap.parse_args()

    iox2.set_log_level_from_env_or(iox2.LogLevel.Error)
    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
    name = "xsktap/feed/" + o.feed
    try:
        service = (node.service_builder(iox2.ServiceName.new(name))
                   .publish_subscribe(iox2.Slice[ctypes.c_uint8])
                   .user_header(FeedHeader)
                   .open())
    except Exception as e:  # iceoryx2 names the cause
        print(f"feed_consumer: {name}: cannot open ({e}); is `xsktap feed --publish` "
              "running with that feed?", file=sys.stderr)
        return 1
    most = service.static_config.subscriber_max_buffer_size
    buffer = most if o.reliable else min(LOSSY_BUFFER, most)
    subscriber = service.subscriber_builder().buffer_size(buffer).create()
    print(f"feed_consumer: subscribed to {name} (buffer {buffer} samples)",
          file=sys.stderr, flush=True)

    by_type, gaps = {}, []
    samples = messages = late = unannounced = recovered = missed = markers = 0
    rx_to_here, publish_to_here = [], []
    expected = None      # the next message, from the stream and its gap notices
    last = None          # (publisher, next publish_seq)
    ended = False
    started = time.monotonic()
    try:
        while not ended:
            sample = subscriber.receive()
            if sample is None:
                if o.seconds and time.monotonic() - started >= o.seconds:
                    break
                time.sleep(0.0001)
                continue
            now = time.time_ns()
            h = FeedHeader.from_buffer_copy(sample.user_header().contents)
            origin = str(sample.header.publisher_id)
            if last and last[0] == origin and h.publish_seq > last[1]:
                missed += h.publish_seq - last[1]
                markers += 1
                expected = None  # the messages lost with them are no jump of the stream's
                if not o.quiet:
                    print(f"feed_consumer: missed {h.publish_seq - last[1]} samples here",
                          file=sys.stderr)
            last = (origin, h.publish_seq + 1)
            samples += 1
            kind = KINDS[h.kind] if h.kind < len(KINDS) else str(h.kind)
            if kind == "message":
                # Messages seq..to as MoldUDP64 blocks: u16 big-endian length, then the message.
                blocks = bytes(sample.payload().as_memory_view())
                at, seq = 0, h.seq
                while at + 2 <= len(blocks):
                    size = int.from_bytes(blocks[at:at + 2], "big")
                    message = blocks[at + 2:at + 2 + size]
                    at += 2 + size
                    messages += 1
                    first = chr(message[0]) if message else "?"
                    by_type[first] = by_type.get(first, 0) + 1
                    if expected is not None and seq < expected:
                        late += 1
                    elif expected is not None and seq > expected:
                        unannounced += 1
                    expected = seq + 1 if expected is None else max(expected, seq + 1)
                    seq += 1
                count = h.to - h.seq + 1
                rx_to_here.extend([now - h.rx_ns] * count)
                publish_to_here.extend([now - h.publish_ns] * count)
            elif kind == "gap":
                gaps.append([h.seq, h.to])
                expected = h.to + 1 if expected is None else max(expected, h.to + 1)
                if not o.quiet:
                    print(f"feed_consumer: gap {h.seq} to {h.to}", file=sys.stderr)
            elif kind == "recovered":
                recovered += h.to - h.seq + 1
            elif kind == "session_start":
                expected = h.seq
            elif kind == "session_end":
                ended = True
            elif not o.quiet:
                print(f"feed_consumer: notice {kind} on line {h.line}", file=sys.stderr)
            # Give the sample back to the tap's data segment at once.
            sample.delete()
    except KeyboardInterrupt:
        pass
    print(json.dumps({
        "feed": o.feed, "buffer": buffer, "samples": samples, "messages": messages,
        "by_type": dict(sorted(by_type.items())), "gaps": gaps,
        "recovered": recovered, "late": late, "unannounced_jumps": unannounced,
        "missed_samples": missed, "missed_markers": markers, "session_end": ended,
        "rx_to_consumer": quantiles(rx_to_here),
        "publish_to_consumer": quantiles(publish_to_here),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
