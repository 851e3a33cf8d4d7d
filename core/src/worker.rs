//! One queue's worker: the loop that drains an RX queue, the per-frame step,
//! and the decisions between batches, written against traits so that unit
//! tests drive the real loop over a fake queue and a fake clock.
//!
//! ```text
//!  loop:  stop? ─▶ busy-poll kick? ─▶ recv(batch) ──n>0──▶ FrameStep per frame ─▶ counters
//!                                        │                 (parse, counters, flows, stamp,
//!                                        │                  pcap sink, monitor line)
//!                                        └─n=0─▶ Pacer::on_empty ─▶ Stop | Spin | Nap | Wait
//! ```
//!
//! Nothing here allocates or locks per packet: records are encoded into the
//! sink's current buffer, counters are added once per batch, and the `-c`
//! budget is claimed once per batch with one compare-and-swap. The runtime
//! pins the thread and passes the real socket ([`RxQueue`]), clocks
//! ([`Clock`]) and writer handles ([`RecordSink`]).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::feed::Feeds;
use crate::flows::{
    FlowExchange, FlowKey, FlowOut, FlowRecord, FlowStats, FlowTable, EXPIRY_STEPS,
};
use crate::latency::{read_stamp, LatencyStats};
use crate::monitor::{self, MonitorFormat, MAX_LINE};
use crate::parse::parse;
use crate::rxmeta;
use crate::stats::{TrafficCounters, WorkerCounters};

/// How long an idle worker waits in poll(2) before looking at its flags again.
pub const IDLE_POLL: Duration = Duration::from_millis(50);
/// Naps in a row that find the ring still empty before a coalescing worker
/// goes back to waiting in poll(2) (the traffic has paused).
pub const EMPTY_NAPS: u32 = 4;
/// How long the ring must stay empty before pending records are flushed.
pub const IDLE_FLUSH: Duration = Duration::from_millis(5);
/// The oldest a pending record may get before it is flushed, even under load.
pub const FLUSH_AGE_NS: u64 = 100_000_000;
/// How often a worker publishes a copy of its flow table and latency numbers.
pub const PUBLISH_NS: u64 = 500_000_000;
/// Slices the flow table is copied in, one every `PUBLISH_NS / COPY_SLICES`:
/// a table of 131,072 flows is 13 MB, and copying it at once would hold the
/// worker for milliseconds (longer than its RX ring lasts at line rate).
pub const COPY_SLICES: usize = 16;

/// An RX queue as the worker sees it: an AF_XDP socket in production
/// (`xsktap-sys`), a heap ring or a script in tests.
pub trait RxQueue {
    /// Takes up to `max` frames from the RX ring, calls `on_frame(i, n, bytes)`
    /// for frame `i` of the `n` taken, then returns the frames to the fill
    /// ring. Returns `n`.
    fn recv<F: FnMut(u32, u32, &[u8], u64)>(&mut self, max: u32, on_frame: F) -> u32;
    /// Whether the kernel asked to be woken before it fills more frames
    /// (`XDP_RING_NEED_WAKEUP` on the fill ring).
    fn fill_needs_wakeup(&self) -> bool;
    /// Wakes the kernel to process the fill ring.
    fn kick(&mut self);
    /// Runs the queue's NAPI once from this thread (preferred busy polling).
    fn busy_poll(&mut self);
    /// Waits up to `timeout` for frames; returns whether some are ready.
    ///
    /// # Errors
    /// The wait's system error (an interrupted wait is `Ok(false)`).
    fn wait(&mut self, timeout: Duration) -> io::Result<bool>;
    /// The NAPI instance behind the queue, once a frame has arrived; 0 when
    /// there is none to busy-poll.
    fn napi_id(&self) -> u32;
}

/// The clocks a worker reads and the nap it takes; time is passed in, never read.
pub trait Clock {
    /// Wall-clock time (CLOCK_REALTIME) in nanoseconds: pcap timestamps.
    fn wall_ns(&self) -> u64;
    /// CLOCK_MONOTONIC in nanoseconds: pacing, and the clock the
    /// generator's stamps use.
    fn mono_ns(&self) -> u64;
    /// Sleeps for `d` (a coalescing nap).
    fn nap(&self, d: Duration);
}

/// Where a worker's encoded records go: a buffer handed whole to a writer.
pub trait RecordSink {
    /// Appends one pcap record. Returns `false` when the output has stopped
    /// (failed or its reader left); the record is then not written. May wait
    /// for the writer, but never past `stop`.
    fn push(&mut self, ts_ns: u64, frame: &[u8], stop: &AtomicBool) -> bool;
    /// [`RecordSink::push`] for a frame of `orig_len` bytes of which `frame`
    /// holds the first ones (read back from a file cut by a snaplen).
    fn push_of(&mut self, ts_ns: u64, frame: &[u8], orig_len: usize, stop: &AtomicBool) -> bool {
        let _ = orig_len;
        self.push(ts_ns, frame, stop)
    }
    /// Appends what `write` writes, at most `max_len` bytes (a monitor line).
    /// Returns `false` when the output has stopped.
    fn push_with(
        &mut self,
        max_len: usize,
        stop: &AtomicBool,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> bool;
    /// Hands what is pending to the writer.
    fn flush(&mut self);
    /// Whether records wait in the current buffer.
    fn has_pending(&self) -> bool;
}

/// State every worker and the controlling thread share.
#[derive(Debug, Default)]
pub struct Shared {
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
pub fn claim(remaining: &AtomicU64, want: u64) -> u64 {
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

/// What a worker does when it finds its RX ring empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// The capture is draining and the ring is empty: leave the loop.
    Stop,
    /// Busy polling: look again at once (the next busy poll is the wait).
    Spin,
    /// Frames are flowing: sleep this long instead of waiting in poll(2).
    Nap(Duration),
    /// Wait in poll(2) up to this long.
    Wait(Duration),
}

/// The worker's decisions between batches: nap, poll or spin, when to flush
/// pending records (by age under load, by idleness), and whether busy
/// polling still has a NAPI to run. Time is passed in.
#[derive(Debug, Clone)]
pub struct Pacer {
    nap: Duration,
    /// Busy polling: never sleep, look at the ring again at once.
    spin: bool,
    /// Make the busy-poll syscall (only useful while a NAPI is known or unchecked).
    kick_napi: bool,
    napi_checked: bool,
    naps_left: u32,
    oldest_pending_ns: Option<u64>,
}

impl Pacer {
    /// A pacer for a worker that busy-polls or not, napping `coalesce_usecs`
    /// while frames flow (0: always wait in poll(2)).
    pub fn new(busy_poll: bool, coalesce_usecs: u32) -> Pacer {
        Pacer {
            nap: Duration::from_micros(u64::from(coalesce_usecs)),
            spin: busy_poll,
            kick_napi: busy_poll,
            napi_checked: !busy_poll,
            naps_left: 0,
            oldest_pending_ns: None,
        }
    }

    /// Whether to run the queue's NAPI before looking at the ring.
    #[inline(always)]
    pub fn busy_poll(&self) -> bool {
        self.kick_napi
    }

    /// After the first frames under busy polling: whether the NAPI id still
    /// has to be checked. [`Pacer::napi_seen`] takes the answer.
    #[inline(always)]
    pub fn napi_unchecked(&self) -> bool {
        !self.napi_checked
    }

    /// Takes the queue's NAPI id; returns `true` when there is none, and from
    /// then on the worker stops making the (useless) busy-poll syscall but
    /// still never sleeps.
    pub fn napi_seen(&mut self, napi_id: u32) -> bool {
        self.napi_checked = true;
        if napi_id == 0 {
            self.kick_napi = false;
            return true;
        }
        false
    }

    /// After a batch of `n` frames taken at `now_ns`, `pending` telling
    /// whether records now wait in a sink. Returns whether to flush them
    /// because the oldest is older than [`FLUSH_AGE_NS`] (a steady load that
    /// never empties the ring still reaches the reader in bounded time).
    #[inline(always)]
    pub fn on_batch(&mut self, n: u32, pending: bool, now_ns: u64) -> bool {
        if !self.nap.is_zero() && n > 1 {
            // More than one frame per wake-up: traffic is dense enough that
            // napping collects batches. A trickle (one frame per wake-up)
            // keeps waiting in poll(2), which costs it nothing between frames.
            self.naps_left = EMPTY_NAPS;
        }
        if !pending {
            return false;
        }
        match self.oldest_pending_ns {
            None => {
                self.oldest_pending_ns = Some(now_ns);
                false
            }
            Some(t) => now_ns.saturating_sub(t) > FLUSH_AGE_NS,
        }
    }

    /// On an empty ring at `now_ns`: whether to flush pending records first,
    /// and what to do next.
    pub fn on_empty(&mut self, now_ns: u64, pending: bool, draining: bool) -> (bool, Idle) {
        if draining {
            return (false, Idle::Stop);
        }
        let aged = pending
            && self
                .oldest_pending_ns
                .is_some_and(|t| now_ns.saturating_sub(t) > FLUSH_AGE_NS);
        if self.spin {
            // Never sleep: the next busy poll is the wait. Flush on an empty ring.
            return (pending, Idle::Spin);
        }
        if self.naps_left > 0 {
            // Frames are flowing: nap instead of poll(2). A worker waiting in
            // poll has to be woken by the kernel (an IPI and a reschedule on
            // the CPU doing the receive work) for every few frames; a napping
            // one is never woken and takes what arrived in one batch.
            self.naps_left -= 1;
            return (aged, Idle::Nap(self.nap));
        }
        let still_pending = pending && !aged;
        let timeout = if still_pending { IDLE_FLUSH } else { IDLE_POLL };
        (aged, Idle::Wait(timeout))
    }

    /// After a wait that found frames or not: whether to flush pending
    /// records now (the ring stayed idle for [`IDLE_FLUSH`]).
    pub fn after_wait(&self, ready: bool, pending: bool) -> bool {
        !ready && pending
    }

    /// Records that pending records were handed to the writer.
    pub fn flushed(&mut self) {
        self.oldest_pending_ns = None;
    }
}

/// The per-packet monitor output of a worker.
#[derive(Debug)]
pub struct Monitor<S> {
    /// Text or JSON lines.
    pub format: MonitorFormat,
    /// Interface name printed in text lines.
    pub iface: Arc<str>,
    /// Where the lines go.
    pub lines: S,
}

/// What a worker does with each frame: parse, count, track its flow and
/// generator stamp, and hand it to the pcap sink and the monitor.
///
/// The pcap sink, when there is one, is the output that counts: a frame is
/// written when its record is. Without one, the monitor lines count. When
/// the other output (monitor lines beside `-w FILE`) refuses a line, the
/// step notes it in `closed` and the worker stops.
#[derive(Debug)]
pub struct FrameStep<S> {
    /// The RX queue, for monitor lines.
    pub queue: u32,
    /// The pcap output, if any.
    pub sink: Option<S>,
    /// The monitor output, if any.
    pub monitor: Option<Monitor<S>>,
    /// Counters by protocol, VLAN and size (read by the reporter).
    pub traffic: Arc<CachePadded<TrafficCounters>>,
    /// The worker's flow table.
    pub flows: FlowTable,
    /// Latency and sequence accounting of generator frames.
    pub latency: LatencyStats,
    /// Set when an output that does not count (see above) refused a record.
    pub closed: bool,
    /// `xsktap feed`: the feeds its frames go to.
    pub feeds: Option<Arc<Feeds>>,
    /// Wall-clock time when the current batch was taken from the ring: when
    /// its frames are decoded, give or take the batch's own work.
    pub batch_wall_ns: u64,
}

impl<S: RecordSink> FrameStep<S> {
    /// Processes one frame received at `wall_ns` / `mono_ns`. Returns whether
    /// the output that counts accepted it.
    #[inline(always)]
    pub fn frame(&mut self, wall_ns: u64, mono_ns: u64, frame: &[u8], stop: &AtomicBool) -> bool {
        self.frame_of(wall_ns, mono_ns, frame, frame.len(), stop)
    }

    /// [`FrameStep::frame`] for a frame of `orig_len` bytes of which `frame`
    /// holds the first ones: counted, and written, with its original length.
    #[inline(always)]
    pub fn frame_of(
        &mut self,
        wall_ns: u64,
        mono_ns: u64,
        frame: &[u8],
        orig_len: usize,
        stop: &AtomicBool,
    ) -> bool {
        let mut packet = parse(frame);
        if orig_len > frame.len() {
            packet.len = u32::try_from(orig_len).unwrap_or(u32::MAX);
        }
        self.traffic.record(&packet);
        if let Some(key) = FlowKey::of(&packet) {
            let vlan = packet.vlan_ids().first().copied().unwrap_or(0);
            self.flows
                .record(key, u64::from(packet.len), packet.tcp_flags, vlan, wall_ns);
        }
        if let Some(stamp) = read_stamp(frame, &packet, mono_ns) {
            self.latency.record(stamp, mono_ns);
        }
        if let Some(feeds) = &self.feeds {
            feeds.frame(wall_ns, self.batch_wall_ns.max(wall_ns), frame, &packet);
        }
        let mut accepted = match &mut self.sink {
            Some(s) => s.push_of(wall_ns, frame, orig_len, stop),
            None => true,
        };
        if let Some(m) = &mut self.monitor {
            let (format, iface, queue) = (m.format, &m.iface, self.queue);
            let line = m.lines.push_with(MAX_LINE, stop, |out| match format {
                MonitorFormat::Text => monitor::write_text(out, wall_ns, iface, queue, &packet),
                MonitorFormat::Json => monitor::write_json(out, wall_ns, queue, &packet),
            });
            if self.sink.is_none() {
                accepted = line;
            } else if !line {
                self.closed = true;
            }
        }
        accepted
    }

    /// Whether records wait in an output's current buffer.
    pub fn has_pending(&self) -> bool {
        self.sink.as_ref().is_some_and(RecordSink::has_pending)
            || self.monitor.as_ref().is_some_and(|m| m.lines.has_pending())
    }

    /// Hands every pending record to the writers.
    pub fn flush(&mut self) {
        if let Some(s) = &mut self.sink {
            s.flush();
        }
        if let Some(m) = &mut self.monitor {
            m.lines.flush();
        }
    }
}

/// Where a worker publishes what the reporter reads beside the counters.
#[derive(Debug, Default)]
pub struct Published {
    /// Copies of the flow table.
    pub flows: FlowExchange,
    /// Latency totals (the histogram is copied only at the end).
    pub latency: Mutex<LatencyStats>,
}

/// One queue's worker: its step, its pacer and what it shares.
#[derive(Debug)]
pub struct Worker<S> {
    /// Descriptors taken from the RX ring at a time.
    pub batch_size: u32,
    /// Flags shared with every worker and the controlling thread.
    pub shared: Arc<Shared>,
    /// This worker's counters (one writer: this worker).
    pub counters: Arc<CachePadded<WorkerCounters>>,
    /// What is done with each frame.
    pub step: FrameStep<S>,
    /// The decisions between batches.
    pub pacer: Pacer,
    /// Where flows and latency are published.
    pub published: Arc<Published>,
    /// Where expired flow records go, when flows are exported (the table
    /// was made with [`FlowTable::with_export`]).
    pub flow_out: Option<FlowOut>,
}

/// Per-batch totals, added to the counters once per batch.
#[derive(Debug, Default)]
struct BatchTotals {
    bytes: u64,
    written: u64,
    written_bytes: u64,
    refused: u64,
}

impl<S: RecordSink> Worker<S> {
    /// Drains `queue` until told to stop (or, once draining, until the ring
    /// is empty), then flushes its outputs and publishes its final flows and
    /// latency. After a stop (count reached, output closed), it goes on
    /// taking frames from the ring without writing them until the capture
    /// drains, counting them as over the count or lost to the output: every
    /// frame redirected to the socket is accounted for.
    ///
    /// # Errors
    /// The queue's wait failing.
    pub fn run<Q: RxQueue, C: Clock>(&mut self, queue: &mut Q, clock: &C) -> io::Result<()> {
        let result = match self.drive(queue, clock) {
            Ok(()) => self.discard(queue, true),
            Err(e) => {
                // The queue failed (its device went away): still count what
                // its ring holds, without waiting for more.
                let _ = self.discard(queue, false);
                Err(e)
            }
        };
        self.step.flush();
        if let Some(out) = &self.flow_out {
            // Whatever the flows hold since their last record leaves now.
            self.step.flows.drain();
            let mut records = Vec::new();
            self.step.flows.take_expired(&mut records);
            out.finish(self.step.queue, records);
            out.add_dropped(self.step.flows.export_dropped());
        }
        let mut flow_copy = Vec::new();
        self.step.flows.copy_into(&mut flow_copy);
        self.published
            .flows
            .publish_final(&mut flow_copy, self.step.flows.evictions());
        if let Ok(mut out) = self.published.latency.lock() {
            *out = self.step.latency.clone();
        }
        result
    }

    fn drive<Q: RxQueue, C: Clock>(&mut self, queue: &mut Q, clock: &C) -> io::Result<()> {
        let shared = self.shared.clone();
        let stop = &shared.stop;
        let counters = self.counters.clone();
        let mut flow_copy: Vec<FlowStats> = Vec::new();
        let mut next_publish_ns = 0u64;
        let mut next_copy_ns = 0u64;
        let mut copy_at = 0usize;
        let mut next_expiry_ns = 0u64;
        let mut expired: Vec<FlowRecord> = Vec::new();
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if self.pacer.busy_poll() {
                // Run the queue's NAPI here, on this core: it moves frames into the RX ring.
                queue.busy_poll();
            }
            let mut wall = 0u64;
            let mut mono = 0u64;
            let mut allowed = u64::MAX;
            let mut t = BatchTotals::default();
            let step = &mut self.step;
            let n = queue.recv(self.batch_size, |i, n, frame, rx_ns| {
                if i == 0 {
                    // One read of each clock per batch: each frame's own
                    // stamp (CLOCK_MONOTONIC, from the XDP program) is moved
                    // to wall-clock time with their offset.
                    wall = clock.wall_ns();
                    mono = clock.mono_ns();
                    step.batch_wall_ns = wall;
                    if let Some(remaining) = &shared.remaining {
                        allowed = claim(remaining, u64::from(n));
                    }
                }
                t.bytes += frame.len() as u64;
                if u64::from(i) < allowed {
                    // Latency stays measured to the worker (`mono`): what a
                    // consumer of xsktap waits, not only the way to XDP.
                    let frame_wall = rxmeta::wall_time(rx_ns, wall, mono);
                    if step.frame(frame_wall, mono, frame, stop) {
                        t.written += 1;
                        t.written_bytes += frame.len() as u64;
                    } else {
                        t.refused += 1;
                    }
                }
            });
            if n == 0 {
                WorkerCounters::add(&counters.empty_polls, 1);
                mono = clock.mono_ns();
            } else if queue.fill_needs_wakeup() {
                queue.kick();
                WorkerCounters::add(&counters.kicks, 1);
            }
            // A few times a second: a copy of the flow table and the latency
            // numbers for the reporter (never waits).
            // A slice of the flow table's copy; a whole copy is published.
            if mono >= next_copy_ns {
                if self
                    .step
                    .flows
                    .copy_slice(&mut flow_copy, &mut copy_at, COPY_SLICES)
                {
                    self.published
                        .flows
                        .offer(&mut flow_copy, self.step.flows.evictions());
                }
                next_copy_ns = mono + PUBLISH_NS / COPY_SLICES as u64;
            }
            if mono >= next_publish_ns {
                self.publish();
                next_publish_ns = mono + PUBLISH_NS;
                if let Some(out) = &self.flow_out {
                    self.step.flows.take_expired(&mut expired);
                    out.offer(self.step.queue, &mut expired);
                }
            }
            // Flow export: a slice of the table's expiry scan, so that the
            // whole table is looked at once a second in small steps.
            if self.flow_out.is_some() && mono >= next_expiry_ns {
                self.step.flows.expire_step(clock.wall_ns());
                next_expiry_ns = mono + 1_000_000_000 / EXPIRY_STEPS;
            }
            if n == 0 {
                let pending = self.step.has_pending();
                let draining = shared.drain.load(Ordering::Relaxed);
                let (flush, idle) = self.pacer.on_empty(mono, pending, draining);
                if flush {
                    self.flush();
                }
                match idle {
                    Idle::Stop => return Ok(()),
                    Idle::Spin => {}
                    Idle::Nap(d) => {
                        WorkerCounters::add(&counters.naps, 1);
                        clock.nap(d);
                    }
                    Idle::Wait(timeout) => {
                        WorkerCounters::add(&counters.waits, 1);
                        let ready = queue.wait(timeout)?;
                        if self.pacer.after_wait(ready, self.step.has_pending()) {
                            self.flush();
                        }
                    }
                }
                continue;
            }
            if self.pacer.napi_unchecked() && self.pacer.napi_seen(queue.napi_id()) {
                shared.no_napi.store(true, Ordering::Relaxed);
            }
            if self
                .pacer
                .on_batch(n, t.written > 0 || self.step.has_pending(), mono)
            {
                self.flush();
            }
            let n = u64::from(n);
            WorkerCounters::add(&counters.received, n);
            WorkerCounters::add(&counters.received_bytes, t.bytes);
            WorkerCounters::add(&counters.written, t.written);
            WorkerCounters::add(&counters.written_bytes, t.written_bytes);
            WorkerCounters::add(&counters.sink_closed_drops, t.refused);
            WorkerCounters::add(&counters.over_count, n - t.written - t.refused);
            if t.refused > 0 || self.step.closed {
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
    }

    fn flush(&mut self) {
        self.step.flush();
        self.pacer.flushed();
    }

    /// Takes what the ring holds once the worker has stopped, and (when
    /// `until_drained`) whatever arrives until the capture drains (the
    /// program is detached), counting it without writing it.
    fn discard<Q: RxQueue>(&mut self, queue: &mut Q, until_drained: bool) -> io::Result<()> {
        let counters = &self.counters;
        loop {
            let mut bytes = 0u64;
            let n = queue.recv(self.batch_size, |_, _, frame, _| {
                bytes += frame.len() as u64
            });
            if n == 0 {
                if !until_drained || self.shared.drain.load(Ordering::Relaxed) {
                    return Ok(());
                }
                queue.wait(IDLE_FLUSH)?;
                continue;
            }
            if queue.fill_needs_wakeup() {
                queue.kick();
                WorkerCounters::add(&counters.kicks, 1);
            }
            let n = u64::from(n);
            WorkerCounters::add(&counters.received, n);
            WorkerCounters::add(&counters.received_bytes, bytes);
            if self.shared.count_reached.load(Ordering::Relaxed) {
                WorkerCounters::add(&counters.over_count, n);
            } else {
                WorkerCounters::add(&counters.sink_closed_drops, n);
            }
        }
    }

    /// Hands the reporter the latency totals (if any stamped frame
    /// arrived), never waiting for it.
    fn publish(&self) {
        if self.step.latency.stamped == 0 {
            return;
        }
        if let Ok(mut slot) = self.published.latency.try_lock() {
            self.step.latency.copy_totals_into(&mut slot);
        }
    }
}

#[cfg(test)]
mod tests;
