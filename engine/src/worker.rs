//! The thin driver of a worker thread: pin it, then run the core's loop over
//! the real socket and clocks.

use xsktap_core::worker::Worker;
use xsktap_sys::clock::SystemClock;
use xsktap_sys::xsk::XskSocket;

use crate::error_worker;
use crate::writer::RecordBatcher;
use crate::Result;

/// One queue's worker, moved onto its own thread by [`QueueWorker::run`].
pub(crate) struct QueueWorker {
    pub queue: u32,
    pub core: usize,
    pub socket: XskSocket,
    pub worker: Worker<RecordBatcher>,
}

impl QueueWorker {
    /// Pins the thread to the worker's CPU and drains the queue until told to stop.
    pub fn run(mut self) -> Result<()> {
        xsktap_sys::cpu::pin_to(self.core).map_err(|e| error_worker(self.queue, e))?;
        self.worker
            .run(&mut self.socket, &SystemClock)
            .map_err(|e| error_worker(self.queue, format!("poll(AF_XDP) failed: {e}")))
    }
}
