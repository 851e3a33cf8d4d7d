//! `xsktap feed --publish`: each feed's merged stream published over iceoryx2
//! shared memory, one service per feed (`xsktap/feed/NAME`), from the worker
//! that decoded the packet (no hand-off, no syscall: a loan from the data
//! segment, a copy of the message into it, a push into each subscriber's
//! queue). The services overflow: a subscriber that stalls loses its oldest
//! samples and never holds a worker back; each sample's place in the stream
//! lets it count exactly what it lost (see `xsktap-consumer`).

use hdrhistogram::Histogram;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::prelude::*;
use xsktap_consumer::{service_name, FeedHeader, Kind};
use xsktap_core::config::Publish;
use xsktap_core::feed::consumer::line_byte;
use xsktap_core::feed::{Consumer, ConsumerStats, Event, Feeds, Message};
use xsktap_sys::clock::wall_ns;

use crate::{Error, Result};

type Service = ipc_threadsafe::Service;

/// The iceoryx2 node the feeds' publishers live on: keep it for as long as
/// the feeds are published.
pub struct Publishing {
    _node: Node<Service>,
    /// The services, in feed order.
    pub services: Vec<String>,
}

impl std::fmt::Debug for Publishing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publishing")
            .field("services", &self.services)
            .finish()
    }
}

/// Creates one service and publisher per feed and hands each feed's stream
/// to its publisher.
///
/// # Errors
/// [`Error::Config`] naming the service when iceoryx2 refuses (another tap
/// publishing the feed, a service left with other settings).
pub fn start(feeds: &Feeds, settings: Publish) -> Result<Publishing> {
    // xsktap says what goes wrong in its own lines; iceoryx2's warnings
    // ("no config file was loaded") only with IOX2_LOG_LEVEL set.
    set_log_level_from_env_or(LogLevel::Error);
    let node = NodeBuilder::new()
        .name(&NodeName::new("xsktap").map_err(|e| Error::Config(format!("{e:?}")))?)
        // xsktap handles its own signals.
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<Service>()
        .map_err(|e| Error::Config(format!("--publish: cannot create an iceoryx2 node: {e:?}")))?;
    let mut publishers = Vec::with_capacity(feeds.len());
    let mut services = Vec::with_capacity(feeds.len());
    for spec in feeds.specs() {
        let name = service_name(&spec.name);
        let fail = |what: &str, e: &dyn std::fmt::Debug| {
            Error::Config(format!(
                "--publish: {what} {name}: {e:?}; is another xsktap publishing this feed, or one that ran with another --publish-buffer still subscribed to?"
            ))
        };
        let service_name: ServiceName = name
            .as_str()
            .try_into()
            .map_err(|e| fail("not a service name:", &e))?;
        let service = node
            .service_builder(&service_name)
            .publish_subscribe::<[u8]>()
            .user_header::<FeedHeader>()
            .enable_safe_overflow(true)
            .subscriber_max_buffer_size(settings.buffer)
            .subscriber_max_borrowed_samples(16)
            .max_subscribers(settings.subscribers)
            .max_publishers(1)
            .history_size(0)
            .open_or_create()
            .map_err(|e| fail("cannot create the service", &e))?;
        let publisher = service
            .publisher_builder()
            // A fixed data segment: a growing one makes iceoryx2 size every
            // subscriber's connection for 256 segments (134 MB each at a
            // 65,536-sample buffer, measured in /dev/shm).
            .initial_max_slice_len(settings.sample_bytes)
            .allocation_strategy(AllocationStrategy::Static)
            .max_loaned_samples(1)
            .create()
            .map_err(|e| fail("cannot create the publisher of", &e))?;
        publishers.push(FeedPublisher {
            name: name.clone(),
            publisher,
            next: 0,
            max_bytes: settings.sample_bytes,
            run: None,
            blocks: Vec::with_capacity(settings.sample_bytes),
            too_long: 0,
            delivered: 0,
            loan_failed: 0,
            send_failed: 0,
            latency: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .expect("valid histogram bounds"),
        });
        services.push(name);
    }
    for (i, p) in publishers.into_iter().enumerate() {
        feeds.consume(i, Box::new(p));
    }
    Ok(Publishing {
        _node: node,
        services,
    })
}

/// In-process consumers, each with the name of the feed it takes.
pub type Consumers = Vec<(String, Box<dyn Consumer>)>;

/// The feeds `cfg` asks for, published (`cfg.publish`) and handed to
/// `consumers`, in that order: one place for a live capture and a file read back.
///
/// # Errors
/// [`Error::Config`] for a bad feed set, a consumer of a feed not given, or
/// a service iceoryx2 refuses.
pub(crate) fn feeds(
    cfg: &xsktap_core::CaptureConfig,
    consumers: Consumers,
) -> Result<(Option<std::sync::Arc<Feeds>>, Option<Publishing>)> {
    let Some(feeds) = Feeds::of_config(cfg).map_err(Error::Config)? else {
        if let Some((name, _)) = consumers.first() {
            return Err(Error::Config(format!(
                "a consumer of feed {name}, but no feed is given"
            )));
        }
        return Ok((None, None));
    };
    let publishing = cfg.publish.map(|p| start(&feeds, p)).transpose()?;
    for (name, consumer) in consumers {
        let i = feeds.index_of(&name).ok_or_else(|| {
            Error::Config(format!(
                "a consumer of feed {name}, which is not one of the feeds given"
            ))
        })?;
        feeds.consume(i, consumer);
    }
    Ok((Some(std::sync::Arc::new(feeds)), publishing))
}

/// One feed's publisher, behind the feed's lock.
struct FeedPublisher {
    name: String,
    publisher: Publisher<Service, [u8], FeedHeader>,
    /// The next sample's `publish_seq`.
    next: u64,
    /// The most message bytes (with their lengths) one sample holds.
    max_bytes: usize,
    /// The run of messages gathered for the next sample: its header (seq
    /// of the first, `to` of the last) and its blocks.
    run: Option<FeedHeader>,
    blocks: Vec<u8>,
    /// Messages longer than a sample holds, not published.
    too_long: u64,
    /// Samples published.
    delivered: u64,
    /// Samples the data segment had no room for (subscribers holding them all).
    loan_failed: u64,
    /// Samples iceoryx2 could not deliver.
    send_failed: u64,
    /// Receive stamp to publish, per message.
    latency: Histogram<u64>,
}

impl std::fmt::Debug for FeedPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedPublisher")
            .field("name", &self.name)
            .field("next", &self.next)
            .finish()
    }
}

impl FeedPublisher {
    /// Publishes one sample. Its `publish_seq` is used even when it fails:
    /// every subscriber then counts it as missed, as it is.
    #[inline]
    fn publish(&mut self, mut header: FeedHeader, bytes: &[u8]) -> u64 {
        header.publish_seq = self.next;
        self.next += 1;
        let mut sample = match self.publisher.loan_slice_uninit(bytes.len()) {
            Ok(s) => s,
            Err(_) => {
                self.loan_failed += 1;
                return 0;
            }
        };
        let now = wall_ns();
        header.publish_ns = now;
        *sample.user_header_mut() = header;
        match sample.write_from_slice(bytes).send() {
            Ok(_) => self.delivered += 1,
            Err(_) => self.send_failed += 1,
        }
        now
    }

    /// Publishes the gathered run of messages, if any.
    fn publish_run(&mut self) {
        let Some(header) = self.run.take() else {
            return;
        };
        let blocks = std::mem::take(&mut self.blocks);
        let published = self.publish(header, &blocks);
        if published != 0 {
            self.latency.saturating_record_n(
                published.saturating_sub(header.rx_ns).max(1),
                header.to - header.seq + 1,
            );
        }
        self.blocks = blocks;
        self.blocks.clear();
    }
}

impl Consumer for FeedPublisher {
    /// Gathers the message into the run for the next sample: messages that
    /// follow one another, came in one frame and fit go out as one sample.
    #[inline]
    fn message(&mut self, m: &Message<'_>) {
        let len = 2 + m.bytes.len();
        if len > self.max_bytes {
            self.publish_run();
            self.too_long += 1;
            // Its place in the stream stays visible: a sample lost to all.
            self.next += 1;
            return;
        }
        let joins = self.run.as_ref().is_some_and(|r| {
            r.to + 1 == m.seq
                && r.rx_ns == m.rx_ns
                && r.line == line_byte(m.origin)
                && r.session == *m.session.as_bytes()
                && self.blocks.len() + len <= self.max_bytes
        });
        if !joins {
            self.publish_run();
            self.run = Some(FeedHeader {
                seq: m.seq,
                to: m.seq,
                rx_ns: m.rx_ns,
                session: *m.session.as_bytes(),
                kind: Kind::Message as u8,
                line: line_byte(m.origin),
                ..FeedHeader::default()
            });
        }
        if let Some(r) = &mut self.run {
            r.to = m.seq;
        }
        self.blocks
            .extend_from_slice(&(m.bytes.len() as u16).to_be_bytes());
        self.blocks.extend_from_slice(m.bytes);
    }

    fn flush(&mut self) {
        self.publish_run();
    }

    fn event(&mut self, event: &Event) {
        let header = match *event {
            Event::Gap(g) => FeedHeader {
                seq: g.from,
                to: g.to,
                rx_ns: g.opened_ns,
                session: *g.session.as_bytes(),
                kind: Kind::Gap as u8,
                ..FeedHeader::default()
            },
            Event::Recovered {
                session,
                from,
                to,
                open_ns,
                origin,
                ts_ns,
            } => FeedHeader {
                seq: from,
                to,
                rx_ns: ts_ns,
                open_ns,
                session: *session.as_bytes(),
                kind: Kind::Recovered as u8,
                line: line_byte(origin),
                ..FeedHeader::default()
            },
            Event::SessionStart {
                session,
                seq,
                ts_ns,
            } => FeedHeader {
                seq,
                to: seq,
                rx_ns: ts_ns,
                session: *session.as_bytes(),
                kind: Kind::SessionStart as u8,
                ..FeedHeader::default()
            },
            Event::SessionEnd {
                session,
                next,
                ts_ns,
            } => FeedHeader {
                seq: next,
                to: next,
                rx_ns: ts_ns,
                session: *session.as_bytes(),
                kind: Kind::SessionEnd as u8,
                ..FeedHeader::default()
            },
            Event::LineSilent {
                line,
                since_ns,
                ts_ns,
            } => FeedHeader {
                rx_ns: since_ns,
                open_ns: ts_ns.saturating_sub(since_ns),
                kind: Kind::LineSilent as u8,
                line,
                ..FeedHeader::default()
            },
            Event::LineBack {
                line,
                silent_ns,
                ts_ns,
            } => FeedHeader {
                rx_ns: ts_ns,
                open_ns: silent_ns,
                kind: Kind::LineBack as u8,
                line,
                ..FeedHeader::default()
            },
        };
        self.publish_run();
        self.publish(header, &[]);
    }

    fn stats(&self) -> Option<ConsumerStats> {
        Some(ConsumerStats {
            name: self.name.clone(),
            delivered: self.delivered,
            failed: vec![
                ("too_long", self.too_long),
                ("loan", self.loan_failed),
                ("send", self.send_failed),
            ],
            receive_to_delivery: Some(self.latency.clone()),
        })
    }
}
