// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * xsktap's XDP program: frames arriving on a captured RX queue are
 * redirected into that queue's AF_XDP socket; every other frame, and every
 * frame whose socket is missing, goes on to the host stack (XDP_PASS).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "xsktap.h"

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

SEC("xdp")
int xsktap_xdp(struct xdp_md *ctx)
{
	__u32 queue = ctx->rx_queue_index;
	struct xsktap_queue_conf *conf;
	struct xsktap_counters *cnt;
	long action;

	cnt = bpf_map_lookup_elem(&counters, &queue);
	if (!cnt) /* queue index beyond XSKTAP_MAX_QUEUES: never captured */
		return XDP_PASS;
	cnt->seen++;

	conf = bpf_map_lookup_elem(&queue_conf, &queue);
	if (!conf || !conf->capture) {
		cnt->passed++;
		return XDP_PASS;
	}

	action = bpf_redirect_map(&xsks, queue, XDP_PASS);
	if (action == XDP_REDIRECT)
		cnt->redirected++;
	else
		cnt->redirect_failed++;
	return action;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
