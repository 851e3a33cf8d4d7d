//! The receive path without a NIC: a heap UMEM whose "kernel" side
//! delivers 64 frames, then the worker's `recv` (the same `RxRings` code a
//! socket runs: RX ring, free stack, fill ring) with the core's per-frame
//! step (parse, counters, flows, stamp, pcap record) on each frame.
//!
//! Run: `cargo bench -p xsktap-sys --bench recv`. Results of runs are kept in
//! `bench/runs/*/recv.md`.

use std::hint::black_box;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use xsktap_core::flows::FlowTable;
use xsktap_core::latency::LatencyStats;
use xsktap_core::pcap;
use xsktap_core::worker::{FrameStep, RecordSink, RxQueue};
use xsktap_sys::xsk::testing::HeapQueue;

/// pcap records into one buffer, reused: the writer's side is not measured.
struct VecSink(Vec<u8>);

impl RecordSink for VecSink {
    fn push(&mut self, ts_ns: u64, frame: &[u8], _stop: &AtomicBool) -> bool {
        if self.0.len() > 1 << 20 {
            self.0.clear();
        }
        pcap::append_record(&mut self.0, ts_ns, frame, 262_144);
        true
    }
    fn push_with(&mut self, _: usize, _: &AtomicBool, write: impl FnOnce(&mut Vec<u8>)) -> bool {
        write(&mut self.0);
        true
    }
    fn flush(&mut self) {
        self.0.clear();
    }
    fn has_pending(&self) -> bool {
        !self.0.is_empty()
    }
}

/// 64-byte IPv4/UDP frames over 64 flows.
fn frames() -> Vec<Vec<u8>> {
    (0..64u8)
        .map(|i| {
            let mut f = vec![0u8; 64];
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            f[14] = 0x45;
            f[16..18].copy_from_slice(&50u16.to_be_bytes());
            f[22] = 64;
            f[23] = 17;
            f[26..30].copy_from_slice(&[198, 18, 0, i]);
            f[30..34].copy_from_slice(&[198, 18, 1, 1]);
            f[34..36].copy_from_slice(&(40000 + u16::from(i)).to_be_bytes());
            f[36..38].copy_from_slice(&53u16.to_be_bytes());
            f[38..40].copy_from_slice(&30u16.to_be_bytes());
            f
        })
        .collect()
}

fn recv(c: &mut Criterion) {
    let frames = frames();
    let mut group = c.benchmark_group("recv");
    group.throughput(Throughput::Elements(64));
    // The default rings (16384 entries, a UMEM of 32768 frames) and a small ring.
    for ring in [16384u32, 2048] {
        let mut q = HeapQueue::new(ring, 4096);
        let stop = AtomicBool::new(false);
        let mut step = FrameStep {
            queue: 0,
            sink: Some(VecSink(Vec::with_capacity(2 << 20))),
            monitor: None,
            traffic: Arc::new(Default::default()),
            flows: FlowTable::new(8192),
            latency: LatencyStats::default(),
            closed: false,
            feeds: None,
            batch_wall_ns: 0,
        };
        group.bench_function(format!("ring {ring}: recv + refill only"), |b| {
            b.iter(|| {
                q.deliver(frames.iter().map(Vec::as_slice));
                black_box(q.recv(64, |_, _, f, _| {
                    black_box(f);
                }))
            })
        });
        group.bench_function(format!("ring {ring}: recv + per-frame step"), |b| {
            b.iter(|| {
                q.deliver(frames.iter().map(Vec::as_slice));
                q.recv(64, |_, _, f, _| {
                    black_box(step.frame(1, 1, f, &stop));
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, recv);
criterion_main!(benches);
