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
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use xsktap_core::feed::Feeds;

use crate::background::{nap, stopping, Background};
use crate::files::Notices;
use crate::{Error, Result};

const EVERY: Duration = Duration::from_millis(10);

/// The running writer; dropping it writes what is left and stops.
pub(crate) struct MessageWriter {
    _thread: Background,
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
        for p in xsktap_core::feed::message_files(path, feeds.len()) {
            let (file, _) = xsktap_sys::output::open_output(&p)?;
            file.set_len(0).map_err(|error| Error::Output {
                path: p.clone(),
                error,
            })?;
            files.push((p, file));
        }
        feeds.keep_messages();
        let notices = notices.clone();
        let thread = Background::spawn("xsktap-messages", cpus, move |stop| {
            run(&feeds, files, stop, &notices)
        })?;
        Ok(MessageWriter { _thread: thread })
    }
}

fn run(feeds: &Feeds, mut files: Vec<(PathBuf, File)>, stop: &AtomicBool, notices: &Notices) {
    let mut buf = Vec::new();
    let mut failed = vec![false; files.len()];
    loop {
        // Read before the last round, so that nothing taken after it is left.
        let last = stopping(stop);
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
        nap(EVERY);
    }
}
