//! `xsktap feed --rerequest ADDR:PORT`: the thread that asks the
//! retransmission server for each feed's gaps (what and when is decided by
//! `xsktap_core::feed::recovery`) and merges its answers into the feed.
//!
//! One UDP socket per feed, so that an answer belongs to the feed whose
//! socket it reaches. Answers are unicast to that socket's port: the XDP
//! program's feed set does not hold it, so they reach the host stack and
//! the socket as any other datagram.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use xsktap_core::feed::mold;
use xsktap_core::feed::recovery::Policy;
use xsktap_core::feed::Feeds;
use xsktap_sys::error::syscall_error;

use crate::background::{nap, stopping, Background};
use crate::files::Notices;
use crate::Result;

/// How often the thread looks for answers and gaps to ask for.
const TICK: Duration = Duration::from_millis(2);

/// The running requester; dropping it stops the thread.
pub(crate) struct Rerequester {
    _thread: Background,
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
        let notices = notices.clone();
        let thread = Background::spawn("xsktap-rerequest", cpus, move |stop| {
            run(&feeds, &sockets, server, stop, &notices)
        })?;
        Ok(Rerequester { _thread: thread })
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
    notices: &Notices,
) {
    let mut buf = vec![0u8; 65_536];
    // Each kind of trouble is said once per feed; the summary counts the rest.
    let mut failed = vec![false; sockets.len()];
    let mut unanswered = vec![false; sockets.len()];
    while !stopping(stop) {
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
        nap(TICK);
    }
}
