#!/usr/bin/env python3
"""Builds tcpdump-tests-ethernet.pcap from a checkout of tcpdump's sources.

Usage: make-tcpdump-corpus.py TCPDUMP_CHECKOUT > tcpdump-tests-ethernet.pcap

Takes every classic pcap file of tcpdump's test suite (tests/*.pcap) whose
link type is Ethernet, in name order, and keeps each record that holds its
whole frame (captured length = original length: a frame cut by a snapshot
length is not what a live capture sees), 14 to 9000 bytes long. The records
are written to one microsecond pcap, stamped one microsecond apart.
"""
import pathlib
import struct
import sys

MAGICS = {0xA1B2C3D4: "<", 0xA1B23C4D: "<", 0xD4C3B2A1: ">", 0x4D3CB2A1: ">"}


def frames(path):
    data = path.read_bytes()
    if len(data) < 24:
        return
    order = MAGICS.get(struct.unpack("<I", data[:4])[0])
    if order is None or struct.unpack(order + "I", data[20:24])[0] != 1:
        return
    at = 24
    while at + 16 <= len(data):
        _, _, incl, orig = struct.unpack(order + "IIII", data[at : at + 16])
        frame = data[at + 16 : at + 16 + incl]
        at += 16 + incl
        if len(frame) < incl:
            return
        if incl == orig and 14 <= incl <= 9000:
            yield frame


def main():
    tests = pathlib.Path(sys.argv[1]) / "tests"
    out = sys.stdout.buffer
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    n = 0
    for path in sorted(tests.glob("*.pcap")):
        for frame in frames(path):
            sec, usec = divmod(n, 1_000_000)
            out.write(struct.pack("<IIII", 1_700_000_000 + sec, usec, len(frame), len(frame)))
            out.write(frame)
            n += 1
    print(f"{n} frames", file=sys.stderr)


if __name__ == "__main__":
    main()
