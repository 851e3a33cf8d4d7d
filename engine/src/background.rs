//! A housekeeping thread that runs until its owner drops it: the clock
//! keeper, the rerequester and the messages writer are one each.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use xsktap_sys::error::syscall_error;

use crate::Result;

/// The running thread; dropping it tells it to stop, wakes it and waits.
pub(crate) struct Background {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Runs `run` on a thread named `name` pinned to `cpus` (the
    /// housekeeping CPUs); `run` returns once its flag is set, waiting
    /// between rounds with [`nap`] so that a stop wakes it at once.
    pub(crate) fn spawn(
        name: &str,
        cpus: &[usize],
        run: impl FnOnce(&AtomicBool) + Send + 'static,
    ) -> Result<Background> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, cpus) = (stop.clone(), cpus.to_vec());
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    let _ = xsktap_sys::cpu::pin_current_thread(&cpus);
                    run(&stop);
                })
                .map_err(|e| syscall_error("spawn(housekeeping thread)", e))?
        };
        Ok(Background {
            stop,
            thread: Some(thread),
        })
    }
}

/// Waits `d`, or less when the thread's owner stops it.
pub(crate) fn nap(d: Duration) {
    std::thread::park_timeout(d);
}

/// Whether the thread's owner asked it to stop.
pub(crate) fn stopping(stop: &AtomicBool) -> bool {
    stop.load(Ordering::Relaxed)
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
