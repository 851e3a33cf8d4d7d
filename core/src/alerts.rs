//! Anomaly detectors, fed once a second with what the workers counted: a
//! rate far above its moving baseline, traffic stopping after a steady
//! period, a SYN flood on a destination, a source scanning ports or hosts.
//! Pure: the runtime hands in counts and time and prints the events.
//!
//! Every alert has a start and an end. Both need their condition to hold
//! for [`Hysteresis::hold`] consecutive seconds, so a rate wavering around
//! a threshold raises one alert, not one a second.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Packets or bits per second far above their moving baseline.
    RateSpike,
    /// Traffic that was steady fell to (almost) nothing.
    TrafficStopped,
    /// TCP SYNs to one destination, few of them answered.
    SynFlood,
    /// One source reaching many destination ports or hosts.
    Scan,
    /// A source in the top N by bytes that was not in it during the baseline.
    NewTalker,
}

impl Kind {
    /// Every kind, in a fixed order.
    pub const ALL: [Kind; 5] = [
        Kind::RateSpike,
        Kind::TrafficStopped,
        Kind::SynFlood,
        Kind::Scan,
        Kind::NewTalker,
    ];

    /// Its name in lines, JSON and metrics: `rate-spike`, `traffic-stopped`,
    /// `syn-flood`, `scan`, `new-talker`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RateSpike => "rate-spike",
            Kind::TrafficStopped => "traffic-stopped",
            Kind::SynFlood => "syn-flood",
            Kind::Scan => "scan",
            Kind::NewTalker => "new-talker",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An alert starting or ending.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What it is about.
    pub kind: Kind,
    /// Who: `total`, `queue 3`, `src 198.18.0.1`, `dst 198.18.0.2`.
    pub subject: String,
    /// Start (true) or end (false).
    pub start: bool,
    /// What was measured, for the line (`48 kSYN/s, SYN:ACK 310:1`).
    pub detail: String,
}

/// Start after the condition held `hold` seconds in a row, end after it
/// failed `hold` seconds in a row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hysteresis {
    /// Seconds in a row a condition must hold (or fail) to change state.
    pub hold: u32,
    active: bool,
    streak: u32,
}

impl Hysteresis {
    /// Inactive, changing state after `hold` seconds (at least 1).
    pub fn new(hold: u32) -> Hysteresis {
        Hysteresis {
            hold: hold.max(1),
            active: false,
            streak: 0,
        }
    }

    /// Whether the alert is on.
    pub fn active(&self) -> bool {
        self.active
    }

    /// One second's verdict; `Some(true)` when the alert starts,
    /// `Some(false)` when it ends.
    pub fn step(&mut self, condition: bool) -> Option<bool> {
        if condition == self.active {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        if self.streak < self.hold {
            return None;
        }
        self.streak = 0;
        self.active = condition;
        Some(condition)
    }
}

/// Thresholds of the rate detectors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateConfig {
    /// A spike is this many times the baseline…
    pub factor: f64,
    /// …and at least this much (per second), so that a quiet link going
    /// from 10 to 50 packets/s is not an incident.
    pub floor: f64,
    /// Weight of each new second in the baseline (EWMA).
    pub alpha: f64,
    /// Seconds of learning before any alert, and of traffic above `floor`
    /// before a stop counts.
    pub steady: u32,
    /// Traffic has stopped below this share of the baseline.
    pub stopped_share: f64,
    /// Seconds a condition holds before an alert starts or ends.
    pub hold: u32,
}

impl Default for RateConfig {
    fn default() -> RateConfig {
        RateConfig {
            factor: 4.0,
            floor: 10_000.0,
            alpha: 0.05,
            steady: 10,
            stopped_share: 0.01,
            hold: 3,
        }
    }
}

/// One rate (a subject's packets or bits per second): its baseline, a spike
/// alert and a stopped alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    baseline: Option<f64>,
    learnt: u32,
    steady_secs: u32,
    spike: Hysteresis,
    stopped: Hysteresis,
}

impl Rate {
    /// No baseline yet.
    pub fn new(cfg: &RateConfig) -> Rate {
        Rate {
            baseline: None,
            learnt: 0,
            steady_secs: 0,
            spike: Hysteresis::new(cfg.hold),
            stopped: Hysteresis::new(cfg.hold),
        }
    }

    /// The moving baseline, once there is one.
    pub fn baseline(&self) -> Option<f64> {
        self.baseline
    }

    /// One second's `value`; the spike and stopped alerts that start or end.
    /// The baseline learns only from seconds that are neither a spike nor a
    /// silence, with no alert on: a long spike or a long silence never
    /// becomes normal (a lasting new level stays an alert until it ends).
    pub fn step(&mut self, value: f64, cfg: &RateConfig) -> (Option<bool>, Option<bool>) {
        let base = self.baseline.unwrap_or(0.0);
        if self.learnt < cfg.steady {
            // Warming up: the baseline is the mean of the first seconds
            // (a capture usually starts before its traffic), no alert yet.
            self.learnt += 1;
            self.baseline = Some(base + (value - base) / f64::from(self.learnt));
            if value >= cfg.floor {
                self.steady_secs += 1;
            }
            return (None, None);
        }
        let spiking = value >= cfg.floor && value > cfg.factor * base;
        let silent = value < cfg.stopped_share * base;
        let was_steady = self.steady_secs >= cfg.steady;
        let spike = self.spike.step(spiking);
        let stopped = self.stopped.step(was_steady && silent);
        if !spiking && !silent && !self.spike.active() && !self.stopped.active() {
            self.baseline = Some(base + cfg.alpha * (value - base));
            if value >= cfg.floor {
                self.steady_secs = self.steady_secs.saturating_add(1);
            }
        } else if silent && !was_steady {
            // Quiet before it was ever steady: no incident, start over.
            self.steady_secs = 0;
        }
        (spike, stopped)
    }
}

/// Rates of many subjects (the total, each queue, each source), each with
/// its baseline and alerts.
#[derive(Debug, Clone)]
pub struct Rates<K> {
    cfg: RateConfig,
    unit: &'static str,
    rates: HashMap<K, Rate>,
    /// Whether a subject falling silent is an incident (a link, a queue) or
    /// not (a source), in which case a silent subject is forgotten.
    stops: bool,
    /// The most subjects followed at once.
    max: usize,
}

/// The most sources whose rates are followed at once.
pub const MAX_SOURCE_RATES: usize = 10_000;

impl<K: Clone + Eq + Hash + fmt::Display> Rates<K> {
    /// Rates measured in `unit` (`pkt/s`, `bit/s`), spiking and stopping.
    pub fn new(cfg: RateConfig, unit: &'static str) -> Rates<K> {
        Rates {
            cfg,
            unit,
            rates: HashMap::new(),
            stops: true,
            max: usize::MAX,
        }
    }

    /// Rates that only spike, of at most `max` subjects at once (those
    /// beyond are not followed until some fall silent): a subject silent for
    /// a second with no alert on is forgotten, its baseline with it.
    pub fn spikes_only(cfg: RateConfig, unit: &'static str, max: usize) -> Rates<K> {
        Rates {
            stops: false,
            max,
            ..Rates::new(cfg, unit)
        }
    }

    /// Subjects followed now.
    pub fn len(&self) -> usize {
        self.rates.len()
    }

    /// Whether no subject is followed.
    pub fn is_empty(&self) -> bool {
        self.rates.is_empty()
    }

    /// One second's value of each subject in `values`; subjects not in it
    /// had 0. The events that start or end, in subject order.
    pub fn step(&mut self, values: &HashMap<K, f64>) -> Vec<Event> {
        let cfg = self.cfg;
        if !self.stops {
            self.rates
                .retain(|k, r| values.get(k).is_some_and(|v| *v > 0.0) || r.spike.active());
        }
        for (k, v) in values {
            if *v > 0.0 && self.rates.len() < self.max && !self.rates.contains_key(k) {
                self.rates.insert(k.clone(), Rate::new(&cfg));
            }
        }
        let mut events = Vec::new();
        for (k, rate) in &mut self.rates {
            let value = values.get(k).copied().unwrap_or(0.0);
            let base = rate.baseline.unwrap_or(0.0);
            let (spike, stopped) = rate.step(value, &cfg);
            let detail = format!(
                "{} {} against a baseline of {}",
                si(value),
                self.unit,
                si(base)
            );
            if let Some(start) = spike {
                events.push(Event {
                    kind: Kind::RateSpike,
                    subject: k.to_string(),
                    start,
                    detail: detail.clone(),
                });
            }
            if let Some(start) = stopped.filter(|_| self.stops) {
                events.push(Event {
                    kind: Kind::TrafficStopped,
                    subject: k.to_string(),
                    start,
                    detail,
                });
            }
        }

        events.sort_by(|a, b| (&a.subject, a.kind).cmp(&(&b.subject, b.kind)));
        events
    }
}

/// Thresholds of the SYN flood detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynConfig {
    /// SYNs per second to one destination.
    pub rate: f64,
    /// SYNs per answer (SYN-ACK or ACK seen from or to it).
    pub ratio: f64,
    /// Seconds the condition holds before the alert starts or ends.
    pub hold: u32,
}

impl Default for SynConfig {
    fn default() -> SynConfig {
        SynConfig {
            rate: 1000.0,
            ratio: 10.0,
            hold: 2,
        }
    }
}

/// One second of TCP handshakes to a destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Handshakes {
    /// SYNs without ACK sent to it.
    pub syn: u64,
    /// SYN-ACKs from it and ACKs to it.
    pub answered: u64,
}

/// SYN floods, per destination.
#[derive(Debug, Clone, Default)]
pub struct SynFlood {
    cfg: SynConfig,
    by_dst: HashMap<IpAddr, Hysteresis>,
}

impl SynFlood {
    /// With thresholds `cfg`.
    pub fn new(cfg: SynConfig) -> SynFlood {
        SynFlood {
            cfg,
            by_dst: HashMap::new(),
        }
    }

    /// One second's handshakes by destination.
    pub fn step(&mut self, seconds: f64, by_dst: &HashMap<IpAddr, Handshakes>) -> Vec<Event> {
        let cfg = self.cfg;
        for dst in by_dst.keys() {
            self.by_dst
                .entry(*dst)
                .or_insert_with(|| Hysteresis::new(cfg.hold));
        }
        let mut events = Vec::new();
        self.by_dst.retain(|dst, state| {
            let h = by_dst.get(dst).copied().unwrap_or_default();
            let rate = h.syn as f64 / seconds.max(1e-3);
            let flooding = rate >= cfg.rate && h.syn as f64 >= cfg.ratio * h.answered.max(1) as f64;
            if let Some(start) = state.step(flooding) {
                events.push(Event {
                    kind: Kind::SynFlood,
                    subject: format!("dst {dst}"),
                    start,
                    detail: format!("{}SYN/s, SYN:ACK {}:{}", si(rate), h.syn, h.answered),
                });
            }
            // Forget quiet destinations with no alert on.
            state.active() || by_dst.contains_key(dst)
        });
        events.sort_by(|a, b| a.subject.cmp(&b.subject));
        events
    }
}

/// Thresholds of the scan detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanConfig {
    /// Distinct destination ports (or hosts) from one source…
    pub distinct: usize,
    /// …within this many seconds.
    pub window: u32,
    /// Sources followed at once; more are not followed, and counted.
    pub max_sources: usize,
}

impl Default for ScanConfig {
    fn default() -> ScanConfig {
        ScanConfig {
            distinct: 100,
            window: 10,
            max_sources: 10_000,
        }
    }
}

/// What a source reached in the current window: at most `distinct + 1` of
/// each, so memory stays bounded by `max_sources × (distinct + 1)`.
#[derive(Debug, Clone, Default)]
struct Reach {
    ports: HashSet<u16>,
    hosts: HashSet<IpAddr>,
    /// Its scan alert is on.
    active: bool,
}

impl Reach {
    fn over(&self, n: usize) -> bool {
        self.ports.len() > n || self.hosts.len() > n
    }
}

/// Port and host scans, per source, in fixed windows: an alert starts the
/// second a source passes the threshold and ends after a whole window in
/// which it stayed below.
#[derive(Debug, Clone, Default)]
pub struct Scans {
    cfg: ScanConfig,
    sources: HashMap<IpAddr, Reach>,
    window_secs: u32,
    untracked: u64,
}

impl Scans {
    /// With thresholds `cfg`.
    pub fn new(cfg: ScanConfig) -> Scans {
        Scans {
            cfg,
            ..Scans::default()
        }
    }

    /// Packets of sources not followed because `max_sources` were.
    pub fn untracked(&self) -> u64 {
        self.untracked
    }

    /// A packet from `src` to `dst`, destination port `dport` (0: none).
    pub fn packet(&mut self, src: IpAddr, dst: IpAddr, dport: u16) {
        let cap = self.cfg.distinct + 1;
        if !self.sources.contains_key(&src) && self.sources.len() >= self.cfg.max_sources {
            self.untracked += 1;
            return;
        }
        let reach = self.sources.entry(src).or_default();
        if dport != 0 && reach.ports.len() < cap {
            reach.ports.insert(dport);
        }
        if reach.hosts.len() < cap {
            reach.hosts.insert(dst);
        }
    }

    /// One second has passed: the scans that start, and at a window's end
    /// those that end.
    pub fn tick(&mut self) -> Vec<Event> {
        let n = self.cfg.distinct;
        let window = self.cfg.window.max(1);
        let mut events = Vec::new();
        for (src, reach) in &mut self.sources {
            if !reach.active && reach.over(n) {
                reach.active = true;
                let what = if reach.ports.len() > n {
                    "ports"
                } else {
                    "hosts"
                };
                events.push(Event {
                    kind: Kind::Scan,
                    subject: format!("src {src}"),
                    start: true,
                    detail: format!("more than {n} destination {what} within {window} s"),
                });
            }
        }
        self.window_secs += 1;
        if self.window_secs >= window {
            self.window_secs = 0;
            self.sources.retain(|src, reach| {
                let keep = reach.active && reach.over(n);
                if reach.active && !keep {
                    events.push(Event {
                        kind: Kind::Scan,
                        subject: format!("src {src}"),
                        start: false,
                        detail: format!("{n} or fewer ports and hosts in {window} s"),
                    });
                }
                reach.ports.clear();
                reach.hosts.clear();
                keep
            });
        }
        events.sort_by(|a, b| (&a.subject, !a.start).cmp(&(&b.subject, !b.start)));
        events
    }
}

/// Thresholds of the new-talker detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TalkerConfig {
    /// How many sources the top holds.
    pub top: usize,
    /// Seconds during which the top's sources are learnt as the usual ones.
    pub baseline: u32,
    /// Seconds in (or out of) the top before an alert starts (or ends).
    pub hold: u32,
}

impl Default for TalkerConfig {
    fn default() -> TalkerConfig {
        TalkerConfig {
            top: 10,
            baseline: 60,
            hold: 3,
        }
    }
}

/// Sources entering the top N by bytes that were not in it during the
/// baseline. Memory: the usual sources (at most `top × baseline`) and one
/// state per newcomer in the top.
#[derive(Debug, Clone, Default)]
pub struct NewTalkers {
    cfg: TalkerConfig,
    secs: u32,
    usual: HashSet<IpAddr>,
    newcomers: HashMap<IpAddr, Hysteresis>,
}

impl NewTalkers {
    /// With thresholds `cfg`.
    pub fn new(cfg: TalkerConfig) -> NewTalkers {
        NewTalkers {
            cfg,
            ..NewTalkers::default()
        }
    }

    /// One second's top sources by bytes, largest first (`(source, bytes)`).
    pub fn step(&mut self, top: &[(IpAddr, u64)]) -> Vec<Event> {
        let top = &top[..top.len().min(self.cfg.top)];
        if self.secs < self.cfg.baseline {
            self.secs += 1;
            self.usual.extend(top.iter().map(|(src, _)| *src));
            return Vec::new();
        }
        let hold = self.cfg.hold;
        for (src, _) in top {
            if !self.usual.contains(src) {
                self.newcomers
                    .entry(*src)
                    .or_insert_with(|| Hysteresis::new(hold));
            }
        }
        let mut events = Vec::new();
        let usual = &mut self.usual;
        self.newcomers.retain(|src, state| {
            let rank = top.iter().position(|(s, _)| s == src);
            match state.step(rank.is_some()) {
                Some(true) => {
                    let (rank, bytes) = (rank.unwrap_or(0), top[rank.unwrap_or(0)].1);
                    events.push(Event {
                        kind: Kind::NewTalker,
                        subject: format!("src {src}"),
                        start: true,
                        detail: format!(
                            "number {} by bytes ({}B/s), not in the top {} before",
                            rank + 1,
                            si(bytes as f64),
                            top.len()
                        ),
                    });
                    true
                }
                Some(false) => {
                    events.push(Event {
                        kind: Kind::NewTalker,
                        subject: format!("src {src}"),
                        start: false,
                        detail: "left the top".to_string(),
                    });
                    // Known from now on.
                    usual.insert(*src);
                    false
                }
                None => state.active() || rank.is_some(),
            }
        });
        events.sort_by(|a, b| a.subject.cmp(&b.subject));
        events
    }
}

/// Every threshold of [`Watch`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WatchConfig {
    /// Packets per second of the total and of each queue.
    pub rate: RateConfig,
    /// SYN floods.
    pub syn: SynConfig,
    /// Port and host scans.
    pub scan: ScanConfig,
    /// New top talkers.
    pub talker: TalkerConfig,
}

/// One second of a capture, as the workers counted it.
#[derive(Debug, Clone, Copy)]
pub struct Second<'a> {
    /// When it was taken, seconds since any fixed instant.
    pub at_secs: f64,
    /// Packets received so far, all queues.
    pub packets: u64,
    /// Packets received so far by queue.
    pub queues: &'a [(u32, u64)],
    /// The flow tables' contents now (cumulative counts per flow).
    pub flows: &'a [crate::flows::FlowStats],
}

/// The detectors of a capture, fed once a second from the workers'
/// counters and flow tables (never from the workers' hot path).
#[derive(Debug, Clone)]
pub struct Watch {
    total: Rates<String>,
    queues: Rates<String>,
    sources: Rates<String>,
    syn: SynFlood,
    scans: Scans,
    talkers: NewTalkers,
    top: usize,
    last_packets: Option<u64>,
    last_queues: HashMap<u32, u64>,
    last_flows: HashMap<crate::flows::FlowKey, crate::flows::FlowStats>,
    last_at: Option<f64>,
    active: HashSet<(Kind, String)>,
    started: HashMap<Kind, u64>,
}

impl Watch {
    /// With thresholds `cfg`.
    pub fn new(cfg: WatchConfig) -> Watch {
        Watch {
            total: Rates::new(cfg.rate, "pkt/s"),
            queues: Rates::new(cfg.rate, "pkt/s"),
            sources: Rates::spikes_only(cfg.rate, "pkt/s", MAX_SOURCE_RATES),
            syn: SynFlood::new(cfg.syn),
            scans: Scans::new(cfg.scan),
            talkers: NewTalkers::new(cfg.talker),
            top: cfg.talker.top,
            last_packets: None,
            last_queues: HashMap::new(),
            last_flows: HashMap::new(),
            last_at: None,
            active: HashSet::new(),
            started: HashMap::new(),
        }
    }

    /// The alerts on now: (kind, subject).
    pub fn active(&self) -> Vec<(Kind, String)> {
        let mut v: Vec<(Kind, String)> = self.active.iter().cloned().collect();
        v.sort();
        v
    }

    /// Alerts started so far, for every kind (0 for those never raised).
    pub fn started(&self) -> Vec<(Kind, u64)> {
        Kind::ALL
            .iter()
            .map(|k| (*k, self.started.get(k).copied().unwrap_or(0)))
            .collect()
    }

    /// Packets of sources the scan detector could not follow (its bound).
    pub fn scan_untracked(&self) -> u64 {
        self.scans.untracked()
    }

    /// One second: the alerts that start or end.
    pub fn step(&mut self, now: &Second<'_>) -> Vec<Event> {
        let mut events = Vec::new();
        if let Some(last) = self.last_packets.replace(now.packets) {
            let total =
                HashMap::from([("total".to_string(), now.packets.saturating_sub(last) as f64)]);
            events.extend(self.total.step(&total));
            let queues: HashMap<String, f64> = now
                .queues
                .iter()
                .map(|&(q, n)| {
                    let before = self.last_queues.get(&q).copied().unwrap_or(n);
                    (format!("queue {q}"), n.saturating_sub(before) as f64)
                })
                .collect();
            events.extend(self.queues.step(&queues));
        }
        self.last_queues = now.queues.iter().copied().collect();
        // What each flow did this second: its counts minus the last ones
        // (a flow the table evicted and saw again counts from zero).
        let mut by_src: HashMap<IpAddr, u64> = HashMap::new();
        let mut src_packets: HashMap<IpAddr, u64> = HashMap::new();
        let mut handshakes: HashMap<IpAddr, Handshakes> = HashMap::new();
        let mut flows = HashMap::with_capacity(now.flows.len());
        for f in now.flows {
            let before = self
                .last_flows
                .get(&f.key)
                .filter(|b| b.packets <= f.packets)
                .map_or((0, 0, 0, 0), |b| (b.packets, b.bytes, b.syns, b.acks));
            let dp = f.packets - before.0;
            if dp > 0 {
                self.scans.packet(f.key.src, f.key.dst, f.key.dport);
                *by_src.entry(f.key.src).or_default() += f.bytes.saturating_sub(before.1);
                *src_packets.entry(f.key.src).or_default() += dp;
                let dsyn = f.syns.saturating_sub(before.2);
                // A handshake completes when its flow's first ACK arrives.
                let completed = f.syns > 0 && before.3 == 0 && f.acks > 0;
                if dsyn > 0 || completed {
                    let h = handshakes.entry(f.key.dst).or_default();
                    h.syn += u64::from(dsyn);
                    h.answered += u64::from(completed);
                }
            }
            flows.insert(f.key, *f);
        }
        self.last_flows = flows;
        let secs = now.at_secs
            - self
                .last_at
                .replace(now.at_secs)
                .unwrap_or(now.at_secs - 1.0);
        // Each source's packets per second: spikes only, bounded.
        let sources: HashMap<String, f64> = src_packets
            .into_iter()
            .map(|(src, n)| (format!("src {src}"), n as f64 / secs.max(1e-3)))
            .collect();
        events.extend(self.sources.step(&sources));
        events.extend(self.syn.step(secs, &handshakes));
        events.extend(self.scans.tick());
        let mut top: Vec<(IpAddr, u64)> = by_src.into_iter().filter(|(_, b)| *b > 0).collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(self.top);
        events.extend(self.talkers.step(&top));
        for e in &events {
            let key = (e.kind, e.subject.clone());
            if e.start {
                self.active.insert(key);
                *self.started.entry(e.kind).or_default() += 1;
            } else {
                self.active.remove(&key);
            }
        }
        events
    }
}

/// 1.2 k, 48 M…: a rate for a line.
fn si(v: f64) -> String {
    let (scaled, unit) = crate::stats::metric_prefix(v);
    if unit.is_empty() {
        format!("{scaled:.0} ")
    } else {
        format!("{scaled:.1} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (start, subject) of each event, in order.
    fn starts_and_ends(events: &[Event]) -> Vec<(bool, &str)> {
        events
            .iter()
            .map(|e| (e.start, e.subject.as_str()))
            .collect()
    }

    fn total(v: f64) -> HashMap<&'static str, f64> {
        HashMap::from([("total", v)])
    }

    #[test]
    fn hysteresis_needs_the_condition_held_both_ways() {
        let mut h = Hysteresis::new(3);
        let seq = [
            true, true, false, true, true, true, false, false, true, false, false, false,
        ];
        let out: Vec<Option<bool>> = seq.iter().map(|&c| h.step(c)).collect();
        assert_eq!(out.iter().filter(|o| o.is_some()).count(), 2);
        assert_eq!(out[5], Some(true));
        assert_eq!(out[11], Some(false));
    }

    #[test]
    fn a_spike_starts_and_ends_one_alert_and_steady_traffic_raises_none() {
        let cfg = RateConfig::default();
        let mut r: Rates<&str> = Rates::new(cfg, "pkt/s");
        let mut events = Vec::new();
        // 60 s steady at 50 kpps with ±10 % wobble: nothing.
        for i in 0..60 {
            let wobble = if i % 2 == 0 { 1.1 } else { 0.9 };
            events.extend(r.step(&total(50_000.0 * wobble)));
        }
        assert!(events.is_empty(), "{events:?}");
        // 10 s at 500 kpps, wavering, then back.
        for i in 0..10 {
            events.extend(r.step(&total(if i == 5 { 190_000.0 } else { 500_000.0 })));
        }
        for _ in 0..10 {
            events.extend(r.step(&total(50_000.0)));
        }
        let kinds: Vec<(Kind, bool)> = events.iter().map(|e| (e.kind, e.start)).collect();
        assert_eq!(
            kinds,
            vec![(Kind::RateSpike, true), (Kind::RateSpike, false)]
        );
        assert!(events[0].detail.contains("500.0 k"), "{}", events[0].detail);
        // The spike did not become the baseline.
        assert!(r.rates["total"].baseline().unwrap() < 60_000.0);
    }

    #[test]
    fn one_source_spiking_is_named_and_a_source_going_quiet_is_not() {
        use crate::flows::{FlowKey, FlowStats};
        let mut w = Watch::new(WatchConfig::default());
        let flow = |src: &str, packets: u64| FlowStats {
            key: FlowKey {
                src: src.parse().unwrap(),
                dst: "198.18.0.2".parse().unwrap(),
                sport: 40000,
                dport: 9,
                proto: 17,
            },
            packets,
            bytes: 60 * packets,
            syns: 0,
            acks: 0,
        };
        let (mut a, mut b, mut c) = (0u64, 0u64, 0u64);
        let mut events = Vec::new();
        for t in 1..=40u64 {
            // a: 20 kpps, 200 kpps from 20 s to 26 s; b: 100 kpps; c: 15 kpps until 30 s.
            a += if (20..26).contains(&t) {
                200_000
            } else {
                20_000
            };
            b += 100_000;
            if t < 30 {
                c += 15_000;
            }
            let flows = [
                flow("198.18.0.1", a),
                flow("198.18.0.3", b),
                flow("198.18.0.4", c),
            ];
            let packets = a + b + c;
            events.extend(w.step(&Second {
                at_secs: t as f64,
                packets,
                queues: &[(0, packets)],
                flows: &flows,
            }));
        }
        let got: Vec<(Kind, &str, bool)> = events
            .iter()
            .filter(|e| e.kind != Kind::NewTalker)
            .map(|e| (e.kind, e.subject.as_str(), e.start))
            .collect();
        assert_eq!(
            got,
            vec![
                (Kind::RateSpike, "src 198.18.0.1", true),
                (Kind::RateSpike, "src 198.18.0.1", false)
            ],
            "{events:?}"
        );
        assert!(events[0].detail.starts_with("200.0 k"), "{events:?}");
    }

    #[test]
    fn source_rates_are_bounded_and_silent_ones_forgotten() {
        let mut r: Rates<&str> = Rates::spikes_only(RateConfig::default(), "pkt/s", 3);
        let all = HashMap::from([("a", 5.0), ("b", 5.0), ("c", 5.0), ("d", 5.0), ("e", 5.0)]);
        r.step(&all);
        assert_eq!(r.len(), 3);
        r.step(&HashMap::from([("a", 5.0)]));
        assert_eq!(r.len(), 1);
        r.step(&HashMap::new());
        assert!(r.is_empty());
    }

    #[test]
    fn a_small_link_growing_stays_below_the_floor() {
        let mut r: Rates<&str> = Rates::new(RateConfig::default(), "pkt/s");
        let mut events = Vec::new();
        for _ in 0..20 {
            events.extend(r.step(&total(100.0)));
        }
        for _ in 0..20 {
            events.extend(r.step(&total(5_000.0)));
        }
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn a_feed_going_silent_after_a_steady_period_is_named_and_its_return_ends_it() {
        let mut r: Rates<String> = Rates::new(RateConfig::default(), "pkt/s");
        let q = |v: f64| HashMap::from([("queue 1".to_string(), v)]);
        let mut events = Vec::new();
        for _ in 0..30 {
            events.extend(r.step(&q(20_000.0)));
        }
        for _ in 0..5 {
            events.extend(r.step(&HashMap::new())); // absent: 0
        }
        for _ in 0..5 {
            events.extend(r.step(&q(20_000.0)));
        }
        let kinds: Vec<(Kind, bool, &str)> = events
            .iter()
            .map(|e| (e.kind, e.start, e.subject.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (Kind::TrafficStopped, true, "queue 1"),
                (Kind::TrafficStopped, false, "queue 1")
            ]
        );
        // Silence before any steady period is no incident.
        let mut fresh: Rates<String> = Rates::new(RateConfig::default(), "pkt/s");
        let mut quiet = Vec::new();
        for _ in 0..3 {
            quiet.extend(fresh.step(&q(20_000.0)));
        }
        for _ in 0..10 {
            quiet.extend(fresh.step(&HashMap::new()));
        }
        assert!(quiet.is_empty(), "{quiet:?}");
    }

    #[test]
    fn a_syn_flood_is_named_with_its_destination_and_a_busy_server_is_not() {
        let victim: IpAddr = "198.18.0.2".parse().unwrap();
        let server: IpAddr = "198.18.0.3".parse().unwrap();
        let mut d = SynFlood::new(SynConfig::default());
        let mut events = Vec::new();
        for _ in 0..5 {
            let second = HashMap::from([
                (
                    victim,
                    Handshakes {
                        syn: 48_000,
                        answered: 155,
                    },
                ),
                (
                    server,
                    Handshakes {
                        syn: 20_000,
                        answered: 19_900,
                    },
                ),
            ]);
            events.extend(d.step(1.0, &second));
        }
        for _ in 0..3 {
            events.extend(d.step(1.0, &HashMap::new()));
        }
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events[0].start && events[0].subject == "dst 198.18.0.2");
        assert_eq!(events[0].detail, "48.0 kSYN/s, SYN:ACK 48000:155");
        assert!(!events[1].start && events[1].subject == "dst 198.18.0.2");
    }

    #[test]
    fn a_scan_of_500_ports_from_one_source_is_named_once_and_ends() {
        let scanner: IpAddr = "198.18.0.9".parse().unwrap();
        let client: IpAddr = "198.18.0.5".parse().unwrap();
        let dst: IpAddr = "198.18.0.2".parse().unwrap();
        let mut s = Scans::new(ScanConfig::default());
        let mut events = Vec::new();
        for second in 0..5u16 {
            for p in 0..100 {
                s.packet(scanner, dst, 1 + second * 100 + p);
            }
            for _ in 0..1000 {
                s.packet(client, dst, 443);
            }
            events.extend(s.tick());
        }
        // Quiet for two windows.
        for _ in 0..20 {
            events.extend(s.tick());
        }
        assert_eq!(
            starts_and_ends(&events),
            vec![(true, "src 198.18.0.9"), (false, "src 198.18.0.9")]
        );
        assert!(events[0].detail.contains("more than 100 destination ports"));
    }

    #[test]
    fn a_new_top_talker_is_named_after_the_baseline_and_a_usual_one_is_not() {
        let ip = |n: u8| IpAddr::from([198, 18, 0, n]);
        let cfg = TalkerConfig {
            top: 3,
            baseline: 10,
            hold: 2,
        };
        let mut t = NewTalkers::new(cfg);
        let usual = [(ip(1), 9000), (ip(2), 8000), (ip(3), 7000)];
        let mut events = Vec::new();
        for _ in 0..10 {
            events.extend(t.step(&usual));
        }
        // The usual ones change places: nothing.
        for _ in 0..5 {
            events.extend(t.step(&[(ip(3), 9500), (ip(1), 9000), (ip(2), 8000)]));
        }
        assert!(events.is_empty(), "{events:?}");
        // A newcomer at the top for 4 s, then gone.
        for _ in 0..4 {
            events.extend(t.step(&[(ip(9), 50_000), (ip(1), 9000), (ip(2), 8000)]));
        }
        for _ in 0..4 {
            events.extend(t.step(&usual));
        }
        assert_eq!(
            starts_and_ends(&events),
            vec![(true, "src 198.18.0.9"), (false, "src 198.18.0.9")]
        );
        assert!(
            events[0].detail.starts_with("number 1 by bytes"),
            "{}",
            events[0].detail
        );
        // Known now: back in the top, no alert.
        let mut again = Vec::new();
        for _ in 0..4 {
            again.extend(t.step(&[(ip(9), 50_000), (ip(1), 9000), (ip(2), 8000)]));
        }
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn the_watch_names_a_scan_from_the_flow_tables_and_a_queue_going_silent() {
        use crate::flows::{FlowKey, FlowStats};
        let cfg = WatchConfig {
            rate: RateConfig {
                steady: 3,
                ..RateConfig::default()
            },
            ..WatchConfig::default()
        };
        let mut w = Watch::new(cfg);
        let src: IpAddr = "198.18.0.1".parse().unwrap();
        let dst: IpAddr = "198.18.0.2".parse().unwrap();
        let flow = |dport: u16, packets: u64| FlowStats {
            key: FlowKey {
                src,
                dst,
                sport: 40000,
                dport,
                proto: 6,
            },
            packets,
            bytes: 60 * packets,
            syns: 0,
            acks: 0,
        };
        let mut clock = 0.0;
        let mut tick = || {
            clock += 1.0;
            clock
        };
        let mut flows = vec![flow(443, 0)];
        let mut events = Vec::new();
        let mut packets = 0;
        // Steady: 50 kpps on queue 0 for 6 s.
        for i in 1..=6u64 {
            packets += 50_000;
            flows[0] = flow(443, 50_000 * i);
            events.extend(w.step(&Second {
                at_secs: tick(),
                packets,
                queues: &[(0, packets)],
                flows: &flows,
            }));
        }
        assert!(events.is_empty(), "{events:?}");
        // 500 ports probed in one second, then silence.
        flows.extend((1..=500).map(|p| flow(p, 1)));
        packets += 500;
        events.extend(w.step(&Second {
            at_secs: tick(),
            packets,
            queues: &[(0, packets)],
            flows: &flows,
        }));
        for _ in 0..4 {
            events.extend(w.step(&Second {
                at_secs: tick(),
                packets,
                queues: &[(0, packets)],
                flows: &flows,
            }));
        }
        let got: Vec<(Kind, &str)> = events
            .iter()
            .filter(|e| e.start)
            .map(|e| (e.kind, e.subject.as_str()))
            .collect();
        assert!(got.contains(&(Kind::Scan, "src 198.18.0.1")), "{events:?}");
        assert!(
            got.contains(&(Kind::TrafficStopped, "queue 0")),
            "{events:?}"
        );
        assert!(got.contains(&(Kind::TrafficStopped, "total")), "{events:?}");
        assert!(w
            .active()
            .contains(&(Kind::Scan, "src 198.18.0.1".to_string())));
    }

    #[test]
    fn the_watch_names_a_syn_flood_from_the_flow_tables_and_not_a_busy_server() {
        use crate::flows::{FlowKey, FlowStats};
        let cfg = WatchConfig::default();
        let mut w = Watch::new(cfg);
        let victim: IpAddr = "198.18.0.2".parse().unwrap();
        let server: IpAddr = "198.18.0.3".parse().unwrap();
        let flow = |dst: IpAddr, sport: u16, syns: u32, acks: u32| FlowStats {
            key: FlowKey {
                src: "198.18.0.1".parse().unwrap(),
                dst,
                sport,
                dport: 80,
                proto: 6,
            },
            packets: u64::from(syns + acks),
            bytes: 60 * u64::from(syns + acks),
            syns,
            acks,
        };
        let mut flows = Vec::new();
        let mut events = Vec::new();
        for second in 0..6u16 {
            // 5,000 new half-open connections to the victim; 5,000 complete
            // handshakes to the server.
            for i in 0..5000u16 {
                let sport = second * 5000 + i;
                flows.push(flow(victim, sport, 1, 0));
                flows.push(flow(server, sport, 1, 3));
            }
            events.extend(w.step(&Second {
                at_secs: f64::from(second),
                packets: 0,
                queues: &[],
                flows: &flows,
            }));
        }
        let got: Vec<(Kind, bool, &str)> = events
            .iter()
            .map(|e| (e.kind, e.start, e.subject.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![(Kind::SynFlood, true, "dst 198.18.0.2")],
            "{events:?}"
        );
        assert_eq!(events[0].detail, "5.0 kSYN/s, SYN:ACK 5000:0");
    }

    #[test]
    fn scan_memory_is_bounded_and_what_is_left_out_is_counted() {
        let cfg = ScanConfig {
            distinct: 10,
            window: 10,
            max_sources: 100,
        };
        let mut s = Scans::new(cfg);
        let dst: IpAddr = "198.18.0.2".parse().unwrap();
        for i in 0..300u32 {
            let src = IpAddr::from([198, 19, (i >> 8) as u8, i as u8]);
            for p in 0..50 {
                s.packet(src, dst, p + 1);
            }
        }
        assert_eq!(s.sources.len(), 100);
        assert!(s.sources.values().all(|r| r.ports.len() <= 11));
        assert_eq!(s.untracked(), 200 * 50);
        assert_eq!(s.tick().len(), 100);
    }
}
