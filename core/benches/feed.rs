//! What a market-data message costs: MoldUDP64 decoding, sequencing, and
//! A/B arbitration, per message, over packets of ITCH-like messages (a mix
//! of 20- to 50-byte messages, 8 per packet, as busy NASDAQ TotalView
//! packets carry).
//!
//! Each run starts from a fresh feed (made outside the timing).
//!
//! Run: `cargo bench -p xsktap-core --bench feed`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use xsktap_core::feed::{mold, Event, Feed, FeedOut, MoldUdp64, Origin, Session};

const PER_PACKET: u64 = 8;
const PACKETS: u64 = 4096;

/// Counts what a consumer would be handed, so that nothing is optimised out.
#[derive(Default)]
struct Count {
    messages: u64,
    bytes: u64,
    events: u64,
}

impl<'a> FeedOut<'a> for Count {
    fn message(&mut self, _: Session, seq: u64, message: &'a [u8], _: Origin) {
        self.messages += 1;
        self.bytes += message.len() as u64 + (seq & 1);
    }
    fn event(&mut self, _: Event) {
        self.events += 1;
    }
}

fn packets(session: &Session) -> Vec<Vec<u8>> {
    let sizes = [20usize, 36, 50, 23, 40, 32, 26, 44];
    (0..PACKETS)
        .map(|p| {
            let msgs: Vec<Vec<u8>> = (0..PER_PACKET as usize)
                .map(|i| vec![b'A' + i as u8; sizes[i]])
                .collect();
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            mold::encode(session, 1 + p * PER_PACKET, &refs)
        })
        .collect()
}

fn feed(c: &mut Criterion) {
    let session = Session::new(b"20261123AB").unwrap();
    let packets = packets(&session);
    let mut group = c.benchmark_group("feed");
    group.throughput(Throughput::Elements(PACKETS * PER_PACKET));
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for p in &packets {
                let d = mold::decode(black_box(p)).unwrap();
                n += d.blocks.iter().map(|m| m.len() as u64).sum::<u64>();
            }
            n
        })
    });
    group.bench_function("decode_and_sequence", |b| {
        b.iter_batched(
            || Feed::single("f"),
            |mut feed| {
                let mut out = Count::default();
                for (i, p) in packets.iter().enumerate() {
                    feed.packet::<MoldUdp64>(0, black_box(p), i as u64, &mut out);
                }
                (out.messages, feed)
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("decode_sequence_and_arbitrate_ab", |b| {
        // Both lines bring every packet, B 300 ns behind A: each message
        // is decoded and sequenced twice (once per line) and merged once.
        b.iter_batched(
            || Feed::ab("f", 1_000_000),
            |mut feed| {
                let mut out = Count::default();
                for (i, p) in packets.iter().enumerate() {
                    let t = i as u64 * 1_000;
                    feed.packet::<MoldUdp64>(0, black_box(p), t, &mut out);
                    feed.packet::<MoldUdp64>(1, black_box(p), t + 300, &mut out);
                }
                (out.messages, feed)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, feed);
criterion_main!(benches);
