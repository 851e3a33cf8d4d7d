//! One writer thread per output; workers hand it whole buffers of encoded
//! records (pcap records, monitor lines) over a channel, so no lock is taken
//! per packet.
//!
//! Buffers circulate: a fixed set is allocated up front, workers fill one,
//! send it, and take an empty one back from the pool. When the writer falls
//! behind, workers wait for a buffer; frames then queue in the RX rings and
//! any the kernel cannot hold are counted in `XDP_STATISTICS`.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use xsktap_core::pcap;
use xsktap_core::worker::RecordSink;

/// Capacity of one record buffer.
pub const BUFFER_CAPACITY: usize = 1 << 20;

/// What the writer thread did.
#[derive(Debug)]
pub struct WriterReport {
    /// Bytes written, file header included.
    pub bytes: u64,
    /// The write error that stopped the writer, if any.
    pub error: Option<io::Error>,
}

impl WriterReport {
    /// Whether the reader of the output went away (`EPIPE`): for `-w -`
    /// piped into another program this is a normal end, not a failure.
    pub fn reader_closed(&self) -> bool {
        matches!(&self.error, Some(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// The writer thread and the channels workers use to reach it.
#[derive(Debug)]
pub struct BatchWriter {
    full_tx: Sender<Vec<u8>>,
    pool_rx: Receiver<Vec<u8>>,
    snaplen: u32,
    thread: JoinHandle<WriterReport>,
}

impl BatchWriter {
    /// Starts a pcap writer on `out`, with `buffers` record buffers in
    /// circulation, its thread confined to `cpus` (anywhere if empty). The
    /// file header is the first thing written.
    pub fn pcap(
        out: Box<dyn Write + Send>,
        snaplen: u32,
        buffers: usize,
        cpus: &[usize],
    ) -> io::Result<Self> {
        let header = pcap::file_header(snaplen).to_vec();
        Self::spawn(out, header, snaplen, buffers, cpus.to_vec())
    }

    /// Starts a writer of text lines on `out`, its thread confined to `cpus`.
    pub fn lines(out: Box<dyn Write + Send>, buffers: usize, cpus: &[usize]) -> io::Result<Self> {
        Self::spawn(out, Vec::new(), 0, buffers, cpus.to_vec())
    }

    fn spawn(
        mut out: Box<dyn Write + Send>,
        header: Vec<u8>,
        snaplen: u32,
        buffers: usize,
        cpus: Vec<usize>,
    ) -> io::Result<Self> {
        let (full_tx, full_rx) = bounded::<Vec<u8>>(buffers);
        let (pool_tx, pool_rx) = bounded::<Vec<u8>>(buffers);
        for _ in 0..buffers {
            pool_tx
                .send(Vec::with_capacity(BUFFER_CAPACITY))
                .expect("pool has room for every buffer");
        }
        let thread = std::thread::Builder::new()
            .name("xsktap-writer".into())
            .spawn(move || {
                if !cpus.is_empty() {
                    // Off the workers' CPUs; if that fails the writer runs anywhere.
                    let _ = xsktap_sys::cpu::pin_current_thread(&cpus);
                }
                let mut report = WriterReport {
                    bytes: 0,
                    error: None,
                };
                if let Err(e) = out.write_all(&header) {
                    report.error = Some(e);
                    return report;
                }
                report.bytes += header.len() as u64;
                // Ends when every worker has dropped its sender.
                for mut buf in full_rx.iter() {
                    if let Err(e) = out.write_all(&buf) {
                        report.error = Some(e);
                        return report;
                    }
                    report.bytes += buf.len() as u64;
                    buf.clear();
                    // The pool has room for every buffer, so this never blocks.
                    let _ = pool_tx.try_send(buf);
                }
                if let Err(e) = out.flush() {
                    report.error = Some(e);
                }
                report
            })?;
        Ok(BatchWriter {
            full_tx,
            pool_rx,
            snaplen,
            thread,
        })
    }

    /// A handle for one worker.
    pub fn batcher(&self) -> RecordBatcher {
        RecordBatcher {
            current: Vec::new(),
            full_tx: Some(self.full_tx.clone()),
            pool_rx: self.pool_rx.clone(),
            snaplen: self.snaplen,
        }
    }

    /// Waits for the writer to write everything the workers sent. Call after
    /// every [`RecordBatcher`] has been dropped.
    pub fn finish(self) -> WriterReport {
        drop(self.full_tx);
        drop(self.pool_rx);
        self.thread.join().unwrap_or_else(|_| WriterReport {
            bytes: 0,
            error: Some(io::Error::other("the writer thread panicked")),
        })
    }
}

/// A worker's end of the writer: encodes records into the current buffer.
#[derive(Debug)]
pub struct RecordBatcher {
    current: Vec<u8>,
    full_tx: Option<Sender<Vec<u8>>>,
    pool_rx: Receiver<Vec<u8>>,
    snaplen: u32,
}

impl RecordSink for RecordBatcher {
    #[inline(always)]
    fn push(&mut self, ts_ns: u64, frame: &[u8], stop: &AtomicBool) -> bool {
        let need = pcap::record_len(frame.len(), self.snaplen);
        if self.current.capacity() - self.current.len() < need && !self.rotate(stop) {
            return false;
        }
        pcap::append_record(&mut self.current, ts_ns, frame, self.snaplen);
        true
    }

    #[inline(always)]
    fn push_with(
        &mut self,
        max_len: usize,
        stop: &AtomicBool,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> bool {
        if self.current.capacity() - self.current.len() < max_len && !self.rotate(stop) {
            return false;
        }
        write(&mut self.current);
        true
    }

    fn flush(&mut self) {
        if !self.current.is_empty() {
            let buf = std::mem::take(&mut self.current);
            self.send(buf);
        }
    }

    fn has_pending(&self) -> bool {
        !self.current.is_empty()
    }
}

impl RecordBatcher {
    fn send(&mut self, buf: Vec<u8>) {
        if let Some(tx) = &self.full_tx {
            if tx.send(buf).is_err() {
                self.full_tx = None;
            }
        }
    }

    /// Sends the current buffer and takes an empty one from the pool, waiting
    /// for the writer if needed (but not past `stop`).
    #[cold]
    fn rotate(&mut self, stop: &AtomicBool) -> bool {
        self.flush();
        loop {
            if self.full_tx.is_none() {
                return false;
            }
            match self.pool_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(buf) => {
                    self.current = buf;
                    return true;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.full_tx = None;
                    return false;
                }
                Err(RecvTimeoutError::Timeout) => {
                    if stop.load(Ordering::Relaxed) {
                        return false;
                    }
                }
            }
        }
    }
}

impl Drop for RecordBatcher {
    fn drop(&mut self) {
        self.flush();
    }
}
