//! A capture written to a sequence of files (`-C`, `-G`, `-W`): the file
//! being written, the next one opened ahead, the closed ones, retention
//! (`--max-disk`) and the command run on each closed file (`-z`).
//!
//! Everything here runs on the writer thread, off the workers' CPUs; the
//! decisions (names, sizes, periods, what to delete) are `xsktap_core::rotation`'s.
//!
//! A file is written under its name plus `.part` and renamed to its name
//! once complete, so a reader or an archiver watching the directory never
//! picks up a half-written file. Each file starts with its own header and
//! holds whole records only: it is a valid capture on its own.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Sender};
use xsktap_core::rotation::{
    directory_of, files_to_delete, DiskLimit, PeriodEnd, Rotation, Schedule, Slot,
};

use crate::pcapng::Book;
use crate::writer::Framing;
use crate::{Error, Result};

/// How a capture's output is spread over files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileRotation {
    /// When to move to a new file, and the file names.
    pub rotation: Rotation,
    /// `--max-disk`: the oldest files of this capture are deleted to keep
    /// them all within this.
    pub max_disk: Option<DiskLimit>,
    /// `-z`: a program run with each closed file's name as its argument.
    pub hook: Option<String>,
}

/// A file a capture wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// Its path.
    pub path: PathBuf,
    /// Packets in it.
    pub packets: u64,
    /// Its size in bytes, file header included.
    pub bytes: u64,
}

/// The files of a capture at its end.
#[derive(Debug, Clone, Default)]
pub struct FilesReport {
    /// The files still on disk, oldest first.
    pub files: Vec<FileReport>,
    /// Files this capture deleted (a ring's overwritten files, `--max-disk`).
    pub removed_files: u64,
    /// Packets in the deleted files.
    pub removed_packets: u64,
    /// `-z` commands run, and those that failed.
    pub hooks_run: u64,
    /// `-z` commands that failed to start or exited unsuccessfully.
    pub hooks_failed: u64,
    /// Files no longer under their name once the `-z` commands ended: a
    /// command removed or renamed them (`rm`, `gzip`).
    pub hooked_files: u64,
    /// Packets in them.
    pub hooked_packets: u64,
}

impl FilesReport {
    /// Packets in every file this capture wrote, deleted ones included.
    pub fn packets(&self) -> u64 {
        self.files.iter().map(|f| f.packets).sum::<u64>()
            + self.removed_packets
            + self.hooked_packets
    }
}

/// Things the writer thread has to say to the user (a `-z` failure), read
/// by whoever reports.
#[derive(Debug, Default)]
pub struct Notices(Mutex<Vec<String>>);

impl Notices {
    pub(crate) fn push(&self, line: String) {
        if let Ok(mut v) = self.0.lock() {
            // Bounded: a user who never reads them loses the oldest.
            if v.len() >= 1000 {
                v.remove(0);
            }
            v.push(line);
        }
    }

    /// Takes every notice not taken yet.
    pub fn take(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// The files already there under names the rotation of the `-w` name
/// `pattern` makes (see [`Rotation::may_write`]), `.part` files included.
pub(crate) fn taken_names(pattern: &Path) -> Vec<PathBuf> {
    let Some(base) = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return Vec::new();
    };
    std::fs::read_dir(directory_of(pattern))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| Rotation::may_write(&base, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect()
}

/// A child's handle on this process's standard error.
fn stderr_stdio() -> io::Result<std::process::Stdio> {
    use std::os::fd::AsFd;
    Ok(io::stderr().as_fd().try_clone_to_owned()?.into())
}

/// The `-z` commands, run one at a time on their own thread so that a slow
/// one never holds up the writer; the queue of names is unbounded (a name
/// per closed file).
struct Hooks {
    tx: Sender<PathBuf>,
    run: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

impl Hooks {
    fn start(command: String, notices: Arc<Notices>, cpus: Vec<usize>) -> io::Result<Hooks> {
        let (tx, rx) = unbounded::<PathBuf>();
        let run = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (run_c, failed_c) = (run.clone(), failed.clone());
        let thread = std::thread::Builder::new()
            .name("xsktap-hooks".into())
            .spawn(move || {
                if !cpus.is_empty() {
                    let _ = xsktap_sys::cpu::pin_current_thread(&cpus);
                }
                for path in rx.iter() {
                    run_c.fetch_add(1, Ordering::Relaxed);
                    // As tcpdump: the command and the file's name, no shell.
                    // Its output goes to stderr: stdout may be the capture's
                    // own stream (`-w -`, `monitor --json`).
                    let status = stderr_stdio().and_then(|stderr| {
                        std::process::Command::new(&command)
                            .arg(&path)
                            .stdin(std::process::Stdio::null())
                            .stdout(stderr)
                            .status()
                    });
                    let why = match status {
                        Ok(s) if s.success() => continue,
                        Ok(s) => s.to_string(),
                        Err(e) => format!("cannot run it: {e}"),
                    };
                    failed_c.fetch_add(1, Ordering::Relaxed);
                    notices.push(format!("-z {command} {}: {why}", path.display()));
                }
            })?;
        Ok(Hooks {
            tx,
            run,
            failed,
            thread,
        })
    }
}

/// A file being written (under its `.part` name).
struct OpenFile {
    file: File,
    part: PathBuf,
    name: PathBuf,
    slot: Slot,
    bytes: u64,
    packets: u64,
}

/// The files of a rotating capture.
pub(crate) struct FileSet {
    pattern: String,
    schedule: Schedule,
    header: Vec<u8>,
    current: Option<OpenFile>,
    ahead: Option<OpenFile>,
    closed: VecDeque<FileReport>,
    removed_files: u64,
    removed_packets: u64,
    limit: Option<u64>,
    hooks: Option<Hooks>,
    /// `-G` with `-W N`: the N files are done.
    done: Arc<AtomicBool>,
    notices: Arc<Notices>,
    /// Whether the capture started: until then a failure removes the file.
    committed: bool,
    /// Owner given to every file (`-Z`).
    owner: Option<(u32, u32)>,
    /// The statistics of a pcapng output, written at the end of each file.
    pub(crate) book: Option<Book>,
    /// `--on-disk-full overwrite-oldest`.
    pub(crate) overwrite_oldest: bool,
}

fn part_name(name: &Path) -> PathBuf {
    let mut part = name.as_os_str().to_owned();
    part.push(".part");
    PathBuf::from(part)
}

fn output_error(path: &Path, error: io::Error) -> Error {
    Error::OutputWrite {
        path: path.to_path_buf(),
        error,
    }
}

impl FileSet {
    /// Opens the first file of the capture (`pattern` is the `-w` name) and
    /// writes its header, before anything is attached.
    pub(crate) fn open(
        pattern: &str,
        cfg: &FileRotation,
        header: Vec<u8>,
        notices: Arc<Notices>,
        owner: Option<(u32, u32)>,
    ) -> Result<FileSet> {
        let schedule = Schedule::new(cfg.rotation, xsktap_sys::clock::wall_ns());
        let limit = match cfg.max_disk {
            None => None,
            Some(DiskLimit::Bytes(b)) => Some(b),
            Some(pct) => {
                let dir = directory_of(Path::new(pattern));
                let fs =
                    xsktap_sys::output::filesystem_bytes(dir).map_err(|error| Error::Output {
                        path: dir.to_path_buf(),
                        error,
                    })?;
                Some(pct.bytes(fs))
            }
        };
        let mut set = FileSet {
            pattern: pattern.to_string(),
            schedule,
            header,
            current: None,
            ahead: None,
            closed: VecDeque::new(),
            removed_files: 0,
            removed_packets: 0,
            limit,
            hooks: None,
            done: Arc::new(AtomicBool::new(false)),
            notices,
            committed: false,
            owner,
            book: None,
            overwrite_oldest: false,
        };
        set.check_name_lengths()?;
        set.note_earlier_files();
        let first = set.create(set.schedule.current())?;
        set.current = Some(first);
        Ok(set)
    }

    /// The capture runs: from now on the files are kept, and `-z` runs on
    /// the closed ones.
    pub(crate) fn commit(&mut self, hook: Option<&str>, cpus: &[usize]) -> Result<()> {
        if let Some(command) = hook {
            self.hooks = Some(
                Hooks::start(command.to_string(), self.notices.clone(), cpus.to_vec())
                    .map_err(|e| xsktap_sys::error::syscall_error("spawn(hook thread)", e))?,
            );
        }
        self.committed = true;
        Ok(())
    }

    /// Set once `-G` with `-W N` has written its N files.
    pub(crate) fn done_flag(&self) -> Arc<AtomicBool> {
        self.done.clone()
    }

    fn name(&self, slot: Slot) -> Result<PathBuf> {
        let base = if self.schedule.rotation().interval_secs.is_some() {
            xsktap_sys::clock::local_strftime(&self.pattern, slot.period_secs as i64).ok_or_else(
                || {
                    Error::Config(format!(
                        "-w {}: the name does not expand (strftime) to a valid path",
                        self.pattern
                    ))
                },
            )?
        } else {
            self.pattern.clone()
        };
        Ok(PathBuf::from(
            self.schedule.rotation().file_name(&base, slot.count),
        ))
    }

    /// Refuses a `-w` name whose rotation would make a file name longer
    /// than a file name may be (255 bytes, `NAME_MAX` on Linux's file
    /// systems): found at start, not at the rotation that fails.
    fn check_name_lengths(&self) -> Result<()> {
        const NAME_MAX: usize = 255;
        let slot = Slot {
            count: self.schedule.rotation().largest_count(),
            ..self.schedule.current()
        };
        let longest = part_name(&self.name(slot)?);
        let len = longest.file_name().map_or(0, |n| n.len());
        if len > NAME_MAX {
            return Err(Error::Config(format!(
                "-w {}: the rotation makes file names of up to {len} bytes (such as {}), over the {NAME_MAX} a name may have: use a shorter name",
                self.pattern,
                longest.file_name().unwrap_or_default().to_string_lossy()
            )));
        }
        Ok(())
    }

    /// Says so when names this rotation makes are taken already: files of
    /// an earlier capture under the same `-w` name (overwritten as the
    /// numbers reach them, the others left beside this capture's), and
    /// `.part` files of one that did not finish.
    fn note_earlier_files(&self) {
        let taken = taken_names(Path::new(&self.pattern));
        let parts = taken
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "part"))
            .count();
        let whole = taken.len() - parts;
        if whole + parts > 0 {
            self.notices.push(format!(
                "-w {}: {whole} file(s) of an earlier capture and {parts} .part file(s) of one that did not finish are there under this name; this capture replaces those its names reach and leaves the rest beside its own: move them away to keep the captures apart",
                self.pattern
            ));
        }
    }

    /// Creates the `.part` file of `slot` and writes its header.
    fn create(&self, slot: Slot) -> Result<OpenFile> {
        let name = self.name(slot)?;
        let part = part_name(&name);
        let (mut file, created) = xsktap_sys::output::open_output(&part)?;
        let written = (|| {
            if !created {
                // A `.part` left by a capture that died: start it over.
                file.set_len(0)?;
            }
            if let Some((uid, gid)) = self.owner {
                std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
            }
            file.write_all(&self.header)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&part);
            return Err(output_error(&part, e));
        }
        Ok(OpenFile {
            file,
            part,
            name,
            slot,
            bytes: self.header.len() as u64,
            packets: 0,
        })
    }

    /// Opens the file most likely to come next, so that a rotation is a
    /// rename and a swap. Best effort: a failure here is retried at the
    /// rotation itself, where it counts.
    fn open_ahead(&mut self) {
        if self.ahead.is_some() || self.done.load(Ordering::Relaxed) {
            return;
        }
        let slot = if self.schedule.rotation().size.is_some() {
            self.schedule.after_full()
        } else {
            match self.schedule.after_period() {
                PeriodEnd::Next(slot) => slot,
                PeriodEnd::Done => return,
            }
        };
        let Ok(name) = self.name(slot) else { return };
        if self.current.as_ref().is_some_and(|c| c.name == name) {
            // The same name again (no strftime escape, no -C): nothing to open ahead.
            return;
        }
        self.ahead = self.create(slot).ok();
    }

    /// When the writer must wake up to end the current period, if ever.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if self.done.load(Ordering::Relaxed) {
            return None;
        }
        let end = self.schedule.period_end_ns()?;
        let now = xsktap_sys::clock::wall_ns();
        Some(Instant::now() + Duration::from_nanos(end.saturating_sub(now)))
    }

    /// Ends the current period if its time has come.
    pub(crate) fn tick(&mut self) -> Result<()> {
        let now = xsktap_sys::clock::wall_ns();
        if self.done.load(Ordering::Relaxed) || !self.schedule.period_over(now) {
            self.open_ahead();
            return Ok(());
        }
        match self.schedule.advance_period(now) {
            PeriodEnd::Next(slot) => self.switch(slot)?,
            // The last file stays open for what the workers still hand over.
            PeriodEnd::Done => self.done.store(true, Ordering::Relaxed),
        }
        self.open_ahead();
        Ok(())
    }

    /// Closes the current file (renamed into place, `-z` run on it) and
    /// makes `slot` the current one.
    fn switch(&mut self, slot: Slot) -> Result<()> {
        self.close_current()?;
        let next = match self.ahead.take() {
            Some(ahead) if ahead.slot == slot => ahead,
            Some(ahead) => {
                let _ = std::fs::remove_file(&ahead.part);
                self.create(slot)?
            }
            None => self.create(slot)?,
        };
        // A ring: the new file takes the number of an older one of this
        // capture, which goes now, so that a ring of N holds N files. (The
        // file just closed stays until the new one replaces it, when a name
        // without escapes comes back every period.)
        let older = self.closed.len().saturating_sub(1);
        if let Some(i) = self
            .closed
            .iter()
            .take(older)
            .position(|f| f.path == next.name)
        {
            self.remove_closed(i);
        }
        self.current = Some(next);
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        let Some(current) = self.current.take() else {
            return Ok(());
        };
        let mut current = current;
        if let Some(book) = &mut self.book {
            // Each pcapng file says what its queues saw and lost while it was written.
            let trailer = book.close_file();
            match write_all(&mut current.file, &trailer) {
                Ok(()) => current.bytes += trailer.len() as u64,
                Err(_) => cut_back(&current.file, current.bytes),
            }
        }
        std::fs::rename(&current.part, &current.name)
            .map_err(|e| output_error(&current.name, e))?;
        // The rename replaced a file of this capture of the same name.
        if let Some(i) = self.closed.iter().position(|f| f.path == current.name) {
            if let Some(f) = self.closed.remove(i) {
                self.removed_files += 1;
                self.removed_packets += f.packets;
            }
        }
        self.closed.push_back(FileReport {
            path: current.name.clone(),
            packets: current.packets,
            bytes: current.bytes,
        });
        if let Some(hooks) = &self.hooks {
            let _ = hooks.tx.send(current.name);
        }
        Ok(())
    }

    fn remove_closed(&mut self, i: usize) {
        if let Some(f) = self.closed.remove(i) {
            let _ = std::fs::remove_file(&f.path);
            self.removed_files += 1;
            self.removed_packets += f.packets;
        }
    }

    /// Deletes the oldest files of this capture until `incoming` more bytes
    /// fit under `--max-disk`.
    fn make_room(&mut self, incoming: u64) -> io::Result<()> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let current = self.current.as_ref().map_or(0, |c| c.bytes)
            + self.ahead.as_ref().map_or(0, |a| a.bytes);
        match files_to_delete(self.closed.iter().map(|f| f.bytes), current, incoming, limit) {
            Some(n) => {
                for _ in 0..n {
                    self.remove_closed(0);
                }
                Ok(())
            }
            None => Err(io::Error::other(
                format!(
                    "--max-disk {limit} bytes reached with no older file of this capture left to delete (use a smaller -C or a larger --max-disk)"
                ),
            )),
        }
    }

    /// Writes `data`, whole records of queue index `queue`, rotating before
    /// any record that would take the current file past `-C`. On an error,
    /// returns it with the length of the whole records of `data` that were
    /// written; the file is cut back to its last whole record.
    pub(crate) fn write(
        &mut self,
        data: &[u8],
        queue: u32,
        framing: Framing,
    ) -> std::result::Result<(), (io::Error, usize)> {
        if let Err(e) = self.tick() {
            return Err((io_error(e), 0));
        }
        let mut done = 0;
        while done < data.len() {
            if self.current.is_none() {
                // Opening the file failed earlier (a full disk, with
                // --on-disk-full drop-and-count): try again.
                let file = self
                    .create(self.schedule.current())
                    .map_err(|e| (io_error(e), done))?;
                self.current = Some(file);
            }
            let rest = &data[done..];
            // The run of records that fits the current file.
            let (mut run, mut packets) = (0, 0);
            let (file_len, file_packets) = match &self.current {
                Some(c) => (c.bytes, c.packets),
                None => (0, 0),
            };
            while let Some(len) = framing.first(&rest[run..]) {
                let rotation = self.schedule.rotation();
                if rotation.full(file_len + run as u64, file_packets + packets, len as u64) {
                    break;
                }
                run += len;
                packets += 1;
            }
            if run == 0 && framing.first(rest).is_some() {
                // The next record starts a new file.
                let slot = self.schedule.advance_full();
                self.switch(slot).map_err(|e| (io_error(e), done))?;
                self.open_ahead();
                continue;
            }
            if run == 0 {
                // Not a whole record: never written.
                return Err((io::Error::other("a cut record reached the writer"), done));
            }
            self.make_room(run as u64).map_err(|e| (e, done))?;
            let current = self.current.as_mut().expect("a file is open while writing");
            let (written, result) = match write_all(&mut current.file, &rest[..run]) {
                Ok(()) => ((packets, run), Ok(())),
                Err((e, partial)) => {
                    let (n, _, whole) = framing.whole(&rest[..partial]);
                    ((n, whole), Err(e))
                }
            };
            current.bytes += written.1 as u64;
            current.packets += written.0;
            if let Some(book) = &mut self.book {
                book.written(queue as usize, written.0);
            }
            done += written.1;
            if let Err(e) = result {
                cut_back(&current.file, current.bytes);
                if self.overwrite_oldest
                    && xsktap_sys::output::is_disk_full(&e)
                    && !self.closed.is_empty()
                {
                    // --on-disk-full overwrite-oldest: make room and go on.
                    if let Some(oldest) = self.closed.front() {
                        self.notices.push(format!(
                            "{}: {e}: deleted {} to make room (--on-disk-full overwrite-oldest)",
                            current.name.display(),
                            oldest.path.display()
                        ));
                    }
                    self.remove_closed(0);
                    continue;
                }
                return Err((e, done));
            }
        }
        Ok(())
    }

    /// Closes the last file (renamed into place, `-z` run on it), removes
    /// the one opened ahead, waits for the `-z` commands, and reports.
    pub(crate) fn finish(mut self) -> (FilesReport, Option<Error>) {
        let error = self.close_current().err();
        if let Some(ahead) = self.ahead.take() {
            let _ = std::fs::remove_file(&ahead.part);
        }
        let mut report = FilesReport {
            files: std::mem::take(&mut self.closed).into(),
            removed_files: self.removed_files,
            removed_packets: self.removed_packets,
            hooks_run: 0,
            hooks_failed: 0,
            hooked_files: 0,
            hooked_packets: 0,
        };
        if let Some(hooks) = self.hooks.take() {
            drop(hooks.tx);
            let _ = hooks.thread.join();
            report.hooks_run = hooks.run.load(Ordering::Relaxed);
            report.hooks_failed = hooks.failed.load(Ordering::Relaxed);
            // The list is of what is on disk now that the commands ended.
            let (kept, moved): (Vec<_>, Vec<_>) = std::mem::take(&mut report.files)
                .into_iter()
                .partition(|f| std::fs::symlink_metadata(&f.path).is_ok());
            report.files = kept;
            report.hooked_files = moved.len() as u64;
            report.hooked_packets = moved.iter().map(|f| f.packets).sum();
        }
        (report, error)
    }
}

impl Drop for FileSet {
    fn drop(&mut self) {
        // A start that failed leaves no file behind.
        if !self.committed {
            for f in [self.current.take(), self.ahead.take()]
                .into_iter()
                .flatten()
            {
                let _ = std::fs::remove_file(&f.part);
            }
        }
    }
}

/// Cuts `file` back to `len` bytes (its last whole record) and writes on
/// from there: a later write must not leave a hole.
pub(crate) fn cut_back(file: &File, len: u64) {
    use std::io::Seek;
    let _ = file.set_len(len);
    let mut f = file;
    let _ = f.seek(io::SeekFrom::Start(len));
}

/// The I/O error inside an engine error, so that a caller can still tell
/// a full disk; other errors keep their message.
fn io_error(e: Error) -> io::Error {
    match e {
        Error::Output { error, .. } | Error::OutputWrite { error, .. } => {
            match error.raw_os_error() {
                Some(code) => io::Error::from_raw_os_error(code),
                None => error,
            }
        }
        other => io::Error::other(other.to_string()),
    }
}

/// Writes `data` whole; on an error, returns it with the bytes written.
pub(crate) fn write_all(
    out: &mut dyn Write,
    data: &[u8],
) -> std::result::Result<(), (io::Error, usize)> {
    let mut done = 0;
    while done < data.len() {
        match out.write(&data[done..]) {
            Ok(0) => return Err((io::ErrorKind::WriteZero.into(), done)),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((e, done)),
        }
    }
    Ok(())
}
