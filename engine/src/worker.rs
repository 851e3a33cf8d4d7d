//! The per-queue loop: RX batch → sink → counters → fill ring, on a pinned core.
//!
//! Nothing here allocates or locks per packet: frames are encoded into the
//! batcher's current buffer, counters are added once per batch, and the `-c`
//! budget is claimed once per batch with one compare-and-swap.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_utils::CachePadded;

use crate::error::{Error, Result};
use crate::flows::{FlowExchange, FlowKey, FlowStats, FlowTable};
use crate::latency::{read_stamp, LatencyStats};
use crate::parse::parse;
use crate::sink::monitor::{self, MonitorFormat, MAX_LINE};
use crate::sink::writer::RecordBatcher;
use crate::stats::{TrafficCounters, WorkerCounters};
use crate::xsk::XskSocket;

/// How long an idle worker sleeps in poll(2) before looking at its flags again.
const IDLE_POLL_MS: i32 = 50;
/// Naps in a row that find the ring still empty before a coalescing worker
/// goes back to waiting in poll(2) (the traffic has paused).
const EMPTY_NAPS: u32 = 4;
/// How long the ring must stay empty before pending records are flushed.
const IDLE_FLUSH_MS: i32 = 5;
/// The oldest a pending record may get before it is flushed even under load.
const FLUSH_AGE_NS: u64 = 100_000_000;

/// Hands the reporter a copy of the flow table and of the latency numbers
/// (if any stamped frame arrived), never waiting for it.
fn publish(
    flows: &FlowTable,
    flow_copy: &mut Vec<FlowStats>,
    exchange: &FlowExchange,
    latency: &LatencyStats,
    latency_out: &Mutex<LatencyStats>,
) {
    flows.copy_into(flow_copy);
    exchange.offer(flow_copy, flows.evictions());
    if latency.stamped == 0 {
        return;
    }
    if let Ok(mut slot) = latency_out.try_lock() {
        latency.copy_totals_into(&mut slot);
    }
}

fn flush(
    sink: &mut Option<RecordBatcher>,
    monitor: &mut Option<Monitor>,
    oldest_pending_ns: &mut Option<u64>,
) {
    if let Some(s) = sink {
        s.flush();
    }
    if let Some(m) = monitor {
        m.lines.flush();
    }
    *oldest_pending_ns = None;
}

/// State every worker and the controlling thread share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Stop at once (count reached, output closed, abort).
    pub stop: AtomicBool,
    /// Stop once the RX ring is empty (the program is already detached).
    pub drain: AtomicBool,
    /// Packets still to write under `-c`; `None` without a count.
    pub remaining: Option<AtomicU64>,
    /// Set when `-c` was reached.
    pub count_reached: AtomicBool,
    /// Set when the sink's output closed or failed.
    pub sink_closed: AtomicBool,
    /// Set when --busy-poll found no NAPI behind a queue's socket.
    pub no_napi: AtomicBool,
}

/// Takes up to `want` from `remaining`, returning how many were granted.
#[inline(always)]
pub(crate) fn claim(remaining: &AtomicU64, want: u64) -> u64 {
    let mut current = remaining.load(Ordering::Relaxed);
    loop {
        if current == 0 {
            return 0;
        }
        let take = current.min(want);
        match remaining.compare_exchange_weak(
            current,
            current - take,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => return take,
            Err(seen) => current = seen,
        }
    }
}

/// The per-packet monitor output of a worker.
pub(crate) struct Monitor {
    pub format: MonitorFormat,
    pub iface: Arc<str>,
    pub lines: RecordBatcher,
}

/// One queue's worker, moved onto its own thread by [`Worker::run`].
pub(crate) struct Worker {
    pub queue: u32,
    pub core: usize,
    pub socket: XskSocket,
    pub sink: Option<RecordBatcher>,
    pub monitor: Option<Monitor>,
    pub shared: Arc<Shared>,
    pub counters: Arc<CachePadded<WorkerCounters>>,
    pub traffic: Arc<CachePadded<TrafficCounters>>,
    pub flows: FlowTable,
    pub flow_exchange: Arc<FlowExchange>,
    pub latency: Arc<Mutex<LatencyStats>>,
    pub batch_size: u32,
    pub busy_poll: bool,
    pub coalesce_usecs: u32,
}

/// How often a worker publishes a copy of its flow table.
const FLOW_PUBLISH_NS: u64 = 500_000_000;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Worker {
    /// Pins the thread and drains the RX ring until told to stop.
    pub fn run(self) -> Result<()> {
        let Worker {
            queue,
            core,
            mut socket,
            mut sink,
            mut monitor,
            shared,
            counters,
            traffic,
            mut flows,
            flow_exchange,
            latency: latency_out,
            batch_size,
            busy_poll,
            coalesce_usecs,
        } = self;
        let nap = std::time::Duration::from_micros(u64::from(coalesce_usecs));
        // Naps left before waiting in poll(2): refilled whenever frames arrive.
        let mut naps_left = 0u32;
        // Busy polling runs the queue's NAPI, which the kernel names once a frame
        // has arrived; with no NAPI (veth on 6.x kernels) the poll syscall does
        // nothing and the worker just spins on its ring.
        let mut kick = busy_poll;
        let mut napi_checked = !busy_poll;
        let mut latency = LatencyStats::default();
        let mut flow_copy: Vec<FlowStats> = Vec::new();
        let mut next_publish_ns = 0u64;
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            return Err(Error::Worker {
                queue,
                message: format!("cannot pin the worker to CPU {core} (sched_setaffinity failed)"),
            });
        }
        let stop = &shared.stop;
        // Records wait in the batcher until it is full, the ring has been idle
        // for IDLE_FLUSH_MS, or the oldest is FLUSH_AGE_NS old: few large
        // writes under load, bounded delay for `-w - | tcpdump` on a trickle.
        let mut oldest_pending_ns: Option<u64> = None;
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if kick {
                // Run the queue's NAPI here, on this core: it moves frames into the RX ring.
                socket.busy_poll();
            }
            let mut ts = 0u64;
            let mut mono = 0u64;
            let mut allowed = u64::MAX;
            let mut bytes = 0u64;
            let mut written = 0u64;
            let mut written_bytes = 0u64;
            let mut refused = 0u64;
            let n = socket.recv(batch_size, |i, n, frame| {
                if i == 0 {
                    // One read of each clock per batch.
                    ts = now_ns();
                    mono = crate::sys::monotonic_ns();
                    if let Some(remaining) = &shared.remaining {
                        allowed = claim(remaining, u64::from(n));
                    }
                }
                bytes += frame.len() as u64;
                if u64::from(i) < allowed {
                    let packet = parse(frame);
                    traffic.record(&packet);
                    if let Some(key) = FlowKey::of(&packet) {
                        flows.record(key, u64::from(packet.len));
                    }
                    if let Some(stamp) = read_stamp(frame, &packet, mono) {
                        latency.record(stamp, mono);
                    }
                    let mut accepted = match &mut sink {
                        Some(s) => s.push(ts, frame, stop),
                        None => true,
                    };
                    if let Some(m) = &mut monitor {
                        let (format, iface) = (m.format, &m.iface);
                        accepted &= m.lines.push_with(MAX_LINE, stop, |out| match format {
                            MonitorFormat::Text => {
                                monitor::write_text(out, ts, iface, queue, &packet)
                            }
                            MonitorFormat::Json => monitor::write_json(out, ts, queue, &packet),
                        });
                    }
                    if accepted {
                        written += 1;
                        written_bytes += frame.len() as u64;
                    } else {
                        refused += 1;
                    }
                }
            });
            // A few times a second: a copy of the flow table and the latency
            // numbers for the reporter (never waits).
            let now = if n == 0 { now_ns() } else { ts };
            if now >= next_publish_ns {
                publish(
                    &flows,
                    &mut flow_copy,
                    &flow_exchange,
                    &latency,
                    &latency_out,
                );
                next_publish_ns = now + FLOW_PUBLISH_NS;
            }
            if n == 0 {
                if shared.drain.load(Ordering::Relaxed) {
                    break;
                }
                let pending = sink.as_ref().is_some_and(RecordBatcher::has_pending)
                    || monitor.as_ref().is_some_and(|m| m.lines.has_pending());
                if pending
                    && oldest_pending_ns.is_some_and(|t| now.saturating_sub(t) > FLUSH_AGE_NS)
                {
                    flush(&mut sink, &mut monitor, &mut oldest_pending_ns);
                }
                if busy_poll {
                    // Never sleep: the next busy poll is the wait. Flush on an empty ring.
                    if pending {
                        flush(&mut sink, &mut monitor, &mut oldest_pending_ns);
                    }
                    continue;
                }
                if naps_left > 0 {
                    // Frames are flowing: nap instead of poll(2). A worker waiting in
                    // poll has to be woken by the kernel (an IPI and a reschedule on
                    // the CPU doing the receive work) for every few frames; a napping
                    // one is never woken and takes what arrived in one batch.
                    naps_left -= 1;
                    std::thread::sleep(nap);
                    continue;
                }
                let timeout = if pending { IDLE_FLUSH_MS } else { IDLE_POLL_MS };
                let ready = socket.wait(timeout).map_err(|e| Error::Worker {
                    queue,
                    message: e.to_string(),
                })?;
                if !ready && pending {
                    flush(&mut sink, &mut monitor, &mut oldest_pending_ns);
                }
                continue;
            }
            if !napi_checked {
                napi_checked = true;
                if socket.napi_id() == 0 {
                    kick = false;
                    shared.no_napi.store(true, Ordering::Relaxed);
                }
            }
            if coalesce_usecs > 0 && n > 1 {
                // More than one frame per wake-up: traffic is dense enough that
                // napping collects batches. A trickle (one frame per wake-up)
                // keeps waiting in poll(2), which costs it nothing between frames.
                naps_left = EMPTY_NAPS;
            }
            if written > 0 && oldest_pending_ns.is_none() {
                oldest_pending_ns = Some(ts);
            }
            let n = u64::from(n);
            WorkerCounters::add(&counters.received, n);
            WorkerCounters::add(&counters.received_bytes, bytes);
            WorkerCounters::add(&counters.written, written);
            WorkerCounters::add(&counters.written_bytes, written_bytes);
            WorkerCounters::add(&counters.sink_closed_drops, refused);
            WorkerCounters::add(&counters.over_count, n - written - refused);
            if refused > 0 {
                shared.sink_closed.store(true, Ordering::Relaxed);
                stop.store(true, Ordering::Relaxed);
            }
            if let Some(remaining) = &shared.remaining {
                if remaining.load(Ordering::Relaxed) == 0 {
                    shared.count_reached.store(true, Ordering::Relaxed);
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
        // Dropping the batchers sends what they hold to the writers.
        drop(sink);
        drop(monitor);
        flows.copy_into(&mut flow_copy);
        flow_exchange.publish_final(&mut flow_copy, flows.evictions());
        if let Ok(mut out) = latency_out.lock() {
            *out = latency;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_grants_exactly_the_budget() {
        let r = AtomicU64::new(10);
        assert_eq!(claim(&r, 4), 4);
        assert_eq!(claim(&r, 4), 4);
        assert_eq!(claim(&r, 4), 2);
        assert_eq!(claim(&r, 4), 0);
    }

    #[test]
    fn claim_is_exact_across_threads() {
        let r = Arc::new(AtomicU64::new(100_000));
        let granted: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|t| {
                    let r = &r;
                    s.spawn(move || {
                        let mut got = 0;
                        loop {
                            let g = claim(r, 1 + t * 7);
                            if g == 0 {
                                return got;
                            }
                            got += g;
                        }
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(granted, 100_000);
    }
}
