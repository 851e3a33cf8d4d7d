/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one definition of every layout shared between the XDP program and
 * the Rust engine. The Rust side uses the types libbpf-cargo generates
 * from this header through the skeleton; nothing here is mirrored by hand.
 */
#ifndef XSKTAP_H
#define XSKTAP_H

/* Highest RX queue index + 1 that the program can redirect. */
#define XSKTAP_MAX_QUEUES 256

/* Per-CPU, per-queue counters kept by the XDP program. */
struct xsktap_counters {
	__u64 seen;            /* every frame the program ran on */
	__u64 redirected;      /* handed to an AF_XDP socket */
	__u64 passed;          /* queue not captured: left to the host stack */
	__u64 redirect_failed; /* queue captured but no socket in the XSKMAP */
};

/* Per-queue settings written by userspace before the program is attached. */
struct xsktap_queue_conf {
	__u32 capture; /* non-zero: redirect this queue into its socket */
};

#endif
