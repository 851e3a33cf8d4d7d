//! What a pcapng output says beyond its packets: the section header and one
//! interface per captured queue at the start of every file, the drops of a
//! queue since its previous packet (`epb_dropcount`), and each queue's
//! statistics when a file closes (Interface Statistics Blocks).
//!
//! The writer thread keeps the book. Socket drops it reads itself
//! (`XDP_STATISTICS`, once per buffer of records); the XDP program's counters
//! and the workers' it takes from the [`Ledger`] the capture refreshes on
//! every snapshot (at least once a second) and once more at the stop, after
//! the workers have ended. A file's statistics are the differences between
//! the readings at its opening and at its closing, so they add up over the
//! files of a capture to the final counters, exactly; a rotation may
//! attribute frames lost in the second before it to the next file.

use std::sync::{Arc, Mutex};

use xsktap_core::pcapng::{self, Interface, Statistics};
use xsktap_sys::xsk::XskStatsHandle;

/// The capture's counters per queue (in the order of the interfaces), as
/// last read; `None` until a read succeeded.
#[derive(Debug, Default)]
pub(crate) struct Ledger(Mutex<Vec<Option<LedgerEntry>>>);

/// One queue's counters in the [`Ledger`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LedgerEntry {
    /// Frames the XDP program saw.
    pub seen: u64,
    /// Frames it redirected (the filter accepted).
    pub redirected: u64,
    /// Redirects that failed.
    pub redirect_failed: u64,
    /// Frames the worker took but its sink refused (the output had failed).
    pub refused: u64,
}

impl Ledger {
    /// Records the counters of queue index `i`.
    pub fn set(&self, i: usize, entry: LedgerEntry) {
        if let Ok(mut v) = self.0.lock() {
            if v.len() <= i {
                v.resize(i + 1, None);
            }
            v[i] = Some(entry);
        }
    }

    fn get(&self, i: usize) -> Option<LedgerEntry> {
        self.0.lock().ok().and_then(|v| v.get(i).copied().flatten())
    }
}

/// The header of every pcapng file of a capture: the section and one
/// interface per queue.
pub(crate) fn file_header(interfaces: &[Interface]) -> Vec<u8> {
    let mut h = pcapng::section_header(
        &xsktap_sys::netdev::os_release(),
        concat!("xsktap ", env!("CARGO_PKG_VERSION")),
    );
    for i in interfaces {
        h.extend(pcapng::interface_description(i));
    }
    h
}

#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    seen: Option<u64>,
    accepted: Option<u64>,
    if_drop: Option<u64>,
    os_drop: Option<u64>,
}

impl Reading {
    /// Counters start at zero.
    const ZERO: Reading = Reading {
        seen: Some(0),
        accepted: Some(0),
        if_drop: Some(0),
        os_drop: Some(0),
    };
}

/// The writer's book of a pcapng output.
pub(crate) struct Book {
    ledger: Arc<Ledger>,
    sockets: Vec<XskStatsHandle>,
    /// Socket drops (rx_dropped + rx_ring_full) per queue at its previous packet.
    last_socket_drops: Vec<u64>,
    /// Frames the writer could not write, per queue.
    failed: Vec<u64>,
    /// Frames written to the current file, per queue.
    in_file: Vec<u64>,
    /// Readings when the current file opened.
    base: Vec<Reading>,
    file_start_ns: u64,
}

impl Book {
    /// A book for `sockets.len()` queues.
    pub fn new(ledger: Arc<Ledger>, sockets: Vec<XskStatsHandle>) -> Book {
        let n = sockets.len();
        Book {
            ledger,
            sockets,
            last_socket_drops: vec![0; n],
            failed: vec![0; n],
            in_file: vec![0; n],
            base: vec![Reading::ZERO; n],
            file_start_ns: xsktap_sys::clock::wall_ns(),
        }
    }

    fn socket_drops(&self, q: usize) -> Option<u64> {
        let s = self.sockets.get(q)?.stats().ok()?;
        Some(s.rx_dropped + s.rx_ring_full)
    }

    /// Frames queue `q` lost at its socket since the previous call for it.
    pub fn drops_since(&mut self, q: usize) -> u64 {
        let Some(now) = self.socket_drops(q) else {
            return 0;
        };
        let last = std::mem::replace(&mut self.last_socket_drops[q], now);
        now.saturating_sub(last)
    }

    /// `n` frames of queue `q` written to the current file.
    pub fn written(&mut self, q: usize, n: u64) {
        if let Some(c) = self.in_file.get_mut(q) {
            *c += n;
        }
    }

    /// `n` frames of queue `q` not written (the output failed).
    pub fn failed(&mut self, q: usize, n: u64) {
        if let Some(c) = self.failed.get_mut(q) {
            *c += n;
        }
    }

    fn reading(&self, q: usize) -> Reading {
        let l = self.ledger.get(q);
        Reading {
            seen: l.map(|l| l.seen),
            accepted: l.map(|l| l.redirected),
            if_drop: self
                .socket_drops(q)
                .zip(l)
                .map(|(s, l)| s + l.redirect_failed),
            os_drop: l.map(|l| l.refused + self.failed[q]),
        }
    }

    /// The statistics blocks that close the current file, one per queue;
    /// the next file counts from here.
    pub fn close_file(&mut self) -> Vec<u8> {
        let now = xsktap_sys::clock::wall_ns();
        let mut out = Vec::new();
        for q in 0..self.sockets.len() {
            let r = self.reading(q);
            let b = &mut self.base[q];
            // An unknown reading leaves its count out of this file, and the
            // next file counts from the last known one: the sums stay exact.
            let delta = |now: Option<u64>, base: &mut Option<u64>| {
                let d = now.zip(*base).map(|(n, b)| n.saturating_sub(b));
                *base = now.or(*base);
                d
            };
            let stats = Statistics {
                start_ns: self.file_start_ns,
                end_ns: now,
                if_recv: delta(r.seen, &mut b.seen),
                if_drop: delta(r.if_drop, &mut b.if_drop),
                filter_accept: delta(r.accepted, &mut b.accepted),
                os_drop: delta(r.os_drop, &mut b.os_drop),
                user_delivered: std::mem::take(&mut self.in_file[q]),
            };
            out.extend(pcapng::interface_statistics(q as u32, now, &stats));
        }
        self.file_start_ns = now;
        out
    }
}
