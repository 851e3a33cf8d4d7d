//! The connections the dashboard server accepts: at most [`MAX_CONNECTIONS`]
//! in all and [`MAX_PER_PEER`] from one address (what is refused is
//! counted), and each must send a request's headers within
//! [`HEADER_TIMEOUT`] of connecting or of its last response, unless it has
//! become a WebSocket. Idle or slow clients, with or without the token, can
//! therefore never make the dashboard unreachable.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep, Sleep};

use super::{ServerStats, CLIENT_SNDBUF};

/// Connections open at most, in all.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections open at most from one address.
pub const MAX_PER_PEER: usize = 32;
/// How long a connection may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Open connections by peer address.
#[derive(Default)]
struct Open {
    by_peer: HashMap<IpAddr, usize>,
    total: usize,
}

/// The listener axum serves: accepts within the limits.
pub struct Limited {
    inner: TcpListener,
    open: Arc<Mutex<Open>>,
    stats: Arc<ServerStats>,
}

impl Limited {
    /// Wraps `inner`, counting into `stats`.
    pub fn new(inner: TcpListener, stats: Arc<ServerStats>) -> Limited {
        Limited {
            inner,
            open: Arc::default(),
            stats,
        }
    }

    /// Takes a slot for `peer`, or `None` when a limit is reached.
    fn admit(&self, peer: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().ok()?;
        let mine = open.by_peer.get(&peer).copied().unwrap_or(0);
        if open.total >= MAX_CONNECTIONS || mine >= MAX_PER_PEER {
            return None;
        }
        open.total += 1;
        open.by_peer.insert(peer, mine + 1);
        Some(Slot {
            peer,
            open: self.open.clone(),
        })
    }
}

impl axum::serve::Listener for Limited {
    type Io = Guarded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Guarded, SocketAddr) {
        loop {
            let (stream, peer) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(_) => {
                    // Out of descriptors or a reset before accept: try again shortly.
                    sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let Some(slot) = self.admit(peer.ip()) else {
                self.stats
                    .refused_connections
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let _ = socket2::SockRef::from(&stream).set_send_buffer_size(CLIENT_SNDBUF);
            return (
                Guarded {
                    stream,
                    _slot: slot,
                    deadline: Some(Box::pin(sleep(HEADER_TIMEOUT))),
                    tail: [0; 3],
                    upgraded: false,
                    idle_closed: self.stats.clone(),
                },
                peer,
            );
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A connection's place in the limits, given back when it closes.
struct Slot {
    peer: IpAddr,
    open: Arc<Mutex<Open>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock() {
            open.total -= 1;
            if let Some(n) = open.by_peer.get_mut(&self.peer) {
                *n -= 1;
                if *n == 0 {
                    open.by_peer.remove(&self.peer);
                }
            }
        }
    }
}

/// An accepted connection with its header deadline.
pub struct Guarded {
    stream: TcpStream,
    _slot: Slot,
    /// Armed while the connection owes a request's headers.
    deadline: Option<Pin<Box<Sleep>>>,
    /// The last three bytes read, to find the end of headers across reads.
    tail: [u8; 3],
    /// A WebSocket now: it may stay silent.
    upgraded: bool,
    idle_closed: Arc<ServerStats>,
}

/// Whether `tail` followed by `data` contains the end of an HTTP header block.
fn ends_headers(tail: &[u8; 3], data: &[u8]) -> bool {
    let mut joined = tail.to_vec();
    joined.extend_from_slice(data);
    joined.windows(4).any(|w| w == b"\r\n\r\n")
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(deadline) = &mut this.deadline {
            if deadline.as_mut().poll(cx).is_ready() {
                this.deadline = None;
                this.idle_closed.idle_closed.fetch_add(1, Ordering::Relaxed);
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request headers in time",
                )));
            }
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        let data = &buf.filled()[before..];
        if !data.is_empty() && this.deadline.is_some() {
            if ends_headers(&this.tail, data) {
                this.deadline = None;
            }
            let mut joined = this.tail.to_vec();
            joined.extend_from_slice(data);
            this.tail.copy_from_slice(&joined[joined.len() - 3..]);
        }
        result
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if !this.upgraded && buf.starts_with(b"HTTP/1.1 ") {
            if buf.starts_with(b"HTTP/1.1 101") {
                this.upgraded = true;
                this.deadline = None;
            } else {
                // A response: the next request's headers are owed from now.
                this.deadline = Some(Box::pin(sleep(HEADER_TIMEOUT)));
                this.tail = [0; 3];
            }
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::ends_headers;

    #[test]
    fn the_end_of_headers_is_found_across_reads() {
        assert!(ends_headers(&[0; 3], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!ends_headers(&[0; 3], b"GET / HTTP/1.1\r\nHost: x\r\n"));
        assert!(ends_headers(b"\r\n\r", b"\n"));
        assert!(ends_headers(b"x\r\n", b"\r\n"));
    }
}
