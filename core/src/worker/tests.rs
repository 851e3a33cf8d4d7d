//! The worker loop driven over a scripted queue, a fake clock and a sink
//! that records its flushes: every decision checked without a socket.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use super::*;

/// A fake CLOCK_MONOTONIC (and a wall clock 1.7e18 ns ahead of it).
#[derive(Default)]
struct FakeClock {
    now: Cell<u64>,
    naps: Cell<u64>,
}

impl FakeClock {
    fn advance(&self, ns: u64) {
        self.now.set(self.now.get() + ns);
    }
}

impl Clock for Rc<FakeClock> {
    fn wall_ns(&self) -> u64 {
        1_700_000_000_000_000_000 + self.now.get()
    }
    fn mono_ns(&self) -> u64 {
        self.now.get()
    }
    fn nap(&self, d: Duration) {
        self.naps.set(self.naps.get() + 1);
        self.advance(d.as_nanos() as u64);
    }
}

/// Frames that arrive at given times; what the worker did to the queue.
struct ScriptedQueue {
    clock: Rc<FakeClock>,
    /// (arrival time, frame), in time order.
    arrivals: VecDeque<(u64, Vec<u8>)>,
    /// Time each `recv` that returns frames costs.
    recv_cost_ns: u64,
    napi_id: u32,
    needs_wakeup: bool,
    /// Set `drain` on this shared state once the clock passes the time.
    drain_at: Option<(u64, Arc<Shared>)>,
    busy_polls: u64,
    kicks: u64,
    waits: Vec<Duration>,
    /// Every wait fails (as when the device goes away), after the time passes.
    fail_waits: bool,
}

impl ScriptedQueue {
    fn new(clock: &Rc<FakeClock>, frames: impl IntoIterator<Item = (u64, Vec<u8>)>) -> Self {
        ScriptedQueue {
            clock: clock.clone(),
            arrivals: frames.into_iter().collect(),
            recv_cost_ns: 0,
            napi_id: 1,
            needs_wakeup: false,
            drain_at: None,
            busy_polls: 0,
            kicks: 0,
            waits: Vec::new(),
            fail_waits: false,
        }
    }

    fn ready(&self) -> usize {
        let now = self.clock.now.get();
        self.arrivals.iter().take_while(|(t, _)| *t <= now).count()
    }

    fn check_drain(&self) {
        if let Some((at, shared)) = &self.drain_at {
            if self.clock.now.get() >= *at {
                shared.drain.store(true, Ordering::Relaxed);
            }
        }
    }
}

impl RxQueue for ScriptedQueue {
    fn recv<F: FnMut(u32, u32, &[u8], u64)>(&mut self, max: u32, mut on_frame: F) -> u32 {
        self.check_drain();
        let n = self.ready().min(max as usize) as u32;
        for i in 0..n {
            let (_, frame) = self.arrivals.pop_front().expect("counted as ready");
            on_frame(i, n, &frame, 0);
        }
        if n > 0 {
            self.clock.advance(self.recv_cost_ns);
        }
        n
    }
    fn fill_needs_wakeup(&self) -> bool {
        self.needs_wakeup
    }
    fn kick(&mut self) {
        self.kicks += 1;
    }
    fn busy_poll(&mut self) {
        self.busy_polls += 1;
    }
    fn wait(&mut self, timeout: Duration) -> io::Result<bool> {
        self.waits.push(timeout);
        let now = self.clock.now.get();
        let deadline = now + timeout.as_nanos() as u64;
        match self.arrivals.front() {
            Some(&(t, _)) if t <= deadline => {
                self.clock.now.set(t.max(now));
                if self.fail_waits {
                    return Err(io::Error::from_raw_os_error(100));
                }
                Ok(true)
            }
            _ => {
                self.clock.now.set(deadline);
                self.check_drain();
                Ok(false)
            }
        }
    }
    fn napi_id(&self) -> u32 {
        self.napi_id
    }
}

/// A sink that keeps records in memory and notes when (fake time) and how
/// many records each flush handed over; it can refuse after a budget.
#[derive(Default)]
struct MemorySink {
    pending: usize,
    flushes: Rc<RefCell<Vec<usize>>>,
    accept_left: Option<usize>,
}

impl RecordSink for MemorySink {
    fn push(&mut self, _ts_ns: u64, _frame: &[u8], _stop: &AtomicBool) -> bool {
        self.push_with(0, _stop, |_| {})
    }
    fn push_with(
        &mut self,
        _max_len: usize,
        _stop: &AtomicBool,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> bool {
        if let Some(left) = &mut self.accept_left {
            if *left == 0 {
                return false;
            }
            *left -= 1;
        }
        write(&mut Vec::new());
        self.pending += 1;
        true
    }
    fn flush(&mut self) {
        if self.pending > 0 {
            self.flushes.borrow_mut().push(self.pending);
            self.pending = 0;
        }
    }
    fn has_pending(&self) -> bool {
        self.pending > 0
    }
}

fn frame(n: u64) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[20..28].copy_from_slice(&n.to_be_bytes());
    f
}

fn worker(shared: &Arc<Shared>, sink: Option<MemorySink>, busy_poll: bool) -> Worker<MemorySink> {
    Worker {
        batch_size: 64,
        shared: shared.clone(),
        counters: Arc::new(CachePadded::new(WorkerCounters::default())),
        step: FrameStep {
            queue: 0,
            sink,
            monitor: None,
            traffic: Arc::new(CachePadded::new(TrafficCounters::default())),
            flows: FlowTable::new(64),
            latency: LatencyStats::default(),
            closed: false,
            feeds: None,
            batch_wall_ns: 0,
        },
        pacer: Pacer::new(busy_poll, 50),
        published: Arc::new(Published::default()),
        flow_out: None,
    }
}

/// What the capture does when a worker stops it: detach the program, then
/// let every worker drain (`drain`), from another thread.
fn detach_once_stopped<'s>(s: &'s std::thread::Scope<'s, '_>, shared: &Arc<Shared>) {
    let shared = shared.clone();
    s.spawn(move || {
        while !shared.stop.load(Ordering::Relaxed) {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(20));
        shared.drain.store(true, Ordering::Relaxed);
    });
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

#[test]
fn claim_grants_exactly_the_budget() {
    let r = AtomicU64::new(10);
    assert_eq!(claim(&r, 4), 4);
    assert_eq!(claim(&r, 4), 4);
    assert_eq!(claim(&r, 4), 2);
    assert_eq!(claim(&r, 4), 0);
}

#[test]
fn count_is_exact_across_four_workers() {
    const COUNT: u64 = 1000;
    let shared = Arc::new(Shared {
        remaining: Some(AtomicU64::new(COUNT)),
        ..Shared::default()
    });
    let totals: Vec<(u64, u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let shared = shared.clone();
                s.spawn(move || {
                    let clock = Rc::new(FakeClock::default());
                    let mut q = ScriptedQueue::new(&clock, (0..600).map(|i| (i * 1000, frame(i))));
                    let mut w = worker(&shared, Some(MemorySink::default()), false);
                    w.batch_size = 7;
                    w.run(&mut q, &clock).unwrap();
                    let c = &w.counters;
                    (load(&c.received), load(&c.written), load(&c.over_count))
                })
            })
            .collect();
        detach_once_stopped(s, &shared);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let written: u64 = totals.iter().map(|t| t.1).sum();
    assert_eq!(written, COUNT, "exactly -c frames written: {totals:?}");
    for (received, written, over) in totals {
        assert_eq!(
            received,
            written + over,
            "every frame received is accounted"
        );
    }
    assert!(shared.count_reached.load(Ordering::Relaxed));
    assert!(shared.stop.load(Ordering::Relaxed));
}

#[test]
fn pending_records_flush_by_age_under_a_load_that_never_empties_the_ring() {
    let clock = Rc::new(FakeClock::default());
    let shared = Arc::new(Shared::default());
    // 64 frames ready every millisecond for 350 ms: each batch takes 1 ms,
    // so the ring is never found empty until the end.
    let mut q = ScriptedQueue::new(
        &clock,
        (0..350 * 64).map(|i| ((i / 64) * 1_000_000, frame(i))),
    );
    q.recv_cost_ns = 1_000_000;
    q.drain_at = Some((0, shared.clone()));
    let sink = MemorySink::default();
    let flushes = sink.flushes.clone();
    let mut w = worker(&shared, Some(sink), false);
    w.run(&mut q, &clock).unwrap();
    let flushes = flushes.borrow();
    assert_eq!(load(&w.counters.received), 350 * 64);
    // Only the last look at the ring found it empty.
    assert_eq!(load(&w.counters.empty_polls), 1);
    // The oldest record is flushed with the first batch taken when it is
    // over 100 ms old: the batches of t = 0..=101 ms (102 x 64 records),
    // three times, then the rest at the end.
    assert_eq!(&flushes[..3], &[6528, 6528, 6528], "{flushes:?}");
    assert_eq!(flushes.iter().sum::<usize>(), 350 * 64);
}

#[test]
fn pending_records_flush_after_the_ring_stays_idle() {
    let clock = Rc::new(FakeClock::default());
    let shared = Arc::new(Shared::default());
    // A burst of 10 frames at t=0, then nothing until the capture drains at 1 s.
    let mut q = ScriptedQueue::new(&clock, (0..10).map(|i| (0, frame(i))));
    q.drain_at = Some((1_000_000_000, shared.clone()));
    let sink = MemorySink::default();
    let flushes = sink.flushes.clone();
    let mut w = worker(&shared, Some(sink), false);
    w.run(&mut q, &clock).unwrap();
    assert_eq!(
        *flushes.borrow(),
        vec![10],
        "one flush, when the ring went idle"
    );
    // Burst of more than one frame: four naps, then waits in poll(2); the
    // first wait is the short idle-flush one, the rest the long idle ones.
    assert_eq!(load(&w.counters.naps), u64::from(EMPTY_NAPS));
    assert_eq!(q.waits[0], IDLE_FLUSH);
    assert!(
        q.waits[1..].iter().all(|&d| d == IDLE_POLL),
        "{:?}",
        q.waits
    );
    assert_eq!(load(&w.counters.waits), q.waits.len() as u64);
}

#[test]
fn a_trickle_waits_in_poll_and_a_burst_naps_first() {
    let clock = Rc::new(FakeClock::default());
    let shared = Arc::new(Shared::default());
    // One frame every 10 ms: one frame per wake-up never earns a nap.
    let mut q = ScriptedQueue::new(&clock, (0..20).map(|i| (i * 10_000_000, frame(i))));
    q.drain_at = Some((300_000_000, shared.clone()));
    let mut w = worker(&shared, None, false);
    w.run(&mut q, &clock).unwrap();
    assert_eq!(load(&w.counters.received), 20);
    assert_eq!(load(&w.counters.naps), 0);
    assert!(load(&w.counters.waits) >= 20);

    // Then the same with bursts of 8: after every burst, naps before poll.
    let clock = Rc::new(FakeClock::default());
    let shared = Arc::new(Shared::default());
    let mut q = ScriptedQueue::new(&clock, (0..80).map(|i| ((i / 8) * 10_000_000, frame(i))));
    q.drain_at = Some((300_000_000, shared.clone()));
    let mut w = worker(&shared, None, false);
    w.run(&mut q, &clock).unwrap();
    assert_eq!(load(&w.counters.naps), 10 * u64::from(EMPTY_NAPS));
    assert_eq!(clock.naps.get(), load(&w.counters.naps));
}

#[test]
fn draining_stops_at_the_first_empty_ring() {
    let clock = Rc::new(FakeClock::default());
    let shared = Arc::new(Shared::default());
    shared.drain.store(true, Ordering::Relaxed);
    let mut q = ScriptedQueue::new(&clock, (0..1000).map(|i| (0, frame(i))));
    let sink = MemorySink::default();
    let flushes = sink.flushes.clone();
    let mut w = worker(&shared, Some(sink), false);
    w.run(&mut q, &clock).unwrap();
    assert_eq!(load(&w.counters.received), 1000);
    assert_eq!(load(&w.counters.written), 1000);
    assert_eq!(load(&w.counters.empty_polls), 1);
    assert_eq!(load(&w.counters.waits), 0, "a draining worker never waits");
    assert_eq!(
        flushes.borrow().iter().sum::<usize>(),
        1000,
        "flushed at exit"
    );
}

#[test]
fn a_closed_sink_stops_every_worker_and_counts_what_it_refused() {
    let shared = Arc::new(Shared::default());
    let results: Vec<(u64, u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = [Some(100), None]
            .into_iter()
            .map(|budget| {
                let shared = shared.clone();
                s.spawn(move || {
                    let clock = Rc::new(FakeClock::default());
                    // The other worker's stream is endless for this test: only the
                    // stop flag ends it. The refusing worker's is short, so that it
                    // is ready (and stops everything) long before the other could
                    // run out, however the threads are scheduled.
                    let n = if budget.is_some() { 1_000 } else { 1_000_000 };
                    let frames = (0..n).map(|i| (i * 1000, frame(i)));
                    let mut q = ScriptedQueue::new(&clock, frames);
                    let sink = MemorySink {
                        accept_left: budget,
                        ..MemorySink::default()
                    };
                    let mut w = worker(&shared, Some(sink), false);
                    w.batch_size = 16;
                    w.run(&mut q, &clock).unwrap();
                    let c = &w.counters;
                    (
                        load(&c.received),
                        load(&c.written),
                        load(&c.sink_closed_drops),
                    )
                })
            })
            .collect();
        detach_once_stopped(s, &shared);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (received, written, refused) = results[0];
    assert_eq!(written, 100);
    assert_eq!(
        received,
        written + refused,
        "the refused rest of the batch is counted"
    );
    assert!(refused > 0);
    assert!(shared.sink_closed.load(Ordering::Relaxed));
    assert!(results[1].0 < 1_000_000, "the other worker stopped too");
}

#[test]
fn a_stop_on_a_closed_output_takes_and_counts_what_the_ring_holds() {
    let clock = Rc::new(FakeClock::default());
    let shared = Arc::new(Shared::default());
    // 1000 frames ready at once, 500 more while the capture is stopping;
    // the program is detached (drain) at 10 ms.
    let frames = (0..1500u64).map(|i| (if i < 1000 { 0 } else { 5_000_000 }, frame(i)));
    let mut q = ScriptedQueue::new(&clock, frames);
    q.drain_at = Some((10_000_000, shared.clone()));
    let sink = MemorySink {
        accept_left: Some(100),
        ..MemorySink::default()
    };
    let mut w = worker(&shared, Some(sink), false);
    w.run(&mut q, &clock).unwrap();
    let c = &w.counters;
    assert_eq!(load(&c.received), 1500, "nothing left in the ring");
    assert_eq!(load(&c.written), 100);
    assert_eq!(load(&c.sink_closed_drops), 1400);
    assert_eq!(load(&c.over_count), 0);
}

#[test]
fn a_failed_queue_still_counts_what_its_ring_holds() {
    let clock = Rc::new(FakeClock::default());
    let shared = Arc::new(Shared::default());
    // A burst, then more frames that are in the ring when the wait fails.
    let frames = (0..20u64).map(|i| (if i < 10 { 0 } else { 1_000_000 }, frame(i)));
    let mut q = ScriptedQueue::new(&clock, frames);
    q.fail_waits = true;
    let mut w = worker(&shared, Some(MemorySink::default()), false);
    assert!(w.run(&mut q, &clock).is_err());
    let c = &w.counters;
    assert_eq!(load(&c.received), 20, "nothing left uncounted in the ring");
    assert_eq!(load(&c.written), 10);
    assert_eq!(load(&c.sink_closed_drops), 10);
}

#[test]
fn busy_polling_stops_the_syscall_without_a_napi_but_never_sleeps() {
    for napi_id in [0u32, 7] {
        let clock = Rc::new(FakeClock::default());
        let shared = Arc::new(Shared::default());
        let mut q = ScriptedQueue::new(&clock, (0..100).map(|i| (i * 100_000, frame(i))));
        q.napi_id = napi_id;
        q.drain_at = Some((20_000_000, shared.clone()));
        let mut w = worker(&shared, None, true);
        let clock2 = clock.clone();
        // Advance the fake clock on every busy poll so that time passes while spinning.
        struct Spinning<'a>(&'a mut ScriptedQueue, Rc<FakeClock>);
        impl RxQueue for Spinning<'_> {
            fn recv<F: FnMut(u32, u32, &[u8], u64)>(&mut self, max: u32, f: F) -> u32 {
                self.1.advance(10_000);
                self.0.recv(max, f)
            }
            fn fill_needs_wakeup(&self) -> bool {
                self.0.fill_needs_wakeup()
            }
            fn kick(&mut self) {
                self.0.kick()
            }
            fn busy_poll(&mut self) {
                self.0.busy_poll()
            }
            fn wait(&mut self, t: Duration) -> io::Result<bool> {
                self.0.wait(t)
            }
            fn napi_id(&self) -> u32 {
                self.0.napi_id()
            }
        }
        w.run(&mut Spinning(&mut q, clock2), &clock).unwrap();
        assert_eq!(load(&w.counters.received), 100);
        assert_eq!(
            load(&w.counters.naps),
            0,
            "a busy-polling worker never naps"
        );
        assert_eq!(load(&w.counters.waits), 0, "nor waits in poll(2)");
        let no_napi = shared.no_napi.load(Ordering::Relaxed);
        if napi_id == 0 {
            assert!(no_napi);
            assert_eq!(
                q.busy_polls, 1,
                "one busy poll before the first frame, then none"
            );
        } else {
            assert!(!no_napi);
            assert!(
                q.busy_polls > 1000,
                "busy polls every turn: {}",
                q.busy_polls
            );
        }
    }
}

#[test]
fn the_kernel_is_kicked_only_when_it_asks() {
    for needs in [false, true] {
        let clock = Rc::new(FakeClock::default());
        let shared = Arc::new(Shared::default());
        shared.drain.store(true, Ordering::Relaxed);
        let mut q = ScriptedQueue::new(&clock, (0..640).map(|i| (0, frame(i))));
        q.needs_wakeup = needs;
        let mut w = worker(&shared, None, false);
        w.run(&mut q, &clock).unwrap();
        let expected = if needs { 10 } else { 0 };
        assert_eq!(q.kicks, expected);
        assert_eq!(load(&w.counters.kicks), expected);
    }
}

fn udp(sport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(sport, 9)
        .write(&mut f, &[0; 18])
        .unwrap();
    f
}

#[test]
fn an_exporting_worker_hands_on_every_packet_in_exactly_one_record() {
    use crate::flows::{ExportTimeouts, FlowOut};
    const S: u64 = 1_000_000_000;
    let clock = Rc::new(FakeClock::default());
    let shared = Arc::new(Shared::default());
    // 20 flows, a frame every 10 ms for 25 s; flows 0..10 stop after 5 s.
    let frames: Vec<(u64, Vec<u8>)> = (0..2500u64)
        .map(|i| (i * 10_000_000, (i % 20) as u16))
        .filter(|&(t, flow)| flow >= 10 || t < 5 * S)
        .map(|(t, flow)| (t, udp(40_000 + flow)))
        .collect();
    let sent = frames.len() as u64;
    let mut q = ScriptedQueue::new(&clock, frames);
    q.drain_at = Some((26 * S, shared.clone()));
    let (out, rx) = FlowOut::bounded(64);
    let mut w = worker(&shared, None, false);
    w.step.flows = FlowTable::with_export(
        64,
        ExportTimeouts {
            active: Duration::from_secs(10),
            idle: Duration::from_secs(3),
        },
    );
    w.flow_out = Some(out.clone());
    w.run(&mut q, &clock).unwrap();
    let batches: Vec<_> = rx.try_iter().collect();
    let records: Vec<_> = batches.iter().flat_map(|b| &b.records).collect();
    assert_eq!(records.iter().map(|r| r.packets).sum::<u64>(), sent);
    assert_eq!(out.dropped(), crate::flows::Dropped::default());
    assert!(
        batches.len() >= 3,
        "handed on while running: {}",
        batches.len()
    );
    // The ten that stopped left once idle, one record each, before the end.
    let stopped: Vec<_> = records.iter().filter(|r| r.sport < 40_010).collect();
    assert_eq!(stopped.len(), 10);
    assert!(stopped.iter().all(|r| r.packets == 25));
    // The others were exported every 10 s while active: three records each.
    assert_eq!(records.len() - 10, 30, "{records:?}");
}
