//! `accept_proxy`: the real client's address from a PROXY protocol header
//! (v1 or v2) that a trusted proxy (HAProxy `send-proxy`, `send-proxy-v2`)
//! puts before every connection's first byte.
//!
//! [`ProxyIntake`] sits inside a listener: it accepts, drops a peer that is
//! not a trusted proxy, reads each header on its own future (so one slow
//! proxy connection never holds up the accept loop) and hands the accept
//! loop a stream positioned just after the header, with the client the
//! header names as its peer. Admission, stats, logs, audit and captures then
//! see that client, with no change of theirs. A header is read with `peek`
//! and only the header's bytes are consumed, so the service's first byte is
//! still in the socket: no buffer to carry over, splice and TLS still work.
//!
//! This process's own connections (the dashboard's relays, a tcp-proxy in
//! front of one of its own services) come straight from loopback, with no
//! proxy in between and so no header: a connection marked as ours (see
//! `service::internal`) is let through as it is, its peer its own address.
//! A refused peer reads one line of text, or on a TLS port a TLS
//! `access_denied` alert (what a TLS client can read before a handshake).
//!
//! It does not speak for UDP (no PROXY header there), unix sockets (no
//! peer address to trust) or the dashboard (see `web::client_addr`, which
//! uses [`read_header`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::net::{TcpListener, TcpStream};

use crate::settings::TrustedProxies;
use crate::sync::lock;
use crate::wire::proxy_protocol::{self, Addresses, ProxyHeaderError, V2_MAX_LEN};

/// How long a trusted proxy has to send the whole header. HAProxy sends it
/// with the connection, so seconds are generous.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Headers being read at once; past it, accepting waits (the kernel's
/// backlog holds newcomers) until one is done.
const MAX_PENDING: usize = 256;

/// Why a connection got no client address from its header.
#[derive(Debug, thiserror::Error)]
pub enum ProxyRefusal {
    #[error(
        "{0} is not a trusted proxy (trusted_proxies: {1}): a PROXY header is only accepted from one"
    )]
    Untrusted(std::net::IpAddr, String),
    #[error("no PROXY protocol header within {HEADER_TIMEOUT:?}")]
    Timeout,
    #[error("closed before a whole PROXY protocol header")]
    Eof,
    #[error("{0} (accept_proxy requires one on every connection)")]
    Bad(#[from] ProxyHeaderError),
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the PROXY header at the start of `stream`, consuming exactly its
/// bytes, within [`HEADER_TIMEOUT`] and [`V2_MAX_LEN`] bytes.
///
/// # Errors
/// No header, a bad one, silence, or the peer closing first.
pub async fn read_header(stream: &mut TcpStream) -> Result<Addresses, ProxyRefusal> {
    tokio::time::timeout(HEADER_TIMEOUT, read_header_untimed(stream))
        .await
        .map_err(|_| ProxyRefusal::Timeout)?
}

async fn read_header_untimed(stream: &mut TcpStream) -> Result<Addresses, ProxyRefusal> {
    use tokio::io::AsyncReadExt;
    // What was consumed so far: always a prefix of a header, as decode said.
    let mut have = Vec::with_capacity(V2_MAX_LEN);
    let mut peeked = [0u8; V2_MAX_LEN];
    loop {
        let room = V2_MAX_LEN - have.len();
        let n = stream.peek(&mut peeked[..room.max(1)]).await?;
        if n == 0 {
            return Err(ProxyRefusal::Eof);
        }
        let mut candidate = have.clone();
        candidate.extend_from_slice(&peeked[..n]);
        match proxy_protocol::decode(&candidate)? {
            Some((header, len)) => {
                let mut rest = vec![0u8; len - have.len()];
                stream.read_exact(&mut rest).await?;
                return Ok(header.addresses);
            }
            None if candidate.len() >= V2_MAX_LEN => {
                return Err(ProxyHeaderError::TooLarge {
                    len: candidate.len(),
                }
                .into());
            }
            None => {
                // All of it is header: take it, so the next peek waits
                // for new bytes instead of returning these again.
                stream.read_exact(&mut peeked[..n]).await?;
                have.extend_from_slice(&peeked[..n]);
            }
        }
    }
}

/// The client a header names; `peer` itself for a header that names none
/// (v1 `UNKNOWN`, v2 `LOCAL`: the proxy's own health check).
pub fn client_of(addresses: &Addresses, peer: SocketAddr) -> SocketAddr {
    match addresses {
        Addresses::Tcp { src, .. } => *src,
        Addresses::Unknown => peer,
    }
}

type Reading = Pin<Box<dyn Future<Output = Option<(TcpStream, SocketAddr)>> + Send>>;

/// A listener's PROXY protocol intake: who may send a header, and the
/// headers being read.
pub struct ProxyIntake {
    trusted: TrustedProxies,
    /// Kept here, not in the accept future, so a cancelled accept loses
    /// nothing: the readings go on and the next accept picks them up.
    pending: Mutex<FuturesUnordered<Reading>>,
    log: LogThrottle,
}

impl ProxyIntake {
    /// `at`: the listening address, named in the log lines.
    pub fn new(trusted: TrustedProxies, at: String) -> Self {
        ProxyIntake {
            trusted,
            pending: Mutex::new(FuturesUnordered::new()),
            log: LogThrottle {
                at: std::sync::Arc::from(at),
                ..LogThrottle::default()
            },
        }
    }

    /// The next connection whose header has been read: its stream (just
    /// past the header) and the client it names. Untrusted peers and bad
    /// headers are logged and closed here, never returned.
    ///
    /// # Errors
    /// Accepting failed (out of descriptors, most likely).
    ///
    /// # Cancel safety
    /// Cancel safe: headers being read stay with the intake.
    pub async fn accept(
        &self,
        listener: &TcpListener,
        tls: bool,
    ) -> std::io::Result<(TcpStream, SocketAddr)> {
        let refusal: &'static [u8] = if tls {
            &super::listen::TLS_ACCESS_DENIED
        } else {
            REFUSAL_LINE
        };
        std::future::poll_fn(|cx| self.poll_accept(listener, refusal, cx)).await
    }

    fn poll_accept(
        &self,
        listener: &TcpListener,
        refusal: &'static [u8],
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<(TcpStream, SocketAddr)>> {
        let mut pending = lock(&self.pending);
        loop {
            while let Poll::Ready(Some(done)) = pending.poll_next_unpin(cx) {
                if let Some(ready) = done {
                    return Poll::Ready(Ok(ready));
                }
            }
            if pending.len() >= MAX_PENDING {
                // A reading that ends wakes us.
                return Poll::Pending;
            }
            match listener.poll_accept(cx) {
                Poll::Ready(Ok((stream, peer))) => {
                    // Ours: no proxy in between, no header to read. The
                    // mark stays for admission to take.
                    if super::internal::is_ours(peer, || stream.local_addr().ok()) {
                        return Poll::Ready(Ok((stream, peer)));
                    }
                    if !self.trusted.contains(peer.ip()) {
                        let why = ProxyRefusal::Untrusted(peer.ip(), self.trusted.to_string());
                        self.log.refused(peer, &why);
                        super::listen::last_words(&stream, refusal);
                        continue;
                    }
                    let log = self.log.clone();
                    pending.push(Box::pin(async move {
                        let mut stream = stream;
                        match read_header(&mut stream).await {
                            Ok(addresses) => Some((stream, client_of(&addresses, peer))),
                            Err(why) => {
                                log.refused(peer, &why);
                                super::listen::last_words(&stream, refusal);
                                None
                            }
                        }
                    }));
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// The one line a refused plain-text peer may read before the close: a
/// refusal line (`crate::wire::refusal`), kept whole for the accept loop.
const REFUSAL_LINE: &[u8] =
    b"switchboard: this port takes connections through a trusted proxy only\n";

/// Logs refusals at warn, at most [`LOG_BURST`] a minute, then one line
/// saying how many more there were: a flood of strangers must not flood
/// the log.
#[derive(Clone, Default)]
struct LogThrottle {
    recent: std::sync::Arc<Mutex<(VecDeque<Instant>, u64)>>,
    at: std::sync::Arc<str>,
}

const LOG_BURST: usize = 20;
const LOG_WINDOW: Duration = Duration::from_secs(60);

impl LogThrottle {
    fn refused(&self, peer: SocketAddr, why: &ProxyRefusal) {
        let now = Instant::now();
        let mut guard = lock(&self.recent);
        let (times, dropped) = &mut *guard;
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) > LOG_WINDOW)
        {
            times.pop_front();
        }
        if times.len() >= LOG_BURST {
            *dropped += 1;
            return;
        }
        times.push_back(now);
        let also = std::mem::take(dropped);
        let why = why.to_string();
        if also > 0 {
            tracing::warn!(%peer, listen = %self.at, "connection refused: {} ({also} more refused and not logged)", why.escape_debug());
        } else {
            tracing::warn!(%peer, listen = %self.at, "connection refused: {}", why.escape_debug());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn the_refusal_is_a_refusal_line_clients_recognise() {
        let reason = "this port takes connections through a trusted proxy only";
        assert_eq!(REFUSAL_LINE, crate::wire::refusal::line(reason).as_bytes());
    }

    async fn pair() -> (TcpStream, TcpStream) {
        let l = crate::service::listen::bind_inet("127.0.0.1:0".parse().unwrap()).unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        (c, s)
    }

    #[tokio::test]
    async fn header_in_pieces_is_read_and_the_data_after_it_kept() {
        use tokio::io::AsyncReadExt;
        let src: SocketAddr = "203.0.113.9:4444".parse().unwrap();
        let dst: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        for version in [proxy_protocol::Version::V1, proxy_protocol::Version::V2] {
            let mut bytes = proxy_protocol::encode(version, &Addresses::Tcp { src, dst });
            bytes.extend_from_slice(b"hello");
            let (mut c, mut s) = pair().await;
            let reader = tokio::spawn(async move {
                let a = read_header(&mut s).await;
                let mut rest = [0u8; 5];
                s.read_exact(&mut rest).await.unwrap();
                (a.unwrap(), rest)
            });
            for chunk in bytes.chunks(7) {
                c.write_all(chunk).await.unwrap();
                c.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            let (a, rest) = reader.await.unwrap();
            assert_eq!(client_of(&a, dst), src);
            assert_eq!(&rest, b"hello");
        }
    }

    #[tokio::test]
    async fn no_header_or_a_bad_one_is_refused() {
        for input in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"PROXY TCP4 1.2.3.4\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9",
            b"\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff",
        ] {
            let (mut c, mut s) = pair().await;
            c.write_all(input).await.unwrap();
            assert!(read_header(&mut s).await.is_err(), "{input:?}");
        }
        let (c, mut s) = pair().await;
        drop(c);
        assert!(matches!(read_header(&mut s).await, Err(ProxyRefusal::Eof)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_proxy_times_out() {
        let (_c, mut s) = pair().await;
        assert!(matches!(
            read_header(&mut s).await,
            Err(ProxyRefusal::Timeout)
        ));
    }
}
