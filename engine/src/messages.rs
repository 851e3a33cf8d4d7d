//! `xsktap feed --messages FILE`: the thread that writes each feed's merged
//! messages in the BinaryFILE layout (u16 big-endian length, then the
//! message), the layout ITCH replay and book-building tools read.
//!
//! Workers append the messages to their feed's buffer under the feed's lock
//! (a copy of the message bytes, no I/O); this thread swaps the buffers out
//! every few milliseconds and writes them, so a slow disk never holds a
//! worker. A buffer that reaches its bound drops messages, counted per feed
//! (`messages_not_written`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use xsktap_core::feed::Feeds;
use xsktap_sys::error::syscall_error;

use crate::files::Notices;
use crate::{Error, Result};

const EVERY: Duration = Duration::from_millis(10);

/// The files, one per feed: FILE for a single feed, FILE.1, FILE.2, … in
/// the order the feeds were given otherwise.
pub fn message_files(path: &Path, feeds: usize) -> Vec<PathBuf> {
    if feeds == 1 {
        return vec![path.to_path_buf()];
    }
    (1..=feeds)
        .map(|i| {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".{i}"));
            PathBuf::from(name)
        })
        .collect()
}

/// The running writer; dropping it writes what is left and stops.
pub(crate) struct MessageWriter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MessageWriter {
    /// Opens the files (refused as `-w`'s are: never through a planted
    /// link, never another user's file) and starts writing.
    pub(crate) fn start(
        feeds: Arc<Feeds>,
        path: &Path,
        cpus: &[usize],
        notices: &Arc<Notices>,
    ) -> Result<MessageWriter> {
        let mut files = Vec::new();
        for p in message_files(path, feeds.len()) {
            let (file, _) = xsktap_sys::output::open_output(&p)?;
            file.set_len(0).map_err(|error| Error::Output {
                path: p.clone(),
                error,
            })?;
            files.push((p, file));
        }
        feeds.keep_messages();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, cpus, notices) = (stop.clone(), cpus.to_vec(), notices.clone());
            std::thread::Builder::new()
                .name("xsktap-messages".into())
                .spawn(move || run(&feeds, files, &stop, &cpus, &notices))
                .map_err(|e| syscall_error("spawn(messages thread)", e))?
        };
        Ok(MessageWriter {
            stop,
            thread: Some(thread),
        })
    }
}

fn run(
    feeds: &Feeds,
    mut files: Vec<(PathBuf, File)>,
    stop: &AtomicBool,
    cpus: &[usize],
    notices: &Notices,
) {
    let _ = xsktap_sys::cpu::pin_current_thread(cpus);
    let mut buf = Vec::new();
    let mut failed = vec![false; files.len()];
    loop {
        // Read before the last round, so that nothing taken after it is left.
        let last = stop.load(Ordering::Relaxed);
        for (i, (path, file)) in files.iter_mut().enumerate() {
            feeds.take_messages(i, &mut buf);
            if buf.is_empty() || failed[i] {
                continue;
            }
            if let Err(e) = file.write_all(&buf) {
                failed[i] = true;
                notices.push(format!(
                    "--messages: writing {} failed ({e}); its later messages are not written",
                    path.display()
                ));
            }
        }
        if last {
            break;
        }
        std::thread::sleep(EVERY);
    }
}

impl Drop for MessageWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
