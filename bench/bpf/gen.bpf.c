// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * xsktap-bench's generator: run with BPF_PROG_RUN and
 * BPF_F_TEST_XDP_LIVE_FRAMES, it stamps each frame (stream, sequence number,
 * transmit time), spreads frames over `flows` UDP source ports, and sends it
 * out of the context's ingress interface with XDP_TX.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "xsktap.h"

/* Set before load. */
const volatile __u32 payload_offset = 42; /* 42 for IPv4/UDP, 62 for IPv6/UDP */
const volatile __u32 udp_offset = 34;
const volatile __u32 flows = 1;
const volatile __u16 base_port = 10000;
const volatile __u32 ipv6 = 0;
/*
 * IPv6 only: the ones'-complement sum (native 16-bit words, folded) of every
 * part of the UDP checksum that never changes: pseudo-header, UDP header with
 * source port and checksum zero, payload with the stamp zeroed. Live frames
 * keep the previous run's bytes, so the checksum is rebuilt from this each time.
 */
const volatile __u32 csum_base = 0;

/* Nanoseconds between frames of one CPU; 0 sends as fast as possible. */
const volatile __u64 interval_ns = 0;

/* Per-CPU state: each CPU is one stream. */
struct stream_state {
	__u64 due_ns; /* when the next frame may leave */
	__u32 seq;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stream_state);
} streams SEC(".maps");

/* bpf_loop callback: stop once the clock reaches *due. */
static long wait_until(__u32 index, void *due)
{
	return bpf_ktime_get_ns() >= *(__u64 *)due;
}

/*
 * Paces frames one by one in the kernel: each BPF_PROG_RUN call costs the
 * kernel tens of milliseconds of setup (XDP dispatcher updates), so pacing
 * by calls would send bursts. A CPU more than 1 ms behind (the gap between
 * two calls) starts afresh instead of bursting to catch up.
 */
static __always_inline void pace(struct stream_state *st)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 due = st->due_ns;

	if (due == 0 || now > due + 1000000)
		due = now;
	if (now < due)
		bpf_loop(1 << 22, wait_until, &due, 0);
	st->due_ns = due + interval_ns;
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

SEC("xdp")
int xsktap_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct xsktap_gen_stamp *stamp;
	__u8 *udp;
	__u32 zero = 0, off = payload_offset, uoff = udp_offset;
	struct stream_state *st;
	__u32 s;
	__u16 port;

	if (off > 128 || uoff > 128)
		return XDP_ABORTED;
	stamp = data + off;
	udp = data + uoff;
	if ((void *)(stamp + 1) > data_end || (void *)(udp + 8) > data_end)
		return XDP_ABORTED;
	st = bpf_map_lookup_elem(&streams, &zero);
	if (!st)
		return XDP_ABORTED;
	if (interval_ns)
		pace(st);
	s = st->seq++;

	stamp->magic = XSKTAP_GEN_MAGIC;
	stamp->stream = bpf_get_smp_processor_id();
	stamp->seq = s;
	stamp->ts_ns = bpf_ktime_get_ns();
	port = base_port + (__u16)(s % (flows ? flows : 1));
	udp[0] = port >> 8;
	udp[1] = port & 0xff;
	if (ipv6) {
		/* Little-endian hosts: native 16-bit words are byte-swapped, which
		 * ones'-complement sums tolerate (RFC 1071, 2.(B)). */
		__u32 sum = bpf_csum_diff(0, 0, (__be32 *)stamp, sizeof(*stamp), csum_base);
		__u16 c;

		sum += (__u32)udp[0] | ((__u32)udp[1] << 8);
		c = csum_fold(sum);
		if (c == 0)
			c = 0xffff;
		udp[6] = c & 0xff;
		udp[7] = c >> 8;
	}
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
