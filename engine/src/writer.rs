//! One writer thread per output; workers hand it whole buffers of encoded
//! records (pcap records, monitor lines) over a channel, so no lock is taken
//! per packet.
//!
//! Buffers circulate: a fixed set is allocated up front, workers fill one,
//! send it, and take an empty one back from the pool. When the writer falls
//! behind, workers wait for a buffer; frames then queue in the RX rings and
//! any the kernel cannot hold are counted in `XDP_STATISTICS`.
//!
//! A frame counts as written only once the writer has written its record.
//! Each buffer carries its record count and the counters of the queue that
//! filled it. When a write fails, the records of that buffer that were not
//! written whole, and every record of every later buffer, are counted as
//! lost to the output; a regular file is cut back to its last whole record.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use crate::files::{cut_back, write_all, FileSet, FilesReport, Notices};
use crate::pcapng::Book;
use xsktap_core::config::OutputFormat;
use xsktap_core::reorder::Reorder;
use xsktap_core::stats::OutputCounters;
use xsktap_core::worker::RecordSink;
use xsktap_core::{monitor, pcap, pcapng};

/// Capacity of one record buffer.
pub const BUFFER_CAPACITY: usize = 1 << 20;

/// How records are laid out in a buffer, to find the last whole one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// pcap records (16-byte header with the captured length).
    Pcap,
    /// pcapng Enhanced Packet Blocks.
    Pcapng,
    /// Text lines ending in `\n`.
    Lines,
}

impl Framing {
    /// The records that lie whole in `data`: (count, their original frame
    /// bytes, their length in `data`).
    pub(crate) fn whole(self, data: &[u8]) -> (u64, u64, usize) {
        match self {
            Framing::Pcap => pcap::whole_records(data),
            Framing::Pcapng => pcapng::whole_blocks(data),
            Framing::Lines => {
                let (n, len) = monitor::whole_lines(data);
                (n, 0, len)
            }
        }
    }

    /// The timestamp (ns since the epoch) and original frame length of a
    /// whole record (0 for a line).
    pub(crate) fn time_and_length(self, record: &[u8]) -> (u64, u32) {
        let (time, length) = match self {
            Framing::Pcap => (pcap::record_time(record), pcap::first_record(record)),
            Framing::Pcapng => (pcapng::epb_time(record), pcapng::first_block(record)),
            Framing::Lines => (None, None),
        };
        (time.unwrap_or(0), length.map_or(0, |(_, orig)| orig))
    }

    /// The length of the record that starts `data`, if it lies whole there.
    pub(crate) fn first(self, data: &[u8]) -> Option<usize> {
        match self {
            Framing::Pcap => pcap::first_record(data).map(|(len, _)| len),
            Framing::Pcapng => pcapng::first_block(data).map(|(len, _)| len),
            Framing::Lines => data.iter().position(|&b| b == b'\n').map(|i| i + 1),
        }
    }
}

/// A buffer of records from one worker.
#[derive(Debug)]
struct Batch {
    data: Vec<u8>,
    /// Records in `data`.
    records: u64,
    /// Original bytes of the frames they hold.
    frame_bytes: u64,
    /// The counters of the queue that filled it.
    counters: Option<Arc<OutputCounters>>,
    /// The index of that queue (its pcapng interface id).
    queue: u32,
}

impl Batch {
    fn empty() -> Batch {
        Batch {
            data: Vec::with_capacity(BUFFER_CAPACITY),
            records: 0,
            frame_bytes: 0,
            counters: None,
            queue: 0,
        }
    }

    fn clear(&mut self) {
        self.data.clear();
        self.records = 0;
        self.frame_bytes = 0;
        self.counters = None;
    }
}

/// What the writer thread did.
#[derive(Debug)]
pub struct WriterReport {
    /// The write error that stopped the writer, if any.
    pub error: Option<io::Error>,
    /// The output took nothing for the stop's grace period and was left
    /// behind: the records still queued are counted as lost.
    pub abandoned: bool,
    /// The files written, when the output rotates (`-C`, `-G`).
    pub files: Option<FilesReport>,
    /// With `--sort-window`: records that arrived after a later one was
    /// written (written at once, out of order).
    pub out_of_order: u64,
}

impl WriterReport {
    /// Whether the reader of the output went away (`EPIPE`): for `-w -`
    /// piped into another program this is a normal end, not a failure.
    pub fn reader_closed(&self) -> bool {
        matches!(&self.error, Some(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// A stream the writer thread writes.
pub(crate) struct WriterOutput {
    /// The stream.
    pub out: Box<dyn Write + Send>,
    /// The same file, when it is a regular file that can be cut back.
    pub file: Option<File>,
    /// Bytes already written (the file header).
    pub written: u64,
    /// The statistics a pcapng output keeps.
    pub book: Option<Book>,
}

/// Where a writer writes: one stream, or a capture's rotating files.
pub(crate) enum Destination {
    /// One stream (a file, standard output).
    Stream(WriterOutput),
    /// Files rotated by size or time (`-C`, `-G`).
    Files(Box<FileSet>),
}

impl Destination {
    fn book_mut(&mut self) -> Option<&mut Book> {
        match self {
            Destination::Files(files) => files.book.as_mut(),
            Destination::Stream(output) => output.book.as_mut(),
        }
    }

    /// Writes whole records of queue `queue`; on an error, returns it with
    /// the length of the whole records written. A pcapng output first notes
    /// on the first packet how many frames the queue lost since its previous
    /// one.
    fn write(
        &mut self,
        data: &mut Vec<u8>,
        queue: u32,
        framing: Framing,
    ) -> Result<(), (io::Error, usize)> {
        if let Some(book) = self.book_mut() {
            let drops = book.drops_since(queue as usize);
            if drops > 0 {
                if let Some((len, _)) = pcapng::first_block(data) {
                    if let Some(block) = pcapng::with_dropcount(&data[..len], drops) {
                        data.splice(0..len, block);
                    }
                }
            }
        }
        match self {
            Destination::Files(files) => files.write(data, queue, framing),
            Destination::Stream(output) => {
                let result = write_all(&mut output.out, data);
                let len = match &result {
                    Ok(()) => data.len(),
                    Err((_, done)) => framing.whole(&data[..*done]).2,
                };
                output.written += len as u64;
                if let Some(book) = &mut output.book {
                    book.written(queue as usize, framing.whole(&data[..len]).0);
                }
                match result {
                    Ok(()) => Ok(()),
                    Err((e, _)) => {
                        // A file ends at its last whole record, never in a partial one.
                        if let Some(file) = &output.file {
                            cut_back(file, output.written);
                        }
                        Err((e, len))
                    }
                }
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            Destination::Files(files) => files.deadline(),
            Destination::Stream(_) => None,
        }
    }

    fn tick(&mut self) -> io::Result<()> {
        match self {
            Destination::Files(files) => files.tick().map_err(|e| io::Error::other(e.to_string())),
            Destination::Stream(_) => Ok(()),
        }
    }

    /// Flushes and closes; reports the files of a rotating output.
    fn finish(self) -> (Option<FilesReport>, io::Result<()>) {
        match self {
            Destination::Files(files) => {
                let (report, error) = files.finish();
                let result = match error {
                    Some(e) => Err(io::Error::other(e.to_string())),
                    None => Ok(()),
                };
                (Some(report), result)
            }
            Destination::Stream(mut output) => {
                // A pcapng file ends with each queue's statistics.
                let trailer = output.book.as_mut().map(Book::close_file);
                let result = match trailer {
                    Some(t) => write_all(&mut output.out, &t).map_err(|(e, _)| e),
                    None => Ok(()),
                };
                (None, result.and_then(|()| output.out.flush()))
            }
        }
    }
}

/// A record held for ordering (`--sort-window`).
struct Held {
    queue: u32,
    counters: Option<Arc<OutputCounters>>,
    orig_len: u32,
    bytes: Vec<u8>,
}

/// Holds every record of `batch` for ordering.
fn hold(r: &mut Reorder<Held>, batch: &Batch, framing: Framing) {
    let mut at = 0;
    while let Some(len) = framing.first(&batch.data[at..]) {
        let record = &batch.data[at..at + len];
        let (ts, orig_len) = framing.time_and_length(record);
        r.push(
            ts,
            Held {
                queue: batch.queue,
                counters: batch.counters.clone(),
                orig_len,
                bytes: record.to_vec(),
            },
        );
        at += len;
    }
}

/// Writes the records due at `now_ns`, in order, a run of one queue's at a time.
fn release(r: &mut Reorder<Held>, now_ns: u64, state: &mut WriterState) {
    let mut due: Vec<Held> = Vec::new();
    r.release(now_ns, |_, h| due.push(h));
    let mut i = 0;
    while i < due.len() {
        let queue = due[i].queue;
        let mut data = Vec::new();
        let (mut records, mut bytes) = (0, 0);
        let counters = due[i].counters.clone();
        while i < due.len() && due[i].queue == queue {
            data.extend_from_slice(&due[i].bytes);
            records += 1;
            bytes += u64::from(due[i].orig_len);
            i += 1;
        }
        state.write(&mut data, records, bytes, queue, counters.as_ref());
    }
}

/// The writer thread's state.
struct WriterState {
    output: Destination,
    framing: Framing,
    report: WriterReport,
    /// `--on-disk-full drop-and-count` is dropping.
    dropping: bool,
    disk_full: DiskFull,
    failed_flag: Arc<AtomicBool>,
    left_behind: Arc<AtomicBool>,
}

impl WriterState {
    fn fail(&mut self, e: io::Error) {
        self.report.error = Some(e);
        self.failed_flag.store(true, Ordering::Relaxed);
    }

    /// Ends a period, opens the next file ahead.
    fn tick(&mut self) {
        if let Err(e) = self.output.tick() {
            self.fail(e);
        }
    }

    /// Writes `records` whole records of queue `queue` (`frame_bytes` of
    /// original frames), counting them written or lost into `counters`.
    fn write(
        &mut self,
        data: &mut Vec<u8>,
        records: u64,
        frame_bytes: u64,
        queue: u32,
        counters: Option<&Arc<OutputCounters>>,
    ) {
        let left_behind = self.left_behind.load(Ordering::Relaxed);
        let count = |written: u64, bytes: u64, lost: u64| {
            if left_behind {
                return;
            }
            if let Some(c) = counters {
                c.written.fetch_add(written, Ordering::Relaxed);
                c.written_bytes.fetch_add(bytes, Ordering::Relaxed);
                c.failed.fetch_add(lost, Ordering::Relaxed);
            }
        };
        if self.report.error.is_some() {
            count(0, 0, records);
            if let Some(book) = self.output.book_mut() {
                book.failed(queue as usize, records);
            }
            return;
        }
        match self.output.write(data, queue, self.framing) {
            Ok(()) => {
                count(records, frame_bytes, 0);
                if self.dropping {
                    self.dropping = false;
                    self.disk_full
                        .notices
                        .push("there is room again: writing frames again".to_string());
                }
            }
            Err((e, len)) => {
                let (whole, bytes, _) = self.framing.whole(&data[..len]);
                // A note (records 0) holds lines that are not records.
                let whole = whole.min(records);
                count(whole, bytes, records - whole);
                if let Some(book) = self.output.book_mut() {
                    book.failed(queue as usize, records - whole);
                }
                if self.disk_full.drop_and_count && xsktap_sys::output::is_disk_full(&e) {
                    // Counted; the next buffer tries again.
                    if !self.dropping {
                        self.dropping = true;
                        self.disk_full.notices.push(format!(
                            "{e}: dropping and counting frames until there is room (--on-disk-full drop-and-count)"
                        ));
                    }
                } else {
                    self.fail(e);
                }
            }
        }
    }
}

/// What a writer does when the disk is full.
#[derive(Debug, Clone, Default)]
pub(crate) struct DiskFull {
    /// Count what cannot be written and go on (`--on-disk-full drop-and-count`).
    pub drop_and_count: bool,
    /// Where it says so.
    pub notices: Arc<Notices>,
}

/// The writer thread and the channels workers use to reach it.
#[derive(Debug)]
pub struct BatchWriter {
    full_tx: Sender<Batch>,
    pool_rx: Receiver<Batch>,
    snaplen: u32,
    framing: Framing,
    failed: Arc<AtomicBool>,
    /// Set when the stop leaves the writer behind: from then on it counts
    /// nothing, so that what was counted lost is never also counted written.
    abandoned: Arc<AtomicBool>,
    thread: JoinHandle<WriterReport>,
}

impl BatchWriter {
    /// Starts a pcap writer on `output` (its file header already written),
    /// with `buffers` record buffers in circulation, its thread confined to
    /// `cpus` (anywhere if empty).
    pub(crate) fn pcap(
        output: Destination,
        format: OutputFormat,
        snaplen: u32,
        buffers: usize,
        cpus: &[usize],
        disk_full: DiskFull,
        sort_window_ns: u64,
    ) -> io::Result<Self> {
        let framing = match format {
            OutputFormat::Pcap => Framing::Pcap,
            OutputFormat::Pcapng => Framing::Pcapng,
        };
        Self::spawn(
            output,
            framing,
            snaplen,
            buffers,
            cpus.to_vec(),
            disk_full,
            sort_window_ns,
        )
    }

    /// Starts a writer of text lines on `output`, its thread confined to `cpus`.
    pub(crate) fn lines(output: WriterOutput, buffers: usize, cpus: &[usize]) -> io::Result<Self> {
        Self::spawn(
            Destination::Stream(output),
            Framing::Lines,
            0,
            buffers,
            cpus.to_vec(),
            DiskFull::default(),
            0,
        )
    }

    fn spawn(
        output: Destination,
        framing: Framing,
        snaplen: u32,
        buffers: usize,
        cpus: Vec<usize>,
        disk_full: DiskFull,
        sort_window_ns: u64,
    ) -> io::Result<Self> {
        let (full_tx, full_rx) = bounded::<Batch>(buffers);
        let (pool_tx, pool_rx) = bounded::<Batch>(buffers);
        for _ in 0..buffers {
            pool_tx
                .send(Batch::empty())
                .expect("pool has room for every buffer");
        }
        let failed = Arc::new(AtomicBool::new(false));
        let failed_flag = failed.clone();
        let abandoned = Arc::new(AtomicBool::new(false));
        let left_behind = abandoned.clone();
        let thread = std::thread::Builder::new()
            .name("xsktap-writer".into())
            .spawn(move || {
                if !cpus.is_empty() {
                    // Off the workers' CPUs; if that fails the writer runs anywhere.
                    let _ = xsktap_sys::cpu::pin_current_thread(&cpus);
                }
                let mut state = WriterState {
                    output,
                    framing,
                    report: WriterReport {
                        error: None,
                        abandoned: false,
                        files: None,
                        out_of_order: 0,
                    },
                    dropping: false,
                    disk_full,
                    failed_flag,
                    left_behind,
                };
                let mut reorder =
                    (sort_window_ns > 0).then(|| Reorder::<Held>::new(sort_window_ns));
                // Opens the next file ahead, off the workers' path.
                state.tick();
                // Ends when every worker has dropped its sender; after a
                // failure it goes on taking buffers, to count their records.
                loop {
                    let sort_tick = reorder
                        .as_ref()
                        .filter(|r| !r.is_empty())
                        .map(|_| Instant::now() + Duration::from_nanos(sort_window_ns / 2 + 1));
                    let deadline = match (state.output.deadline(), sort_tick) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    let next = match deadline {
                        Some(deadline) if state.report.error.is_none() => {
                            full_rx.recv_deadline(deadline)
                        }
                        _ => full_rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    };
                    match next {
                        Ok(mut batch) => {
                            match &mut reorder {
                                Some(r) => hold(r, &batch, framing),
                                None => {
                                    let counters = batch.counters.take();
                                    let (records, bytes, queue) =
                                        (batch.records, batch.frame_bytes, batch.queue);
                                    state.write(
                                        &mut batch.data,
                                        records,
                                        bytes,
                                        queue,
                                        counters.as_ref(),
                                    );
                                }
                            }
                            batch.clear();
                            // The pool has room for every buffer, so this never blocks.
                            let _ = pool_tx.try_send(batch);
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                        // A period ended with nothing to write: rotate anyway.
                        Err(RecvTimeoutError::Timeout) => state.tick(),
                    }
                    if let Some(r) = &mut reorder {
                        release(r, xsktap_sys::clock::wall_ns(), &mut state);
                    }
                }
                if let Some(r) = &mut reorder {
                    release(r, u64::MAX, &mut state);
                    state.report.out_of_order = r.out_of_order();
                }
                let WriterState {
                    output, mut report, ..
                } = state;
                let (files, closed) = output.finish();
                report.files = files;
                if let (None, Err(e)) = (&report.error, closed) {
                    report.error = Some(e);
                }
                report
            })?;
        Ok(BatchWriter {
            full_tx,
            pool_rx,
            snaplen,
            framing,
            failed,
            abandoned,
            thread,
        })
    }

    /// A handle for the worker of queue index `queue`, counting into `counters`.
    pub fn batcher(&self, counters: Arc<OutputCounters>, queue: u32) -> RecordBatcher {
        RecordBatcher {
            pcapng: self.framing == Framing::Pcapng,
            queue,
            current: Batch::empty(),
            full_tx: Some(self.full_tx.clone()),
            pool_rx: self.pool_rx.clone(),
            failed: self.failed.clone(),
            counters,
            snaplen: self.snaplen,
        }
    }

    /// Hands `bytes` (whole lines of its own, not records) to the writer,
    /// between the workers' buffers; false when the writer's queue is full
    /// or it has stopped (the caller counts it).
    pub fn note(&self, bytes: Vec<u8>) -> bool {
        self.full_tx
            .try_send(Batch {
                data: bytes,
                records: 0,
                frame_bytes: 0,
                counters: None,
                queue: 0,
            })
            .is_ok()
    }

    /// Whether a write failed (the output is full, broken or gone).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Waits until `deadline` for the writer to write everything the workers
    /// sent. Call after every [`RecordBatcher`] has been dropped. A writer
    /// still blocked at the deadline (a reader that takes nothing) is left
    /// behind: its report says so, and what it did not write stays counted
    /// as not written.
    pub fn finish(self, deadline: Instant) -> WriterReport {
        drop(self.full_tx);
        drop(self.pool_rx);
        while !self.thread.is_finished() {
            if Instant::now() >= deadline {
                self.abandoned.store(true, Ordering::Relaxed);
                return WriterReport {
                    files: None,
                    out_of_order: 0,
                    error: Some(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the output took nothing more before the stop's deadline",
                    )),
                    abandoned: true,
                };
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.thread.join().unwrap_or_else(|_| WriterReport {
            files: None,
            out_of_order: 0,
            error: Some(io::Error::other("the writer thread panicked")),
            abandoned: false,
        })
    }
}

/// A worker's end of the writer: encodes records into the current buffer.
#[derive(Debug)]
pub struct RecordBatcher {
    /// Enhanced Packet Blocks instead of pcap records.
    pcapng: bool,
    /// The queue's index: its pcapng interface id.
    queue: u32,
    current: Batch,
    full_tx: Option<Sender<Batch>>,
    pool_rx: Receiver<Batch>,
    failed: Arc<AtomicBool>,
    counters: Arc<OutputCounters>,
    snaplen: u32,
}

impl RecordSink for RecordBatcher {
    #[inline(always)]
    fn push(&mut self, ts_ns: u64, frame: &[u8], stop: &AtomicBool) -> bool {
        self.push_of(ts_ns, frame, frame.len(), stop)
    }

    #[inline(always)]
    fn push_of(&mut self, ts_ns: u64, frame: &[u8], orig_len: usize, stop: &AtomicBool) -> bool {
        let need = if self.pcapng {
            pcapng::epb_len(frame.len(), self.snaplen)
        } else {
            pcap::record_len(frame.len(), self.snaplen)
        };
        if self.current.data.capacity() - self.current.data.len() < need && !self.rotate(stop) {
            return false;
        }
        let out = &mut self.current.data;
        if self.pcapng {
            pcapng::append_epb_of(out, self.queue, ts_ns, frame, orig_len, self.snaplen);
        } else {
            pcap::append_record_of(out, ts_ns, frame, orig_len, self.snaplen);
        }
        self.current.records += 1;
        self.current.frame_bytes += orig_len.max(frame.len()) as u64;
        true
    }

    #[inline(always)]
    fn push_with(
        &mut self,
        max_len: usize,
        stop: &AtomicBool,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> bool {
        if self.current.data.capacity() - self.current.data.len() < max_len && !self.rotate(stop) {
            return false;
        }
        write(&mut self.current.data);
        self.current.records += 1;
        true
    }

    fn flush(&mut self) {
        if self.current.records > 0 {
            let batch = std::mem::replace(
                &mut self.current,
                Batch {
                    data: Vec::new(),
                    records: 0,
                    frame_bytes: 0,
                    counters: None,
                    queue: 0,
                },
            );
            self.send(batch);
        }
    }

    fn has_pending(&self) -> bool {
        self.current.records > 0
    }
}

impl RecordBatcher {
    fn send(&mut self, mut batch: Batch) {
        batch.counters = Some(self.counters.clone());
        batch.queue = self.queue;
        let records = batch.records;
        let sent = self
            .full_tx
            .as_ref()
            .is_some_and(|tx| tx.send(batch).is_ok());
        if !sent {
            // The writer is gone (it panicked): these records are not written.
            self.full_tx = None;
            self.counters.failed.fetch_add(records, Ordering::Relaxed);
        }
    }

    /// Sends the current buffer and takes an empty one from the pool, waiting
    /// for the writer if needed (but not past `stop`). Returns `false` once
    /// the output has failed.
    #[cold]
    fn rotate(&mut self, stop: &AtomicBool) -> bool {
        self.flush();
        loop {
            if self.full_tx.is_none() || self.failed.load(Ordering::Relaxed) {
                return false;
            }
            if stop.load(Ordering::Relaxed) {
                // Stopping: take a free buffer if there is one, never wait
                // (a wait per refused frame made a stop on a stalled output
                // take 50 ms per frame of the batch).
                return match self.pool_rx.try_recv() {
                    Ok(batch) => {
                        self.current = batch;
                        true
                    }
                    Err(_) => false,
                };
            }
            match self.pool_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(batch) => {
                    self.current = batch;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that takes `room` bytes, then fails.
    struct Full {
        room: usize,
        taken: Arc<std::sync::Mutex<Vec<u8>>>,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::other("no space left"));
            }
            let n = buf.len().min(self.room).min(1000);
            self.room -= n;
            self.taken.lock().unwrap().extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_counts_every_record_once() {
        let taken = Arc::new(std::sync::Mutex::new(Vec::new()));
        let out = Full {
            room: 50_000,
            taken: taken.clone(),
        };
        let writer = BatchWriter::pcap(
            Destination::Stream(WriterOutput {
                out: Box::new(out),
                file: None,
                written: 0,
                book: None,
            }),
            OutputFormat::Pcap,
            65535,
            4,
            &[],
            DiskFull::default(),
            0,
        )
        .unwrap();
        let counters = Arc::new(OutputCounters::default());
        let mut batcher = writer.batcher(counters.clone(), 0);
        let stop = AtomicBool::new(false);
        let frame = [7u8; 84];
        let mut accepted = 0u64;
        let mut refused = 0u64;
        for i in 0..40_000u64 {
            if batcher.push(i, &frame, &stop) {
                accepted += 1;
            } else {
                refused += 1;
            }
            if i % 500 == 0 {
                batcher.flush();
            }
        }
        drop(batcher);
        let report = writer.finish(Instant::now() + Duration::from_secs(10));
        assert!(report.error.is_some());
        let written = counters.written.load(Ordering::Relaxed);
        let failed = counters.failed.load(Ordering::Relaxed);
        assert_eq!(
            written + failed,
            accepted,
            "every accepted record counted once"
        );
        assert_eq!(written, 50_000 / 100, "whole records in 50,000 bytes");
        assert!(taken.lock().unwrap().len() >= written as usize * 100);
        assert!(refused > 0, "pushes are refused once the output failed");
    }
}
