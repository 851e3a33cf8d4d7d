//! Moves the capture's threads off the CPUs where its queues' frames are
//! received, once frames show where that is (see
//! `xsktap_core::placement`): the XDP program's per-CPU counters, read
//! five times a second on a housekeeping thread; never a cost to the workers.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xsktap_core::placement::{Placement, Rebalancer};
use xsktap_sys::loader::CpuCounts;

use crate::background::{nap, stopping, Background};
use crate::files::Notices;
use crate::Result;

/// How often the counters are read: a capture started into a flood moves
/// within this (one map read per queue; nothing the workers see).
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// Where each queue's worker runs and where housekeeping belongs, as the
/// placer last decided (read by the snapshot and the caller).
#[derive(Debug)]
pub(crate) struct Current {
    pub cores: Vec<Arc<AtomicUsize>>,
    pub housekeeping: Mutex<Vec<usize>>,
}

/// The running placer; dropping it stops it.
pub(crate) struct Placer {
    _thread: Background,
}

impl Placer {
    /// Watches the queues of `placement` (workers already started, each on
    /// a thread named `xsktap-qN`) within the `allowed` CPUs.
    pub(crate) fn start(
        placement: &Placement,
        allowed: &[usize],
        counts: CpuCounts,
        current: Arc<Current>,
        notices: &Arc<Notices>,
    ) -> Result<Placer> {
        let mut rebalancer = Rebalancer::new(placement, allowed);
        let queues = placement.queues.clone();
        let notices = notices.clone();
        let cpus = placement.housekeeping.clone();
        let thread = Background::spawn("xsktap-placer", &cpus, move |stop| {
            watch(&mut rebalancer, &queues, &counts, &current, stop, &notices)
        })?;
        Ok(Placer { _thread: thread })
    }
}

fn watch(
    rebalancer: &mut Rebalancer,
    queues: &[u32],
    counts: &CpuCounts,
    current: &Current,
    stop: &AtomicBool,
    notices: &Notices,
) {
    let start = Instant::now();
    while !stopping(stop) {
        let seen: Option<Vec<Vec<u64>>> =
            queues.iter().map(|&q| counts.redirected(q).ok()).collect();
        let Some(seen) = seen else {
            return; // the map is gone: the capture is ending
        };
        let now_ns = start.elapsed().as_nanos() as u64;
        if let Some(plan) = rebalancer.observe(now_ns, &seen, queues) {
            match move_threads(queues, &plan.cores, &plan.housekeeping) {
                Ok(()) => notices.push(format!("placement: {}", plan.reason)),
                Err(e) => notices.push(format!("placement: {} (but: {e})", plan.reason)),
            }
            for (slot, &core) in current.cores.iter().zip(&plan.cores) {
                slot.store(core, Ordering::Relaxed);
            }
            if let Ok(mut h) = current.housekeeping.lock() {
                *h = plan.housekeeping;
            }
        }
        nap(LOOK_EVERY);
    }
}

/// Pins each queue's worker thread (`xsktap-qN`) to its CPU and every
/// other thread of this process named `xsktap…` (the reporter, writers,
/// server, this one) to the housekeeping CPUs. Threads of an embedding
/// program with other names are left alone.
fn move_threads(queues: &[u32], cores: &[usize], housekeeping: &[usize]) -> std::io::Result<()> {
    let mut first_error = None;
    for (tid, name) in xsktap_sys::cpu::threads_named("xsktap") {
        let worker = queues.iter().position(|q| name == format!("xsktap-q{q}"));
        let result = match worker {
            Some(i) => xsktap_sys::cpu::pin_thread(tid, &cores[i..=i]),
            None => xsktap_sys::cpu::pin_thread(tid, housekeeping),
        };
        if let Err(e) = result {
            first_error.get_or_insert(std::io::Error::other(format!("thread {name}: {e}")));
        }
    }
    first_error.map_or(Ok(()), Err)
}
