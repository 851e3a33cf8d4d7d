/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one definition of every layout shared between the XDP program and
 * the Rust engine. The Rust side uses the types libbpf-cargo generates
 * from this header through the skeleton; nothing here is mirrored by hand.
 */
#ifndef XSKTAP_H
#define XSKTAP_H

/*
 * Every constant the two sides share is an enum, so that it is part of the
 * object's BTF (see `xsktap_constants` below) and reaches Rust through the
 * skeleton; the sys crate asserts at compile time that xsktap-core's copies
 * equal these.
 */
enum xsktap_limits {
	/* Highest RX queue index + 1 that the program can redirect. */
	XSKTAP_MAX_QUEUES = 256,
	/* Length of the filter program (the filter map's size). */
	XSKTAP_FILTER_MAX_INSNS = 64,
};

/* Jump targets at or beyond the program's length end it. */
enum xsktap_filter_target {
	XSKTAP_FILTER_ACCEPT = XSKTAP_FILTER_MAX_INSNS,
	XSKTAP_FILTER_REJECT = XSKTAP_FILTER_MAX_INSNS + 1,
};

/* The VLAN id of a test that matches a frame with any VLAN tag. */
enum xsktap_vlan {
	XSKTAP_VLAN_ANY = 0xffff,
};

/* Per-CPU, per-queue counters kept by the XDP program. */
struct xsktap_counters {
	__u64 seen;            /* every frame the program ran on */
	__u64 redirected;      /* handed to an AF_XDP socket */
	__u64 passed;          /* queue not captured: left to the host stack */
	__u64 redirect_failed; /* queue captured but no socket in the XSKMAP */
	__u64 filtered_out;    /* captured queue, filter did not match: passed */
	__u64 hw_stamp_missing; /* hardware stamps asked for, the driver gave none: software stamp */
	__u64 limited;         /* dropped by the rate limit (--limit-pps) */
};

/* Per-queue settings written by userspace before the program is attached. */
struct xsktap_queue_conf {
	__u32 capture; /* non-zero: redirect this queue into its socket */
	__u32 feeds_only; /* non-zero: only frames to a feed (the feeds map) */
};

/*
 * A market-data feed line: UDP to this address and port (`xsktap feed`).
 * The feeds map holds one per line, so a thousand groups cost one hash
 * lookup per frame.
 */
struct xsktap_feed_key {
	__u64 addr[2]; /* destination address in network order, IPv4 in the first 4 bytes */
	__u16 port;    /* destination port, host order */
	__u8 family;   /* 4 or 6 */
	__u8 pad[5];
};

enum xsktap_feed_limits {
	XSKTAP_MAX_FEED_LINES = 4096,
};

/*
 * One test of the filter program. The program is a list of tests with
 * forward jumps only (jt/jf greater than the test's own index), so it always
 * ends; an all-zero first entry (XSKTAP_OP_ACCEPT) accepts every frame.
 */
enum xsktap_filter_op {
	XSKTAP_OP_ACCEPT = 0,    /* always true */
	XSKTAP_OP_ETHERTYPE = 1, /* ethertype after VLAN tags == lo */
	XSKTAP_OP_IP_PROTO = 2,  /* upper-layer protocol == lo; family 4, 6 or 0 (either) */
	XSKTAP_OP_SRC_NET = 3,   /* (source & mask) == addr, for the given family (ARP: sender) */
	XSKTAP_OP_DST_NET = 4,   /* (destination & mask) == addr (ARP: target) */
	XSKTAP_OP_SRC_PORT = 5,  /* lo <= source port <= hi (TCP, UDP, SCTP; not later fragments) */
	XSKTAP_OP_DST_PORT = 6,  /* lo <= destination port <= hi */
	XSKTAP_OP_VLAN = 7,      /* some VLAN tag has id lo; XSKTAP_VLAN_ANY: any tag */
};

struct xsktap_filter_insn {
	enum xsktap_filter_op op;
	__u32 family; /* 4 or 6 for net and protocol tests, 0 for either */
	__u16 lo;
	__u16 hi;
	__u16 jt; /* next test when true */
	__u16 jf; /* next test when false */
	__u64 addr[2]; /* address bytes in network order, already masked */
	__u64 mask[2];
};

/*
 * What xsktap-bench's generator writes at the start of each UDP payload, in
 * host byte order (generator and receiver share the machine's clock).
 * Workers recognise it by `magic` and measure one-way latency and sequence
 * gaps from it.
 */
enum xsktap_gen {
	XSKTAP_GEN_MAGIC = 0x5458, /* "XT" read as a little-endian u16 */
	/* Fits the 18-byte payload of a minimum (60-byte) IPv4/UDP frame. */
	XSKTAP_GEN_STAMP_LEN = 16,
};

struct xsktap_gen_stamp {
	__u16 magic;  /* XSKTAP_GEN_MAGIC */
	__u16 stream; /* the generating CPU: each stream's sequence is dense */
	__u32 seq;    /* 0, 1, 2, ... per stream, wrapping */
	__u64 ts_ns;  /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) at transmit */
};

/*
 * The receive timestamp the program writes in front of every frame it
 * redirects. Where the kernel lets XDP programs have metadata
 * (bpf_xdp_adjust_meta) it goes there: userspace finds it in the UMEM just
 * before the frame's first byte, and clears the magic after reading. Where
 * the kernel refuses metadata, the program prepends the same 16 bytes to the
 * frame itself (bpf_xdp_adjust_head, only once the frame is redirected, so
 * the host stack never sees them), flagged XSKTAP_META_HEADROOM, and the
 * worker strips them before anything else reads the frame.
 */
enum xsktap_meta_consts {
	XSKTAP_META_MAGIC = 0x58534b54, /* "TKSX" read as a little-endian u32 */
	XSKTAP_META_LEN = 16,
};

enum xsktap_meta_flags {
	/* rx_ns is the NIC's receive timestamp, moved to CLOCK_MONOTONIC */
	XSKTAP_META_HARDWARE = 1,
	/* the 16 bytes are the frame's first: carried in headroom, stripped */
	XSKTAP_META_HEADROOM = 2,
};

/* Where the program carries the stamp (its read-only stamp_carry). */
enum xsktap_stamp_carry {
	XSKTAP_CARRY_METADATA = 0,
	XSKTAP_CARRY_HEADROOM = 1,
};

struct xsktap_meta {
	__u64 rx_ns; /* CLOCK_MONOTONIC: when the program ran, or the NIC's stamp */
	__u32 flags; /* enum xsktap_meta_flags; 0: software timestamp */
	__u32 magic; /* XSKTAP_META_MAGIC, last: adjacent to the frame */
};

/*
 * How the NIC's clock (its PTP hardware clock) relates to CLOCK_MONOTONIC,
 * measured by userspace about once a second (one entry). The hardware
 * variant of the program moves each hardware stamp to CLOCK_MONOTONIC with
 * it, so userspace handles one clock whichever took the stamp.
 */
struct xsktap_hw_clock {
	__s64 phc_minus_mono; /* PHC time - CLOCK_MONOTONIC, in ns */
	__u32 valid;          /* 0 until the first measurement */
	__u32 pad;
};

/*
 * The rate limit (--limit-pps): one bucket per key, kept in an LRU hash.
 * The limit's parameters are read-only globals of the program, set before
 * it loads; with none, the verifier removes the limiter altogether.
 */
enum xsktap_limit_by {
	XSKTAP_LIMIT_OFF = 0,
	XSKTAP_LIMIT_SRC = 1,  /* source address */
	XSKTAP_LIMIT_DST = 2,  /* destination address */
	XSKTAP_LIMIT_FLOW = 3, /* addresses, protocol and ports */
};

enum xsktap_limit_limits {
	/* Keys the LRU hash holds; the least recently seen goes first. */
	XSKTAP_LIMIT_KEYS = 65536,
};

/* Fields `by` does not use are zero; frames without an address are not limited. */
struct xsktap_limit_key {
	__u64 src[2]; /* network order, IPv4 in the first 4 bytes */
	__u64 dst[2];
	__u16 sport;  /* host order */
	__u16 dport;
	__u8 proto;
	__u8 family;  /* 4 or 6 */
	__u8 pad[2];
};

/*
 * A GCRA bucket (see core/src/limit.rs): the time the key's next frame is
 * due at its rate. Shared by every CPU, updated by compare-and-swap.
 */
struct xsktap_limit_state {
	__u64 tat;     /* CLOCK_MONOTONIC ns */
	__u64 dropped; /* frames of this key dropped since it entered the map */
};

/*
 * Never read: one field of each constant enum, so that the enums are part of
 * the object's BTF and of the skeleton (an object that only uses an enum's
 * values would not describe the enum).
 */
struct xsktap_constants {
	enum xsktap_limits limits;
	enum xsktap_filter_target target;
	enum xsktap_vlan vlan;
	enum xsktap_gen gen;
	struct xsktap_gen_stamp stamp;
	enum xsktap_meta_consts meta_consts;
	struct xsktap_meta meta;
	enum xsktap_meta_flags meta_flags;
	enum xsktap_stamp_carry carry;
	struct xsktap_hw_clock hw_clock;
	struct xsktap_feed_key feed_key;
	enum xsktap_feed_limits feed_limits;
	enum xsktap_limit_by limit_by;
	enum xsktap_limit_limits limit_limits;
	struct xsktap_limit_key limit_key;
	struct xsktap_limit_state limit_state;
};

#endif
