//! `xsktap-bench publish`: what publishing a feed over iceoryx2 costs and how
//! long a sample takes to reach a subscriber, without a NIC in the way. One
//! thread hands MoldUDP64 frames to a feed set exactly as a worker does
//! (`Feeds::frame`: decode, sequence, publish), a subscriber process-like
//! thread (`xsktap_consumer::FeedSubscriber`, spinning) reads the samples.
//! Run it with and without the subscriber and with no publisher at all to
//! see what each step costs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use xsktap_consumer::{now_ns, Delivery, FeedSubscriber, Item, Kind};
use xsktap_core::config::Publish;
use xsktap_core::feed::{mold, FeedSpec, Feeds, Session};
use xsktap_core::parse::parse;

use crate::feedgen::message;
use crate::frames::{udp_to_b, IP_B};

/// What to run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PublishBench {
    /// Messages to publish.
    pub messages: u64,
    /// Messages per packet.
    pub per_packet: u64,
    /// Messages per second to pace at (`None`: as fast as possible).
    pub rate: Option<f64>,
    /// Publish over iceoryx2 (else: decode and sequence only).
    pub publish: bool,
    /// Run a subscriber.
    pub subscribe: bool,
    /// CPU of the publishing thread.
    pub cpu: usize,
    /// CPU of the subscriber.
    pub subscriber_cpu: usize,
}

/// What it measured.
#[derive(Debug, Clone, Serialize)]
pub struct PublishResult {
    /// The run.
    pub config: PublishBench,
    /// Messages handed to the feed set per second.
    pub messages_per_sec: f64,
    /// ns per message on the publishing thread.
    pub ns_per_message: f64,
    /// Messages the subscriber received.
    pub received: u64,
    /// Samples it missed.
    pub missed: u64,
    /// Publish to subscriber, ns: p50, p99, p99.9, max.
    pub publish_to_subscriber: [u64; 4],
    /// The tap's own receive (here: hand-over) to publish, ns: p50, p99, max.
    pub handover_to_publish: [u64; 3],
}

/// Runs one configuration.
pub fn run(b: PublishBench) -> anyhow::Result<PublishResult> {
    anyhow::ensure!(
        (1..=32).contains(&b.per_packet),
        "1 to 32 messages per packet"
    );
    let name = format!("publish-bench-{}", std::process::id());
    let feeds = Feeds::new(
        vec![FeedSpec {
            name: name.clone(),
            lines: vec![(std::net::IpAddr::from(IP_B), 26_400)],
        }],
        0,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let publishing = if b.publish {
        Some(xsktap::publish::start(&feeds, Publish::default())?)
    } else {
        None
    };
    let session = Session::new(b"BENCHSESS1").expect("printable");
    let msgs: Vec<Vec<u8>> = (1..=b.per_packet)
        .map(|s| message(s, b.per_packet))
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let mut template = udp_to_b(26_400, &mold::encode(&session, 1, &refs));
    let packet = parse(&template);
    let packets = b.messages.div_ceil(b.per_packet);
    let ready = AtomicBool::new(!b.subscribe);
    let done = AtomicBool::new(false);
    let result = std::thread::scope(|s| -> anyhow::Result<PublishResult> {
        let subscriber = b.subscribe.then(|| {
            let (name, ready, done) = (&name, &ready, &done);
            s.spawn(move || -> anyhow::Result<(u64, u64, Histogram<u64>)> {
                crate::cpu::pin_to(b.subscriber_cpu, "the subscriber")?;
                let mut sub = FeedSubscriber::open(name, Delivery::Reliable)?;
                let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
                let (mut received, mut idle_since) = (0u64, None::<Instant>);
                ready.store(true, Ordering::Release);
                loop {
                    match sub.receive()? {
                        Some(Item::Sample(sample)) => {
                            idle_since = None;
                            let hd = sample.user_header();
                            if hd.kind() == Some(Kind::Message) {
                                let n = hd.to - hd.seq + 1;
                                received += n;
                                let wait = now_ns().saturating_sub(hd.publish_ns).max(1);
                                h.saturating_record_n(wait, n);
                            }
                        }
                        Some(Item::Missed(_)) => {}
                        None if done.load(Ordering::Acquire) => {
                            // Drained: nothing for 100 ms after the end.
                            let t = *idle_since.get_or_insert_with(Instant::now);
                            if t.elapsed() > Duration::from_millis(100) {
                                return Ok((received, sub.missed(), h));
                            }
                        }
                        None => {}
                    }
                }
            })
        });
        while !ready.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        // The publisher connects to the subscriber on its first send.
        std::thread::sleep(Duration::from_millis(20));
        crate::cpu::pin_to(b.cpu, "the publisher")?;
        let interval = b
            .rate
            .map(|r| Duration::from_secs_f64(b.per_packet as f64 / r));
        let start = Instant::now();
        for p in 0..packets {
            if let Some(i) = interval {
                let due = start + i * p as u32;
                while Instant::now() < due {
                    std::hint::spin_loop();
                }
            }
            let seq = 1 + p * b.per_packet;
            template[52..60].copy_from_slice(&seq.to_be_bytes());
            let t = now_ns();
            feeds.frame(t, t, &template, &packet);
        }
        let took = start.elapsed();
        done.store(true, Ordering::Release);
        let (received, missed, h) = match subscriber {
            Some(handle) => handle.join().expect("the subscriber thread ends")?,
            None => (0, 0, Histogram::new(3)?),
        };
        let q = |p: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(p)
            }
        };
        let handover = feeds
            .consumer_stats(0)
            .first()
            .and_then(|c| c.receive_to_delivery.clone())
            .filter(|h| !h.is_empty())
            .map_or([0; 3], |h| {
                [h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max()]
            });
        let n = packets * b.per_packet;
        Ok(PublishResult {
            config: b,
            messages_per_sec: n as f64 / took.as_secs_f64(),
            ns_per_message: took.as_nanos() as f64 / n as f64,
            received,
            missed,
            publish_to_subscriber: [
                q(0.5),
                q(0.99),
                q(0.999),
                if h.is_empty() { 0 } else { h.max() },
            ],
            handover_to_publish: handover,
        })
    });
    drop(publishing);
    result
}
