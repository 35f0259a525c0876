//! Connections this process makes to its own TCP services — the dashboard's
//! relays (Send, exec, files, the WebSocket relay, the labs, a capture's
//! replay) and tcp-proxies in front of a loopback upstream — all come from
//! 127.0.0.1. Counted as that
//! address's, a few dozen of them would fill `max_connections_per_peer`
//! for every other local client.
//!
//! Design: such a connection is *marked*. Its socket is bound first, and
//! its local address entered here before it connects; the accept side
//! takes the mark ([`take`]) and then admits the connection without a
//! per-address slot. It still counts against the service's
//! `max_connections`, and it is admitted under its relay's own budget
//! (the dashboard's session, WebSocket and live-stream caps, the proxy's
//! own `max_connections`), which bound how many there can be. A mark
//! cannot be forged from outside: it lives in this process's memory, and
//! only the address of a socket this process bound is ever entered. A port
//! behind a proxy (`accept_proxy`) lets a marked connection in without the
//! PROXY header it asks of everyone else: nothing stands between us and
//! ourselves to send one (see `proxy_header`).
//!
//! Bounds: at most [`MAX_MARKED`] marks wait at once (past that, a
//! connection is simply not marked and counts as 127.0.0.1's); a mark not
//! taken within [`MAX_AGE`] (a connect to some other local program) is
//! dropped the next time one is entered.
//!
//! The dashboard opts in per task ([`scope`]): the command-line clients,
//! `bench` and anything else built on the client library never mark.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::{TcpSocket, TcpStream};

use crate::sync::lock;

/// Marks waiting to be taken, at most.
pub const MAX_MARKED: usize = 4096;
/// How long a mark waits for its accept.
pub const MAX_AGE: Duration = Duration::from_secs(10);

tokio::task_local! {
    static INTERNAL: ();
}

fn marks() -> &'static Mutex<HashMap<SocketAddr, Instant>> {
    static MARKS: OnceLock<Mutex<HashMap<SocketAddr, Instant>>> = OnceLock::new();
    MARKS.get_or_init(Mutex::default)
}

/// Runs `f` with its connections to loopback marked as internal.
pub async fn scope<F: Future>(f: F) -> F::Output {
    INTERNAL.scope((), f).await
}

/// Whether the current task marks its connections.
pub fn active() -> bool {
    INTERNAL.try_with(|()| ()).is_ok()
}

fn mark(local: SocketAddr) -> bool {
    let mut marks = lock(marks());
    let now = Instant::now();
    marks.retain(|_, at| now.duration_since(*at) < MAX_AGE);
    if marks.len() >= MAX_MARKED {
        return false;
    }
    marks.insert(local, now);
    true
}

fn unmark(local: SocketAddr) {
    lock(marks()).remove(&local);
}

/// Whether `peer` is one of our own marked connections, the mark left for
/// [`take`] (a port behind a proxy lets ours through without a header).
pub fn is_ours(peer: SocketAddr) -> bool {
    peer.ip().is_loopback() && lock(marks()).contains_key(&peer)
}

/// At accept: whether `peer` is one of our own marked connections (the
/// mark is used up).
pub fn take(peer: SocketAddr) -> bool {
    peer.ip().is_loopback() && lock(marks()).remove(&peer).is_some()
}

/// Connects to `to`, marked when `to` is on loopback.
///
/// # Errors
/// The connect's.
pub async fn connect(to: SocketAddr) -> std::io::Result<TcpStream> {
    if !to.ip().is_loopback() {
        return TcpStream::connect(to).await;
    }
    let socket = if to.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(to.ip(), 0))?;
    let local = socket.local_addr()?;
    let marked = mark(local);
    let connected = socket.connect(to).await;
    if connected.is_err() && marked {
        unmark(local);
    }
    connected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_marked_connection_is_recognised_once_and_others_never() {
        let listener = crate::service::listen::bind_inet("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = listener.local_addr().unwrap();
        let _ours = connect(to).await.unwrap();
        let (_, peer) = listener.accept().await.unwrap();
        assert!(is_ours(peer), "seen without being used up");
        assert!(take(peer));
        assert!(!take(peer), "a mark is used once");
        let _theirs = TcpStream::connect(to).await.unwrap();
        let (_, peer) = listener.accept().await.unwrap();
        assert!(!is_ours(peer));
        assert!(!take(peer));
        assert!(!active());
        assert!(scope(async { active() }).await);
    }
}
