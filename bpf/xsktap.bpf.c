// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * xsktap's XDP program. For a frame on a captured RX queue:
 *   1. parse its headers into a key (every header bounds-checked first);
 *   2. run the filter program (forward jumps only, at most
 *      XSKTAP_FILTER_MAX_INSNS steps);
 *   3. with a rate limit (--limit-pps), drop a match above its key's rate;
 *   4. redirect a match into the queue's AF_XDP socket.
 * Everything else goes on to the host stack (XDP_PASS), counted.
 *
 * The parse follows the same rules as core/src/parse.rs, so that the
 * userspace evaluator of the same filter selects the same frames.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "xsktap.h"

#define MAX_VLANS 2
#define MAX_EXT_HEADERS 8

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XSKTAP_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XSKTAP_MAX_QUEUES);
	__type(key, __u32);
	__type(value, struct xsktap_queue_conf);
} queue_conf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XSKTAP_MAX_QUEUES);
	__type(key, __u32);
	__type(value, struct xsktap_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xsktap_hw_clock);
} hw_clock SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XSKTAP_MAX_FEED_LINES);
	__type(key, struct xsktap_feed_key);
	__type(value, __u32); /* the line's index, for userspace */
} feeds SEC(".maps");

/* One bucket per key; at most one entry when no limit is set (userspace). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XSKTAP_LIMIT_KEYS);
	__type(key, struct xsktap_limit_key);
	__type(value, struct xsktap_limit_state);
} limits SEC(".maps");

/*
 * The rate limit, set by userspace before the program loads (read-only to
 * the program, so with no limit the verifier prunes the limiter away).
 */
const volatile __u32 limit_by = XSKTAP_LIMIT_OFF; /* enum xsktap_limit_by */
const volatile __u32 limit_all = 0;     /* non-zero: every frame, captured or not */
const volatile __u64 limit_interval_ns = 0;  /* between two frames of one key at the rate */
const volatile __u64 limit_tolerance_ns = 0; /* the burst, as time */
/*
 * enum xsktap_stamp_carry. Read-only, so the verifier prunes the path not
 * taken: a kernel that refuses bpf_xdp_adjust_meta never sees the call.
 */
const volatile __u32 stamp_carry = XSKTAP_CARRY_METADATA;

/*
 * The driver's receive timestamp (kernel 6.3+, device-bound programs only).
 * Weak: the object still loads on a kernel without it, where only the
 * software variant is used.
 */
extern int bpf_xdp_metadata_rx_timestamp(const struct xdp_md *ctx, __u64 *timestamp) __ksym __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XSKTAP_FILTER_MAX_INSNS);
	__type(key, __u32);
	__type(value, struct xsktap_filter_insn);
} filter SEC(".maps");

/* What the filter tests, filled by parse(). */
struct key {
	__u64 src[2];
	__u64 dst[2];
	__u16 ethertype;
	__u16 vlan[MAX_VLANS];
	__u16 sport;
	__u16 dport;
	__u8 nvlan;
	__u8 family;    /* 4 (IPv4 or ARP), 6, or 0: no addresses */
	__u8 l4proto;
	__u8 has_l4proto;
	__u8 has_ports;
};

/*
 * Bounds: `data_end` is what the verifier learns packet ranges from, so every
 * read is checked against it; `end` (the IP datagram's end, before Ethernet
 * padding) is checked as well, for the same result as engine/src/parse.rs.
 */

/* Reads the L4 ports if `need` bytes of the header lie before `end`. */
static __always_inline void parse_ports(struct key *k, void *l4, void *data_end, void *end, __u32 need)
{
	__u8 *p = l4;

	if ((void *)(p + 4) > data_end)
		return;
	if ((void *)(p + need) > end || (void *)(p + need) > data_end)
		return;
	k->sport = ((__u16)p[0] << 8) | p[1];
	k->dport = ((__u16)p[2] << 8) | p[3];
	k->has_ports = 1;
}

static __always_inline void parse_l4(struct key *k, void *l4, void *data_end, void *end, __u8 proto,
				     int later_fragment)
{
	k->l4proto = proto;
	k->has_l4proto = 1;
	if (later_fragment)
		return;
	if (proto == IPPROTO_TCP)
		parse_ports(k, l4, data_end, end, 20);
	else if (proto == IPPROTO_UDP)
		parse_ports(k, l4, data_end, end, 8);
	else if (proto == IPPROTO_SCTP)
		parse_ports(k, l4, data_end, end, 12);
}

static __always_inline void parse_ipv4(struct key *k, void *ip, void *data_end)
{
	__u8 *h = ip;
	__u32 ihl, total;
	__u16 frag;
	void *end;

	if ((void *)(h + 20) > data_end)
		return;
	if ((h[0] >> 4) != 4)
		return;
	ihl = (h[0] & 0x0f) * 4;
	total = ((__u32)h[2] << 8) | h[3];
	if (ihl < 20)
		return;
	/* 0: a segmentation offload's datagram, running to the frame's end. */
	if (total == 0)
		end = data_end;
	else if (total < ihl)
		return;
	else
		end = (void *)(h + total);
	if ((void *)(h + ihl) > data_end)
		return;
	k->family = 4;
	__builtin_memcpy(&k->src[0], h + 12, 4);
	__builtin_memcpy(&k->dst[0], h + 16, 4);
	frag = ((__u16)h[6] << 8) | h[7];
	/* Ethernet padding after the datagram is not L4 data. */
	parse_l4(k, h + ihl, data_end, end, h[9], (frag & 0x1fff) != 0);
}

/*
 * ARP and RARP: IPv4 protocol addresses (type 0x0800, size 4) are read where
 * the declared hardware address size puts them, and only when all four
 * addresses fit in the frame (as core/src/parse.rs).
 */
static __always_inline void parse_arp(struct key *k, void *arp, void *data_end)
{
	__u8 *h = arp;
	__u8 *sender, *target;
	__u32 hw;

	if ((void *)(h + 8) > data_end)
		return;
	if (h[2] != 0x08 || h[3] != 0 || h[5] != 4)
		return;
	hw = h[4];
	sender = h + 8 + hw;
	target = sender + 4 + hw;
	if ((void *)(sender + 4) > data_end || (void *)(target + 4) > data_end)
		return;
	k->family = 4;
	__builtin_memcpy(&k->src[0], sender, 4);
	__builtin_memcpy(&k->dst[0], target, 4);
}

static __always_inline void parse_ipv6(struct key *k, void *ip, void *data_end)
{
	__u8 *h = ip;
	__u8 *cur;
	__u8 next;
	__u32 payload;
	void *end;
	int later = 0;
	int i;

	if ((void *)(h + 40) > data_end)
		return;
	if ((h[0] >> 4) != 6)
		return;
	k->family = 6;
	__builtin_memcpy(k->src, h + 8, 16);
	__builtin_memcpy(k->dst, h + 24, 16);
	payload = ((__u32)h[4] << 8) | h[5];
	next = h[6];
	cur = h + 40;
	end = (void *)(cur + payload);

#pragma unroll
	for (i = 0; i <= MAX_EXT_HEADERS; i++) {
		__u32 len;
		int ext = next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING ||
			  next == IPPROTO_DSTOPTS || next == IPPROTO_AH || next == IPPROTO_FRAGMENT;

		/* Up to eight are followed; a ninth is not. */
		if (ext && i == MAX_EXT_HEADERS)
			return;
		if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS) {
			if ((void *)(cur + 2) > data_end || (void *)(cur + 2) > end)
				return;
			len = ((__u32)cur[1] + 1) * 8;
			next = cur[0];
		} else if (next == IPPROTO_AH) {
			if ((void *)(cur + 2) > data_end || (void *)(cur + 2) > end)
				return;
			len = ((__u32)cur[1] + 2) * 4;
			next = cur[0];
		} else if (next == IPPROTO_FRAGMENT) {
			if ((void *)(cur + 8) > data_end || (void *)(cur + 8) > end)
				return;
			later = (((__u16)cur[2] << 8 | cur[3]) >> 3) != 0;
			next = cur[0];
			len = 8;
		} else {
			parse_l4(k, cur, data_end, end, next, later);
			return;
		}
		if ((void *)(cur + len) > data_end || (void *)(cur + len) > end)
			return;
		cur += len;
	}
}

static __always_inline void parse(struct key *k, void *data, void *data_end)
{
	__u8 *eth = data;
	__u8 *cur = eth + 14;
	__u16 type;
	int i;

	if ((void *)cur > data_end)
		return;
	type = ((__u16)eth[12] << 8) | eth[13];
#pragma unroll
	for (i = 0; i < MAX_VLANS; i++) {
		if (type != ETH_P_8021Q && type != ETH_P_8021AD)
			break;
		if ((void *)(cur + 4) > data_end)
			return;
		k->vlan[i] = (((__u16)cur[0] << 8) | cur[1]) & 0x0fff;
		k->nvlan = i + 1;
		type = ((__u16)cur[2] << 8) | cur[3];
		cur += 4;
	}
	k->ethertype = type;
	if (type == ETH_P_IP)
		parse_ipv4(k, cur, data_end);
	else if (type == ETH_P_IPV6)
		parse_ipv6(k, cur, data_end);
	else if (type == ETH_P_ARP || type == ETH_P_RARP)
		parse_arp(k, cur, data_end);
}

static __always_inline int net_match(const struct xsktap_filter_insn *in, const struct key *k, const __u64 *a)
{
	if (k->family == 0 || in->family != k->family)
		return 0;
	return (a[0] & in->mask[0]) == in->addr[0] && (a[1] & in->mask[1]) == in->addr[1];
}

static __always_inline int test(const struct xsktap_filter_insn *in, const struct key *k)
{
	switch (in->op) {
	case XSKTAP_OP_ACCEPT:
		return 1;
	case XSKTAP_OP_ETHERTYPE:
		return k->ethertype == in->lo;
	case XSKTAP_OP_IP_PROTO:
		return k->has_l4proto && k->l4proto == in->lo && (in->family == 0 || in->family == k->family);
	case XSKTAP_OP_SRC_NET:
		return net_match(in, k, k->src);
	case XSKTAP_OP_DST_NET:
		return net_match(in, k, k->dst);
	case XSKTAP_OP_SRC_PORT:
		return k->has_ports && k->sport >= in->lo && k->sport <= in->hi;
	case XSKTAP_OP_DST_PORT:
		return k->has_ports && k->dport >= in->lo && k->dport <= in->hi;
	case XSKTAP_OP_VLAN:
		if (in->lo == XSKTAP_VLAN_ANY)
			return k->nvlan > 0;
		return (k->nvlan > 0 && k->vlan[0] == in->lo) || (k->nvlan > 1 && k->vlan[1] == in->lo);
	}
	return 0;
}

/* Whether the frame parsed into `k` goes to one of the feeds: UDP, unfragmented or first fragment. */
static __always_inline int feed_match(const struct key *k)
{
	struct xsktap_feed_key fk = {};

	if (!k->has_ports || k->l4proto != IPPROTO_UDP)
		return 0;
	fk.addr[0] = k->dst[0];
	fk.addr[1] = k->dst[1];
	fk.port = k->dport;
	fk.family = k->family;
	return bpf_map_lookup_elem(&feeds, &fk) != 0;
}

/*
 * Runs the filter program; an all-zero program accepts everything, and is
 * recognised before the frame is parsed: no filter costs no parsing. With
 * `feeds_only` the frame must also go to a feed. Parses the frame into `k`
 * unless `*parsed` says it is already.
 */
static __always_inline int filter_match(struct key *k, int *parsed, void *data, void *data_end,
					int feeds_only)
{
	struct xsktap_filter_insn *first;
	__u32 pc = 0;
	int i;

	first = bpf_map_lookup_elem(&filter, &pc);
	if (!first)
		return 0;
	if (first->op == XSKTAP_OP_ACCEPT && !feeds_only)
		return 1;
	if (!*parsed) {
		parse(k, data, data_end);
		*parsed = 1;
	}
	if (feeds_only && !feed_match(k))
		return 0;
	if (first->op == XSKTAP_OP_ACCEPT)
		return 1;
	for (i = 0; i < XSKTAP_FILTER_MAX_INSNS; i++) {
		struct xsktap_filter_insn *in;
		__u32 index = pc;

		in = bpf_map_lookup_elem(&filter, &index);
		if (!in)
			return 0;
		pc = test(in, k) ? in->jt : in->jf;
		if (in->op == XSKTAP_OP_ACCEPT)
			return 1;
		if (pc == XSKTAP_FILTER_ACCEPT)
			return 1;
		if (pc >= XSKTAP_FILTER_MAX_INSNS)
			return 0;
	}
	return 0;
}

/*
 * The NIC's receive timestamp moved to CLOCK_MONOTONIC, or 0 when the driver
 * gave none (no hardware clock, stamping off, or the frame not stamped) or
 * the clock's offset is not measured yet.
 */
static __always_inline __u64 hardware_stamp(struct xdp_md *ctx)
{
	struct xsktap_hw_clock *clock;
	__u32 zero = 0;
	__u64 ts = 0;

	if (!bpf_xdp_metadata_rx_timestamp || bpf_xdp_metadata_rx_timestamp(ctx, &ts) != 0 || ts == 0)
		return 0;
	clock = bpf_map_lookup_elem(&hw_clock, &zero);
	if (!clock || !clock->valid)
		return 0;
	return ts - clock->phc_minus_mono;
}

/* What capture() writes in front of each frame it redirects. */
enum stamping {
	STAMP_NONE,     /* nothing: userspace stamps each batch (-j host_lowprec) */
	STAMP_SOFTWARE, /* bpf_ktime_get_ns() */
	STAMP_HARDWARE, /* the NIC's, software where it gave none */
};

/*
 * The most frames of one key a CPU takes from the shared bucket at once (see
 * limit_cache): a CPU that sees one key's frames in a row takes 1, 2, 3, ...
 * up to this many per visit to the bucket.
 */
#define LIMIT_GRAB_MAX 16

/* Slots of each CPU's cache of keys (a power of two). */
#define LIMIT_CACHE_SLOTS 64

/*
 * Per CPU, a small direct-mapped cache of keys: each slot holds the last key
 * that hashed there and the frames of it this CPU may still pass without
 * going to the shared bucket. A flood from a few sources or flows, the case
 * the limit exists for, then costs a multiply and a key compare per frame
 * instead of a hash lookup and an atomic on a cache line every CPU writes.
 * Tokens a slot holds when another key takes it go back to the bucket, so
 * keys that collide are admitted exactly as without the cache.
 */
struct limit_cache {
	struct xsktap_limit_key key;
	__u32 tokens; /* frames of `key` this CPU may pass without the bucket */
	__u32 streak; /* how many the next visit to the bucket asks for */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LIMIT_CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct limit_cache);
} limit_cache SEC(".maps");

/* The cache slot of a key: its words folded, then a multiplicative hash. */
static __always_inline __u32 cache_slot(const struct xsktap_limit_key *k)
{
	const __u64 *w = (const __u64 *)k;
	__u64 x = w[0] ^ w[1] ^ w[2] ^ w[3] ^ w[4];

	x ^= x >> 32;
	return (__u32)((x * 0x9e3779b97f4a7c15ULL) >> 58) & (LIMIT_CACHE_SLOTS - 1);
}

static __always_inline int same_key(const struct xsktap_limit_key *a, const struct xsktap_limit_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

/*
 * Takes up to `want` frames' worth from the key's bucket at `now` (the GCRA
 * of core/src/limit.rs: a frame conforms while the bucket's next due time is
 * at most the tolerance ahead of now); returns how many it got, 0 or 1 when
 * `want` does not fit. A key's first frame conforms. A refusal is counted
 * against the key.
 */
static __always_inline __u32 take(const struct xsktap_limit_key *lk, __u64 now, __u32 want)
{
	struct xsktap_limit_state *s;
	int i;

	s = bpf_map_lookup_elem(&limits, lk);
	if (!s) {
		struct xsktap_limit_state fresh = { .tat = now + limit_interval_ns };

		/* Another CPU may have added it meanwhile. */
		if (bpf_map_update_elem(&limits, lk, &fresh, BPF_NOEXIST) == 0)
			return 1;
		s = bpf_map_lookup_elem(&limits, lk);
		if (!s)
			return 1;
	}
	/* A few tries: each failure means another CPU just took from this key. */
	for (i = 0; i < 4; i++) {
		__u64 tat = *(volatile __u64 *)&s->tat;
		__u64 base = tat > now ? tat : now;
		__u32 got = want;

		if (base - now > limit_tolerance_ns)
			break;
		if (base - now + (__u64)(want - 1) * limit_interval_ns > limit_tolerance_ns)
			got = 1;
		if (__sync_val_compare_and_swap(&s->tat, tat, base + got * limit_interval_ns) == tat)
			return got;
	}
	__sync_fetch_and_add(&s->dropped, 1);
	return 0;
}

/* Returns `tokens` frames' worth to the key's bucket (moves its due time back). */
static __always_inline void give_back(const struct xsktap_limit_key *lk, __u32 tokens)
{
	struct xsktap_limit_state *s = bpf_map_lookup_elem(&limits, lk);

	if (s)
		__sync_fetch_and_add(&s->tat, -((__u64)tokens * limit_interval_ns));
}

/*
 * Whether the frame parsed into `k` is over its key's rate, on a bucket every
 * CPU shares (a source's flows reach several queues) through this CPU's
 * cache. A frame with no address is never limited.
 */
static __always_inline int over_limit(const struct key *k, __u64 now)
{
	struct xsktap_limit_key lk = {};
	struct limit_cache *c;
	__u32 slot, want = 1, got;

	if (k->family == 0)
		return 0;
	lk.family = k->family;
	if (limit_by == XSKTAP_LIMIT_SRC || limit_by == XSKTAP_LIMIT_FLOW) {
		lk.src[0] = k->src[0];
		lk.src[1] = k->src[1];
	}
	if (limit_by == XSKTAP_LIMIT_DST || limit_by == XSKTAP_LIMIT_FLOW) {
		lk.dst[0] = k->dst[0];
		lk.dst[1] = k->dst[1];
	}
	if (limit_by == XSKTAP_LIMIT_FLOW) {
		lk.proto = k->has_l4proto ? k->l4proto : 0;
		lk.sport = k->has_ports ? k->sport : 0;
		lk.dport = k->has_ports ? k->dport : 0;
	}
	slot = cache_slot(&lk);
	c = bpf_map_lookup_elem(&limit_cache, &slot);
	if (!c)
		return take(&lk, now, 1) == 0;
	if (same_key(&c->key, &lk)) {
		if (c->tokens > 0) {
			c->tokens--;
			return 0;
		}
		want = c->streak < LIMIT_GRAB_MAX ? c->streak + 1 : LIMIT_GRAB_MAX;
	} else {
		if (c->tokens > 0)
			give_back(&c->key, c->tokens);
		c->key = lk;
		c->tokens = 0;
	}
	got = take(&lk, now, want);
	c->streak = got ? want : 0;
	if (!got)
		return 1;
	c->tokens = got - 1;
	return 0;
}

/*
 * The limiter's clock: the precise one where the frame's stamp reads it
 * anyway (one read serves both), the coarse one (a scheduler tick, no TSC
 * read) in the variant that reads no clock per frame.
 */
static __always_inline __u64 limit_clock(enum stamping stamping)
{
	return stamping == STAMP_NONE ? bpf_ktime_get_coarse_ns() : bpf_ktime_get_ns();
}

static __always_inline int capture(struct xdp_md *ctx, enum stamping stamping)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 queue = ctx->rx_queue_index;
	struct xsktap_queue_conf *conf;
	struct xsktap_counters *cnt;
	struct key k = {};
	int parsed = 0;
	__u64 hw_ns = 0;
	__u64 now = 0;
	long action;

	cnt = bpf_map_lookup_elem(&counters, &queue);
	if (!cnt) /* queue index beyond XSKTAP_MAX_QUEUES: never captured */
		return XDP_PASS;
	cnt->seen++;

	if (limit_by != XSKTAP_LIMIT_OFF && limit_all) {
		parse(&k, data, data_end);
		parsed = 1;
		now = limit_clock(stamping);
		if (over_limit(&k, now)) {
			cnt->limited++;
			return XDP_DROP;
		}
	}

	conf = bpf_map_lookup_elem(&queue_conf, &queue);
	if (!conf || !conf->capture) {
		cnt->passed++;
		return XDP_PASS;
	}

	if (!filter_match(&k, &parsed, data, data_end, conf->feeds_only)) {
		cnt->filtered_out++;
		return XDP_PASS;
	}

	if (limit_by != XSKTAP_LIMIT_OFF && !limit_all) {
		if (!parsed)
			parse(&k, data, data_end);
		now = limit_clock(stamping);
		if (over_limit(&k, now)) {
			cnt->limited++;
			return XDP_DROP;
		}
	}

	if (stamping == STAMP_HARDWARE) {
		hw_ns = hardware_stamp(ctx);
		if (!hw_ns)
			cnt->hw_stamp_missing++;
	}

	/*
	 * One timestamp per frame, taken here, carried in the frame's metadata
	 * (or in headroom, below). Where the driver keeps no room the frame goes
	 * unstamped and userspace falls back to its batch's time. The clock read
	 * is most of this program's cost on a VM (kvm-clock: ~36 ns a frame),
	 * hence the variant without it.
	 */
	if (stamping != STAMP_NONE && stamp_carry == XSKTAP_CARRY_METADATA &&
	    bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct xsktap_meta)) == 0) {
		struct xsktap_meta *meta = (void *)(long)ctx->data_meta;

		if ((void *)(meta + 1) <= (void *)(long)ctx->data) {
			meta->rx_ns = hw_ns ? hw_ns : now ? now : bpf_ktime_get_ns();
			meta->flags = hw_ns ? XSKTAP_META_HARDWARE : 0;
			meta->magic = XSKTAP_META_MAGIC;
		}
	}

	action = bpf_redirect_map(&xsks, queue, XDP_PASS);
	if (action != XDP_REDIRECT) {
		cnt->redirect_failed++;
		return action;
	}
	cnt->redirected++;
	/*
	 * No metadata on this kernel: prepend the stamp to the frame, now that
	 * it is known to go to the socket (a frame passed to the stack must
	 * stay as it came). The worker strips it.
	 */
	if (stamping != STAMP_NONE && stamp_carry == XSKTAP_CARRY_HEADROOM &&
	    bpf_xdp_adjust_head(ctx, -(int)sizeof(struct xsktap_meta)) == 0) {
		struct xsktap_meta *meta = (void *)(long)ctx->data;

		if ((void *)(meta + 1) <= (void *)(long)ctx->data_end) {
			meta->rx_ns = hw_ns ? hw_ns : now ? now : bpf_ktime_get_ns();
			meta->flags = XSKTAP_META_HEADROOM |
				      (hw_ns ? XSKTAP_META_HARDWARE : 0);
			meta->magic = XSKTAP_META_MAGIC;
		}
	}
	return action;
}

/* Software timestamps: loads anywhere, attaches to any interface. */
SEC("xdp")
int xsktap_xdp(struct xdp_md *ctx)
{
	return capture(ctx, STAMP_SOFTWARE);
}

/* No per-frame stamp: userspace stamps each batch (-j host_lowprec). */
SEC("xdp")
int xsktap_xdp_nostamp(struct xdp_md *ctx)
{
	return capture(ctx, STAMP_NONE);
}

/*
 * Hardware timestamps where the driver has them: device-bound (loaded for
 * one interface with BPF_F_XDP_DEV_BOUND_ONLY), software stamps otherwise.
 */
SEC("xdp")
int xsktap_xdp_hw(struct xdp_md *ctx)
{
	return capture(ctx, STAMP_HARDWARE);
}

/*
 * Never read by the program: makes the shared constants and the generator's
 * stamp layout part of this object's BTF, so Rust gets them from the skeleton.
 */
struct xsktap_constants xsktap_constants_layout SEC(".bss") __attribute__((used));

char LICENSE[] SEC("license") = "Dual BSD/GPL";
