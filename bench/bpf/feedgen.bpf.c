// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * xsktap-bench's market-data generator: run with BPF_PROG_RUN and
 * BPF_F_TEST_XDP_LIVE_FRAMES on a MoldUDP64 template frame, it sends packet
 * after packet of one session on an A and a B line (two UDP ports), writing
 * each packet's sequence number, and injects loss, duplication and
 * reordering per line. Every choice is a hash of (packet, line, seed), so
 * the sender (bench/src/feedgen.rs) knows exactly what went out: the
 * ground truth, computed by the same function.
 *
 * Run i of the program is slot i: line = i % lines, then per line the
 * packet's slots (1, or 2 with duplication: the second sends a copy or
 * nothing).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Set before load. */
const volatile __u32 seq_offset = 52;     /* MoldUDP64 sequence: UDP payload + 10 */
const volatile __u32 port_offset = 36;    /* UDP destination port */
const volatile __u64 msgs = 1;            /* messages per packet */
const volatile __u64 packets = 0;         /* packets of the session */
const volatile __u32 lines = 1;           /* 1, or 2 for A and B */
const volatile __u32 slots = 1;           /* 2 with duplication */
const volatile __u16 port_a = 26400;
const volatile __u16 port_b = 26401;
const volatile __u64 seed = 0;
/* Chances out of 2^32. */
const volatile __u32 loss = 0;
const volatile __u32 dup = 0;
const volatile __u32 reorder = 0;
/* Nanoseconds between sent frames; 0 sends as fast as possible. */
const volatile __u64 interval_ns = 0;

/* Salts of the three choices; the sender uses the same. */
#define SALT_LOSS 1
#define SALT_DUP 2
#define SALT_REORDER 3

struct state {
	__u64 slot;   /* runs so far */
	__u64 due_ns; /* when the next frame may leave */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct state);
} gen_state SEC(".maps");

/* splitmix64's finaliser: a well-mixed 64-bit hash. */
static __always_inline __u64 mix(__u64 x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Whether the choice `salt` happens to packet p on line l, at `rate`/2^32. */
static __always_inline int chance(__u64 p, __u32 l, __u64 salt, __u32 rate)
{
	if (!rate)
		return 0;
	return (mix(seed ^ mix(p * 4 + l) ^ (salt << 56)) >> 32) < rate;
}

static long wait_until(__u32 index, void *due)
{
	return bpf_ktime_get_ns() >= *(__u64 *)due;
}

SEC("xdp")
int xsktap_feedgen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0, so = seq_offset, po = port_offset, l, slot;
	struct state *st;
	__u64 i, rest, p, pkt, seq;
	__u8 *s, *port;

	if (so > 256 || po > 256)
		return XDP_ABORTED;
	s = data + so;
	port = data + po;
	if ((void *)(s + 8) > data_end || (void *)(port + 2) > data_end)
		return XDP_ABORTED;
	st = bpf_map_lookup_elem(&gen_state, &zero);
	if (!st)
		return XDP_ABORTED;
	i = st->slot++;
	l = lines > 1 ? i % 2 : 0;
	rest = lines > 1 ? i / 2 : i;
	slot = slots > 1 ? rest % 2 : 0;
	p = slots > 1 ? rest / 2 : rest;

	/* Reordering swaps the packets of an aligned pair on one line. */
	pkt = p;
	if (chance(p & ~1ULL, l, SALT_REORDER, reorder))
		pkt = p ^ 1;
	if (pkt >= packets)
		return XDP_DROP;
	if (chance(pkt, l, SALT_LOSS, loss))
		return XDP_DROP;
	if (slot == 1 && !chance(pkt, l, SALT_DUP, dup))
		return XDP_DROP;

	if (interval_ns) {
		__u64 now = bpf_ktime_get_ns(), due = st->due_ns;

		if (due == 0 || now > due + 1000000)
			due = now;
		if (now < due)
			bpf_loop(1 << 22, wait_until, &due, 0);
		st->due_ns = due + interval_ns;
	}
	seq = 1 + pkt * msgs;
#pragma unroll
	for (int b = 0; b < 8; b++)
		s[b] = seq >> (56 - 8 * b);
	port[0] = (l ? port_b : port_a) >> 8;
	port[1] = (l ? port_b : port_a) & 0xff;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
