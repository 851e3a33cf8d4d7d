//! A capture spread over many files: tcpdump's `-C`, `-G` and `-W`, its file
//! names, dumpcap's aligned intervals, and the retention of `--max-disk`, as
//! pure decisions. The runtime's writer thread asks these questions before
//! each write and does the file system work.
//!
//! File names follow tcpdump 4.99's `MakeFilename`: the `-w` name (after
//! strftime when `-G` is given), then, when `-C` is given, the file's number
//! within its period, padded to the digits of `N - 1` under `-W N`:
//!
//! ```text
//!   -w out.pcap -C 100          out.pcap  out.pcap1  out.pcap2 …
//!   -w out.pcap -C 100 -W 10    out.pcap0 … out.pcap9, then out.pcap0 again
//!   -w %H%M.pcap -G 60          1200.pcap  1201.pcap …
//!   -w %H%M.pcap -G 60 -C 100   1200.pcap  1200.pcap1 …  1201.pcap …
//! ```

use crate::config::ConfigError;

type Result<T> = std::result::Result<T, ConfigError>;

const NS_PER_SEC: u64 = 1_000_000_000;

/// Parses a size in tcpdump 4.99's `-C` form: a plain number is millions of
/// bytes; a `k`, `m` or `g` suffix (either case) means KiB, MiB or GiB.
///
/// # Errors
/// A [`ConfigError`] naming `flag`, for anything but a positive size.
pub fn parse_file_size(flag: &str, text: &str) -> Result<u64> {
    parse_size(flag, text, 1_000_000)
}

fn parse_size(flag: &str, text: &str, plain_unit: u64) -> Result<u64> {
    let bad = || {
        ConfigError(format!(
            "{flag} {text:?} is not a size: give a positive number of millions of bytes, or one with a k, m or g suffix (50k, 100m, 2g)"
        ))
    };
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1 << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, plain_unit),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    match n.checked_mul(unit) {
        Some(0) | None => Err(bad()),
        Some(bytes) => Ok(bytes),
    }
}

/// The limit of `--max-disk`: on this capture's files together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DiskLimit {
    /// At most this many bytes.
    Bytes(u64),
    /// At most this percentage of the size of the file system that holds them.
    Percent(f64),
}

impl DiskLimit {
    /// Parses `BYTES` (a plain number is bytes; `k`, `m`, `g` suffixes as
    /// for `-C`) or `PCT%`.
    ///
    /// # Errors
    /// A [`ConfigError`] for anything else, or a percentage outside (0, 100].
    pub fn parse(text: &str) -> Result<DiskLimit> {
        if let Some(pct) = text.trim().strip_suffix('%') {
            return match pct.trim().parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 100.0 => Ok(DiskLimit::Percent(p)),
                _ => Err(ConfigError(format!(
                    "--max-disk {text:?}: a percentage of the file system must be above 0% and at most 100%"
                ))),
            };
        }
        parse_size("--max-disk", text, 1)
            .map(DiskLimit::Bytes)
            .map_err(|_| {
                ConfigError(format!(
                    "--max-disk {text:?} is not a limit: give bytes (500000000, 500m, 2g) or a percentage of the file system (80%)"
                ))
            })
    }

    /// The limit in bytes on a file system of `fs_bytes`.
    pub fn bytes(self, fs_bytes: u64) -> u64 {
        match self {
            DiskLimit::Bytes(b) => b,
            DiskLimit::Percent(p) => (fs_bytes as f64 * p / 100.0) as u64,
        }
    }
}

/// When a capture moves to a new file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    /// `-C`: a new file before the current one would pass this many bytes.
    pub size: Option<u64>,
    /// `-G`: a new file every this many seconds.
    pub interval_secs: Option<u64>,
    /// `-W`: with `size`, a ring of this many file numbers; with
    /// `interval_secs` alone, stop after this many files.
    pub files: Option<u32>,
    /// `--align`: periods start at multiples of the interval since the
    /// epoch (every minute at :00), the first one cut short.
    pub align: bool,
}

impl Rotation {
    /// Whether the capture is spread over several files at all.
    pub fn is_active(&self) -> bool {
        self.size.is_some() || self.interval_secs.is_some()
    }

    /// Checks the combination.
    ///
    /// # Errors
    /// A [`ConfigError`] for `-W` or `--align` without what they modify,
    /// or zero values.
    pub fn validate(&self) -> Result<()> {
        if self.interval_secs == Some(0) {
            return Err(ConfigError(
                "-G 0: the rotation interval must be at least 1 second".into(),
            ));
        }
        if self.files == Some(0) {
            return Err(ConfigError("-W 0: give at least 1 file".into()));
        }
        if self.files.is_some() && !self.is_active() {
            return Err(ConfigError(
                "-W needs -C SIZE (a ring of files) or -G SECS (stop after N files)".into(),
            ));
        }
        if self.align && self.interval_secs.is_none() {
            return Err(ConfigError(
                "--align needs -G SECS: it aligns the rotation interval to the clock".into(),
            ));
        }
        Ok(())
    }

    /// Digits tcpdump pads file numbers to: those of `N - 1` under `-W N`.
    pub fn number_width(&self) -> usize {
        match self.files {
            Some(n) if self.size.is_some() => {
                let mut x = n.saturating_sub(1);
                let mut digits = 0;
                while x > 0 {
                    digits += 1;
                    x /= 10;
                }
                digits
            }
            _ => 0,
        }
    }

    /// The file name for number `count` of a period, `base` being the `-w`
    /// name after strftime: numbered only under `-C`, and then `count` 0
    /// bare unless `-W` pads it.
    pub fn file_name(&self, base: &str, count: u32) -> String {
        let width = self.number_width();
        if self.size.is_none() || (count == 0 && width == 0) {
            base.to_string()
        } else {
            format!("{base}{count:0width$}")
        }
    }

    /// The largest number a period's file gets: under `-C` with `-W N`,
    /// N - 1; under `-C` alone the count goes on (to `u32::MAX`); 0 without
    /// `-C`.
    pub fn largest_count(&self) -> u32 {
        match (self.size, self.files) {
            (None, _) => 0,
            (Some(_), Some(n)) => n.saturating_sub(1),
            (Some(_), None) => u32::MAX,
        }
    }

    /// Whether a rotation of the `-w` file name `base` can write a file
    /// named `name`: `base`, `base` followed by digits, either with the
    /// `.part` suffix files have while written. A name with strftime
    /// conversions makes names of times to come: never an existing file's.
    pub fn may_write(base: &str, name: &str) -> bool {
        if base.contains('%') {
            return false;
        }
        let name = name.strip_suffix(".part").unwrap_or(name);
        name.strip_prefix(base)
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()))
    }

    /// Whether a record of `record_len` bytes goes to a new file: it would
    /// take the current file (`file_len` bytes, `records` records in it)
    /// past `-C`. A file always takes its first record, however large.
    pub fn full(&self, file_len: u64, records: u64, record_len: u64) -> bool {
        self.size
            .is_some_and(|max| records > 0 && file_len + record_len > max)
    }
}

/// Which file a capture writes: the period it belongs to and its number in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Start of the period, in seconds since the epoch: what strftime names.
    pub period_secs: u64,
    /// The file's number within the period (`-C`), wrapping under `-W`.
    pub count: u32,
}

/// The directory a file named `path` goes in: its parent, or `.` for a
/// bare name.
pub fn directory_of(path: &std::path::Path) -> &std::path::Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    }
}

/// The sequence of files of a capture, and when the current one ends.
#[derive(Debug, Clone)]
pub struct Schedule {
    rotation: Rotation,
    current: Slot,
    /// End of the current period (ns since the epoch), under `-G`.
    period_end_ns: Option<u64>,
    /// Files started so far.
    started: u64,
}

/// What the writer does when the current period ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodEnd {
    /// Move to this file.
    Next(Slot),
    /// `-G` with `-W N`: the N files are done; the capture stops, and what
    /// still arrives goes into the last one.
    Done,
}

impl Schedule {
    /// The schedule of a capture starting at `now_ns` (wall clock).
    pub fn new(rotation: Rotation, now_ns: u64) -> Schedule {
        let (period_secs, period_end_ns) = match rotation.interval_secs {
            None => (now_ns / NS_PER_SEC, None),
            Some(g) => {
                let g_ns = g * NS_PER_SEC;
                let start = if rotation.align {
                    now_ns - now_ns % g_ns
                } else {
                    now_ns
                };
                (start / NS_PER_SEC, Some(start + g_ns))
            }
        };
        Schedule {
            rotation,
            current: Slot {
                period_secs,
                count: 0,
            },
            period_end_ns,
            started: 1,
        }
    }

    /// The rotation this schedule follows.
    pub fn rotation(&self) -> &Rotation {
        &self.rotation
    }

    /// The file being written.
    pub fn current(&self) -> Slot {
        self.current
    }

    /// When the current period ends (ns since the epoch), under `-G`.
    pub fn period_end_ns(&self) -> Option<u64> {
        self.period_end_ns
    }

    /// Files started so far.
    pub fn started(&self) -> u64 {
        self.started
    }

    /// The file after the current one when it fills up (`-C`).
    pub fn after_full(&self) -> Slot {
        let mut count = self.current.count.wrapping_add(1);
        if self.rotation.files.is_some_and(|n| count >= n) {
            count = 0;
        }
        Slot {
            period_secs: self.current.period_secs,
            count,
        }
    }

    /// Moves to the next file because the current one is full.
    pub fn advance_full(&mut self) -> Slot {
        self.current = self.after_full();
        self.started += 1;
        self.current
    }

    /// Whether the current period has ended at `now_ns`.
    pub fn period_over(&self, now_ns: u64) -> bool {
        self.period_end_ns.is_some_and(|end| now_ns >= end)
    }

    /// The file that starts the next period, if there is one.
    pub fn after_period(&self) -> PeriodEnd {
        let Some(end) = self.period_end_ns else {
            return PeriodEnd::Done;
        };
        let last = self.rotation.size.is_none()
            && self
                .rotation
                .files
                .is_some_and(|n| self.started >= u64::from(n));
        if last {
            return PeriodEnd::Done;
        }
        PeriodEnd::Next(Slot {
            period_secs: end / NS_PER_SEC,
            count: 0,
        })
    }

    /// Moves to the next period at `now_ns`. Periods that passed without
    /// a write (the writer was idle or blocked) are skipped: the new period
    /// is the one `now_ns` falls in, on the same grid.
    pub fn advance_period(&mut self, now_ns: u64) -> PeriodEnd {
        let next = self.after_period();
        if let (PeriodEnd::Next(_), Some(end), Some(g)) =
            (next, self.period_end_ns, self.rotation.interval_secs)
        {
            let g_ns = g * NS_PER_SEC;
            let start = if now_ns >= end + g_ns {
                end + (now_ns - end) / g_ns * g_ns
            } else {
                end
            };
            self.current = Slot {
                period_secs: start / NS_PER_SEC,
                count: 0,
            };
            self.period_end_ns = Some(start + g_ns);
            self.started += 1;
            return PeriodEnd::Next(self.current);
        }
        next
    }
}

/// How many of a capture's oldest closed files to delete so that
/// `incoming` more bytes keep its files within `limit`: `closed` are their
/// sizes, oldest first, `current` the size of the file being written (never
/// deleted). `None` when even deleting every closed file is not enough.
pub fn files_to_delete(
    closed: impl IntoIterator<Item = u64>,
    current: u64,
    incoming: u64,
    limit: u64,
) -> Option<usize> {
    let sizes: Vec<u64> = closed.into_iter().collect();
    let mut total: u64 = sizes.iter().sum::<u64>() + current + incoming;
    let mut delete = 0;
    while total > limit {
        total -= sizes.get(delete)?;
        delete += 1;
    }
    Some(delete)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_tcpdump_reads_them() {
        let p = |t| parse_file_size("-C", t);
        assert_eq!(p("1"), Ok(1_000_000));
        assert_eq!(p("50k"), Ok(50 * 1024));
        assert_eq!(p("100M"), Ok(100 << 20));
        assert_eq!(p("2g"), Ok(2 << 30));
        for bad in [
            "",
            "0",
            "k",
            "-1",
            "1.5",
            "10x",
            "1 0",
            "99999999999999999999g",
        ] {
            let e = p(bad).unwrap_err().0;
            assert!(e.starts_with("-C "), "{bad}: {e}");
        }
        assert_eq!(DiskLimit::parse("80%"), Ok(DiskLimit::Percent(80.0)));
        assert_eq!(DiskLimit::parse("500m"), Ok(DiskLimit::Bytes(500 << 20)));
        assert_eq!(DiskLimit::parse("1000"), Ok(DiskLimit::Bytes(1000)));
        assert!(DiskLimit::parse("0%").is_err());
        assert!(DiskLimit::parse("101%").is_err());
        assert!(DiskLimit::parse("lots").is_err());
        assert_eq!(DiskLimit::Percent(50.0).bytes(1000), 500);
    }

    #[test]
    fn names_follow_tcpdump() {
        let by_size = Rotation {
            size: Some(100),
            ..Rotation::default()
        };
        assert_eq!(by_size.file_name("out.pcap", 0), "out.pcap");
        assert_eq!(by_size.file_name("out.pcap", 12), "out.pcap12");
        let ring = |n| Rotation {
            files: Some(n),
            ..by_size
        };
        assert_eq!(ring(10).file_name("out.pcap", 0), "out.pcap0");
        assert_eq!(ring(10).file_name("out.pcap", 9), "out.pcap9");
        assert_eq!(ring(11).file_name("out.pcap", 3), "out.pcap03");
        assert_eq!(ring(1).file_name("out.pcap", 0), "out.pcap");
        assert_eq!(ring(1000).file_name("o", 7), "o007");
        let by_time = Rotation {
            interval_secs: Some(60),
            files: Some(10),
            ..Rotation::default()
        };
        assert_eq!(by_time.file_name("1200.pcap", 0), "1200.pcap");
    }

    #[test]
    fn a_file_takes_records_up_to_its_size() {
        let r = Rotation {
            size: Some(1000),
            ..Rotation::default()
        };
        assert!(!r.full(24, 0, 5000), "the first record always goes in");
        assert!(!r.full(900, 3, 100));
        assert!(r.full(901, 3, 100));
        assert!(!Rotation::default().full(u64::MAX / 2, 9, 100));
    }

    #[test]
    fn a_ring_wraps_and_sizes_number_within_periods() {
        let r = Rotation {
            size: Some(1000),
            files: Some(3),
            ..Rotation::default()
        };
        let mut s = Schedule::new(r, 5 * NS_PER_SEC);
        let counts: Vec<u32> = (0..7).map(|_| s.advance_full().count).collect();
        assert_eq!(counts, [1, 2, 0, 1, 2, 0, 1]);
        assert_eq!(s.started(), 8);
        assert!(!s.period_over(u64::MAX), "no -G, no period");
    }

    #[test]
    fn periods_follow_the_interval_and_skip_idle_ones() {
        let r = Rotation {
            interval_secs: Some(60),
            size: Some(1000),
            ..Rotation::default()
        };
        let t0 = 1_000 * NS_PER_SEC + 7;
        let mut s = Schedule::new(r, t0);
        assert_eq!(s.current().period_secs, 1_000);
        assert_eq!(s.period_end_ns(), Some(t0 + 60 * NS_PER_SEC));
        s.advance_full();
        assert_eq!(s.current().count, 1);
        assert!(!s.period_over(t0 + 60 * NS_PER_SEC - 1));
        assert!(s.period_over(t0 + 60 * NS_PER_SEC));
        let next = s.advance_period(t0 + 61 * NS_PER_SEC);
        assert_eq!(
            next,
            PeriodEnd::Next(Slot {
                period_secs: 1_060,
                count: 0
            })
        );
        // Three periods later (a stalled writer): the period `now` is in.
        let next = s.advance_period(t0 + 250 * NS_PER_SEC);
        assert_eq!(
            next,
            PeriodEnd::Next(Slot {
                period_secs: 1_240,
                count: 0
            })
        );
        assert_eq!(s.period_end_ns(), Some(t0 + 300 * NS_PER_SEC));
    }

    #[test]
    fn aligned_periods_start_on_the_clock() {
        let r = Rotation {
            interval_secs: Some(60),
            align: true,
            ..Rotation::default()
        };
        let s = Schedule::new(r, 1_234 * NS_PER_SEC + 5);
        assert_eq!(s.current().period_secs, 1_200);
        assert_eq!(s.period_end_ns(), Some(1_260 * NS_PER_SEC));
    }

    #[test]
    fn interval_with_w_alone_stops_after_n_files() {
        let r = Rotation {
            interval_secs: Some(1),
            files: Some(3),
            ..Rotation::default()
        };
        let mut s = Schedule::new(r, 0);
        assert!(matches!(s.advance_period(NS_PER_SEC), PeriodEnd::Next(_)));
        assert!(matches!(
            s.advance_period(2 * NS_PER_SEC),
            PeriodEnd::Next(_)
        ));
        assert_eq!(s.advance_period(3 * NS_PER_SEC), PeriodEnd::Done);
        assert_eq!(s.started(), 3);
        // With -C, -W numbers a ring instead and periods go on.
        let r = Rotation {
            size: Some(100),
            ..r
        };
        let mut s = Schedule::new(r, 0);
        for i in 1..10 {
            assert!(matches!(
                s.advance_period(i * NS_PER_SEC),
                PeriodEnd::Next(_)
            ));
        }
    }

    #[test]
    fn retention_deletes_the_oldest_first_and_only_what_is_needed() {
        assert_eq!(files_to_delete([], 10, 10, 100), Some(0));
        assert_eq!(files_to_delete([40, 40], 10, 10, 100), Some(0));
        assert_eq!(files_to_delete([40, 40], 10, 11, 100), Some(1));
        assert_eq!(files_to_delete([40, 40, 40], 50, 10, 100), Some(2));
        assert_eq!(files_to_delete([40], 95, 10, 100), None);
    }

    #[test]
    fn combinations_are_checked() {
        let bad = |r: Rotation| r.validate().unwrap_err().0;
        assert!(bad(Rotation {
            files: Some(3),
            ..Rotation::default()
        })
        .starts_with("-W needs"));
        assert!(bad(Rotation {
            align: true,
            size: Some(1),
            ..Rotation::default()
        })
        .starts_with("--align needs -G"));
        assert!(bad(Rotation {
            interval_secs: Some(0),
            ..Rotation::default()
        })
        .starts_with("-G 0"));
        assert!(Rotation {
            interval_secs: Some(60),
            files: Some(5),
            align: true,
            size: None
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn a_rotation_may_write_its_own_names_only() {
        for name in [
            "x.pcap",
            "x.pcap1",
            "x.pcap007",
            "x.pcap.part",
            "x.pcap12.part",
        ] {
            assert!(Rotation::may_write("x.pcap", name), "{name}");
        }
        for name in ["x.pcap.old", "x.pcapng", "y.pcap", "x.pca", "x.pcap1.gz"] {
            assert!(!Rotation::may_write("x.pcap", name), "{name}");
        }
        assert!(!Rotation::may_write("t-%s.pcap", "t-%s.pcap"));
    }

    #[test]
    fn the_largest_count_bounds_every_name() {
        let r = |size: Option<u64>, files: Option<u32>| Rotation {
            size,
            interval_secs: Some(60),
            files,
            align: false,
        };
        assert_eq!(r(None, Some(5)).largest_count(), 0);
        assert_eq!(r(Some(1000), Some(12)).largest_count(), 11);
        let ring = r(Some(1000), Some(12));
        assert_eq!(ring.file_name("x", ring.largest_count()), "x11");
        let on = r(Some(1000), None);
        assert_eq!(on.file_name("x", on.largest_count()), "x4294967295");
    }

    #[test]
    fn a_bare_name_lives_in_the_current_directory() {
        use std::path::Path;
        assert_eq!(directory_of(Path::new("x.pcap")), Path::new("."));
        assert_eq!(directory_of(Path::new("/cap/x.pcap")), Path::new("/cap"));
        assert_eq!(directory_of(Path::new("a/x.pcap")), Path::new("a"));
    }
}
