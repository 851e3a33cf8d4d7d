//! `xsktap feed --rerequest ADDR:PORT`: the thread that asks the
//! retransmission server for each feed's gaps (what and when is decided by
//! `xsktap_core::feed::recovery`) and merges its answers into the feed.
//!
//! One UDP socket per feed, so that an answer belongs to the feed whose
//! socket it reaches. Answers are unicast to that socket's port: the XDP
//! program's feed set does not hold it, so they reach the host stack and
//! the socket as any other datagram.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use xsktap_core::feed::mold;
use xsktap_core::feed::recovery::Policy;
use xsktap_core::feed::Feeds;
use xsktap_sys::error::syscall_error;

use crate::files::Notices;
use crate::Result;

/// How often the thread looks for answers and gaps to ask for.
const TICK: Duration = Duration::from_millis(2);

/// The running requester; dropping it stops the thread.
pub(crate) struct Rerequester {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Rerequester {
    /// Opens one socket per feed towards `server` and starts asking.
    pub(crate) fn start(
        feeds: Arc<Feeds>,
        server: SocketAddr,
        cpus: &[usize],
        notices: &Arc<Notices>,
    ) -> Result<Rerequester> {
        let any: SocketAddr = if server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sockets = (0..feeds.len())
            .map(|_| {
                let s = UdpSocket::bind(any)?;
                s.connect(server)?;
                s.set_nonblocking(true)?;
                Ok(s)
            })
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| syscall_error("opening the --rerequest sockets", e))?;
        feeds.recover(Policy::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, cpus, notices) = (stop.clone(), cpus.to_vec(), notices.clone());
            std::thread::Builder::new()
                .name("xsktap-rerequest".into())
                .spawn(move || run(&feeds, &sockets, server, &stop, &cpus, &notices))
                .map_err(|e| syscall_error("spawn(rerequest thread)", e))?
        };
        Ok(Rerequester {
            stop,
            thread: Some(thread),
        })
    }
}

fn wall_ns() -> u64 {
    xsktap_sys::clock::wall_ns()
}

fn run(
    feeds: &Feeds,
    sockets: &[UdpSocket],
    server: SocketAddr,
    stop: &AtomicBool,
    cpus: &[usize],
    notices: &Notices,
) {
    let _ = xsktap_sys::cpu::pin_current_thread(cpus);
    let mut buf = vec![0u8; 65_536];
    // Each kind of trouble is said once per feed; the summary counts the rest.
    let mut failed = vec![false; sockets.len()];
    let mut unanswered = vec![false; sockets.len()];
    while !stop.load(Ordering::Relaxed) {
        for (i, socket) in sockets.iter().enumerate() {
            let mut fail = |e: std::io::Error| {
                if !std::mem::replace(&mut failed[i], true) {
                    notices.push(format!(
                        "--rerequest {server}: {e} (is the retransmission server running?); feed {}'s gaps stay open unless it answers",
                        feeds.specs()[i].name
                    ));
                }
            };
            // Answers first: they may close gaps that would be asked for.
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) => feeds.retransmission(i, &buf[..n], wall_ns()),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    // An ICMP error for an earlier request (port unreachable).
                    Err(e) => {
                        fail(e);
                        break;
                    }
                }
            }
            let (send, given_up) = feeds.requests(i, wall_ns());
            for r in send {
                let packet = mold::encode_request(&r.session, r.seq, r.count);
                if let Err(e) = socket.send(&packet) {
                    fail(e);
                }
            }
            if let Some(r) = given_up.first() {
                // After a refusal, that line said it already.
                if !failed[i] && !std::mem::replace(&mut unanswered[i], true) {
                    notices.push(format!(
                        "--rerequest {server} did not answer for feed {} session {}: messages {} to {} stay missing (later ones are counted in the summary)",
                        feeds.specs()[i].name,
                        r.session,
                        r.seq,
                        r.seq + u64::from(r.count) - 1
                    ));
                }
            }
        }
        std::thread::sleep(TICK);
    }
}

impl Drop for Rerequester {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
