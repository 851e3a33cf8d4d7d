//! What every packet costs on the worker: parsing, the traffic counters, the
//! flow table, the filter and the pcap record, over a realistic frame mix.
//! etherparse parses the same frames as a peer.
//!
//! Run: `cargo bench -p xsktap-core --bench per_packet`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::{PacketBuilder, SlicedPacket};
use xsktap_core::filter::{parse_expr, Program};
use xsktap_core::flows::{FlowKey, FlowTable};
use xsktap_core::parse::parse;
use xsktap_core::pcap::append_record;
use xsktap_core::stats::TrafficCounters;

const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// 1024 frames: a simple IMIX by count (7 x 64 B, 4 x 594 B, 1 x 1514 B),
/// 70% IPv4 / 30% IPv6, 60% TCP / 35% UDP / 5% ICMP, 10% VLAN-tagged,
/// spread over 256 flows.
fn mix() -> Vec<Vec<u8>> {
    (0..1024u32)
        .map(|i| {
            let size = match i % 12 {
                0..=6 => 64usize,
                7..=10 => 594,
                _ => 1514,
            };
            let flow = (i * 7919) % 256;
            let v6 = i % 10 >= 7;
            let kind = i % 20;
            let src4 = [198, 18, (flow >> 8) as u8, flow as u8];
            let mut src6 = [0u8; 16];
            src6[..4].copy_from_slice(&[0x20, 0x01, 0, 2]);
            src6[15] = flow as u8;
            let mut dst6 = src6;
            dst6[14] = 1;
            let b = PacketBuilder::ethernet2(A, B);
            let headers = if v6 { 14 + 40 } else { 14 + 20 }
                + if kind < 12 { 20 } else { 8 }
                + if i % 10 == 3 { 4 } else { 0 };
            let payload = vec![0u8; size.saturating_sub(headers)];
            let mut f = Vec::with_capacity(size);
            macro_rules! l4 {
                ($ip:expr) => {{
                    let ip = $ip;
                    match kind {
                        0..=11 => ip
                            .tcp(40000 + flow as u16, 443, i, 1000)
                            .ack(1)
                            .write(&mut f, &payload)
                            .unwrap(),
                        12..=18 => ip
                            .udp(50000 + flow as u16, 53)
                            .write(&mut f, &payload)
                            .unwrap(),
                        _ if v6 => ip
                            .icmpv6_echo_request(1, 1)
                            .write(&mut f, &payload)
                            .unwrap(),
                        _ => ip
                            .icmpv4_echo_request(1, 1)
                            .write(&mut f, &payload)
                            .unwrap(),
                    }
                }};
            }
            match (i % 10 == 3, v6) {
                (true, false) => {
                    l4!(b
                        .single_vlan(100.try_into().unwrap())
                        .ipv4(src4, [198, 18, 255, 1], 64))
                }
                (true, true) => l4!(b.single_vlan(100.try_into().unwrap()).ipv6(src6, dst6, 64)),
                (false, false) => l4!(b.ipv4(src4, [198, 18, 255, 1], 64)),
                (false, true) => l4!(b.ipv6(src6, dst6, 64)),
            }
            f
        })
        .collect()
}

/// What the worker does with every frame before its outputs: parse, count,
/// and record its flow.
fn per_frame(frames: &[Vec<u8>], traffic: &TrafficCounters, flows: &mut FlowTable) {
    for f in frames {
        let p = parse(black_box(f));
        traffic.record(&p);
        if let Some(k) = FlowKey::of(&p) {
            flows.record(
                k,
                u64::from(p.len),
                p.tcp_flags,
                p.vlans[0],
                1_700_000_000_000_000_000,
            );
        }
    }
}

fn per_packet(c: &mut Criterion) {
    let frames = mix();
    let mut g = c.benchmark_group("per_packet");
    g.throughput(Throughput::Elements(frames.len() as u64));

    g.bench_function("parse/xsktap", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(parse(black_box(f)));
            }
        })
    });
    g.bench_function("parse/etherparse", |b| {
        b.iter(|| {
            for f in &frames {
                let _ = black_box(SlicedPacket::from_ethernet(black_box(f)));
            }
        })
    });

    let traffic = TrafficCounters::default();
    let mut flows = FlowTable::new(8192);
    g.bench_function("parse+counters+flows", |b| {
        b.iter(|| {
            per_frame(&frames, &traffic, &mut flows);
        })
    });

    // The flow table alone with many flows: 65,536 of them in a table of
    // 131,072 slots (8 MB: beyond the L2 caches), as on a link with that
    // many concurrent flows.
    let keys: Vec<FlowKey> = (0..65_536u32)
        .map(|i| {
            let i = i.wrapping_mul(40_503) & 0xffff;
            FlowKey {
                src: std::net::Ipv4Addr::from(0xc612_0000 | (i >> 4)).into(),
                dst: std::net::Ipv4Addr::new(198, 19, 0, 1).into(),
                sport: 1024 + (i & 0xf) as u16,
                dport: 443,
                proto: 6,
            }
        })
        .collect();
    let mut many = FlowTable::new(131_072);
    g.throughput(Throughput::Elements(keys.len() as u64));
    g.bench_function("flows(65536 flows)", |b| {
        b.iter(|| {
            for k in &keys {
                many.record(*k, 64, Some(0x10), 0, 1_700_000_000_000_000_000);
            }
        })
    });
    // The whole per-frame work above with those 65,536 flows: one 60-byte
    // TCP frame each.
    let many_frames: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| {
            let (std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst)) = (k.src, k.dst) else {
                unreachable!("IPv4 keys")
            };
            let mut f = Vec::with_capacity(64);
            PacketBuilder::ethernet2(A, B)
                .ipv4(src.octets(), dst.octets(), 64)
                .tcp(k.sport, k.dport, 1, 1000)
                .ack(1)
                .write(&mut f, &[0u8; 6])
                .unwrap();
            f
        })
        .collect();
    g.bench_function("parse+counters+flows(65536 flows)", |b| {
        b.iter(|| {
            per_frame(&many_frames, &traffic, &mut many);
        })
    });
    g.throughput(Throughput::Elements(frames.len() as u64));

    let expr = parse_expr("(tcp and port 443) or (udp and dst port 53 and not net 198.19.0.0/16)")
        .unwrap();
    let filter = Program::compile(expr.as_ref(), 64).unwrap();
    g.bench_function("parse+filter(userspace)", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for f in &frames {
                n += usize::from(filter.matches(&parse(black_box(f))));
            }
            black_box(n)
        })
    });

    let mut buf = Vec::with_capacity(4 << 20);
    g.bench_function("pcap_record(snaplen 262144)", |b| {
        b.iter(|| {
            buf.clear();
            for f in &frames {
                append_record(&mut buf, 1_700_000_000_000_000_000, black_box(f), 262_144);
            }
            black_box(buf.len())
        })
    });
    g.finish();
}

criterion_group!(benches, per_packet);
criterion_main!(benches);
