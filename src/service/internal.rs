//! Connections this process makes to its own TCP services — the dashboard's
//! relays (Send, exec, files, the WebSocket relay, the labs, a capture's
//! replay) and tcp-proxies in front of a loopback upstream — all come from
//! 127.0.0.1. Counted as that address's, a few dozen of them would fill
//! `max_connections_per_peer` for every other local client.
//!
//! Design: such a connection is *marked*. Its socket is bound first, and
//! its local address entered here, with the address it connects to,
//! before it connects; the accept side takes the mark ([`take`]) when the
//! connection arrives at that address, and then admits it without a
//! per-address slot. It still counts against the service's
//! `max_connections`, and it is admitted under its relay's own budget
//! (the dashboard's session, WebSocket and live-stream caps, the proxy's
//! own `max_connections`), which bound how many there can be. A mark
//! cannot be forged from outside: it lives in this process's memory, and
//! only the address of a socket this process bound is ever entered. A mark
//! names where it connects to, and is entered only when that is where one
//! of our TCP services listens ([`Listening`]): a tcp-proxy in front of
//! some other local program marks nothing, so its clients cannot fill the
//! table. A mark is removed when its connect fails or is abandoned (a
//! timeout), and honoured for [`MAX_AGE`] at most.
//!
//! A port behind a proxy (`accept_proxy`) lets a marked connection in
//! without the PROXY header it asks of everyone else: nothing stands
//! between us and ourselves to send one (see `proxy_header`).
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

/// Our socket's address → where it connects to, and when it was marked.
type Marks = HashMap<SocketAddr, (SocketAddr, Instant)>;

fn marks() -> &'static Mutex<Marks> {
    static MARKS: OnceLock<Mutex<Marks>> = OnceLock::new();
    MARKS.get_or_init(Mutex::default)
}

/// Where our TCP services listen, with how many listeners on each (a
/// reload may hold two on one address for a moment).
fn listening() -> &'static Mutex<HashMap<SocketAddr, usize>> {
    static LISTENING: OnceLock<Mutex<HashMap<SocketAddr, usize>>> = OnceLock::new();
    LISTENING.get_or_init(Mutex::default)
}

/// One of our TCP services listening on an address, while it is held:
/// connections to there are ours to mark.
pub(crate) struct Listening(SocketAddr);

impl Listening {
    pub(crate) fn new(at: SocketAddr) -> Listening {
        *lock(listening()).entry(at).or_default() += 1;
        Listening(at)
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let mut listening = lock(listening());
        if let Some(n) = listening.get_mut(&self.0) {
            *n -= 1;
            if *n == 0 {
                listening.remove(&self.0);
            }
        }
    }
}

/// Whether one of our TCP services listens where `to` reaches: on `to`
/// itself, or on the wildcard address of its family and port.
fn listening_at(to: SocketAddr) -> bool {
    let any = match to {
        SocketAddr::V4(_) => std::net::IpAddr::from(std::net::Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => std::net::IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED),
    };
    let listening = lock(listening());
    listening.contains_key(&to) || listening.contains_key(&SocketAddr::new(any, to.port()))
}

/// Runs `f` with its connections to loopback marked as internal.
pub async fn scope<F: Future>(f: F) -> F::Output {
    INTERNAL.scope((), f).await
}

/// Whether the current task marks its connections.
pub fn active() -> bool {
    INTERNAL.try_with(|()| ()).is_ok()
}

fn mark(local: SocketAddr, to: SocketAddr) -> bool {
    let mut marks = lock(marks());
    let now = Instant::now();
    marks.retain(|_, (_, at)| now.duration_since(*at) < MAX_AGE);
    if marks.len() >= MAX_MARKED {
        return false;
    }
    marks.insert(local, (to, now));
    true
}

/// A mark entered for a connect in flight: removed when dropped armed (the
/// connect failed, or its future was dropped by a timeout), left for the
/// accept side once disarmed.
struct Pending(Option<SocketAddr>);

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(local) = self.0 {
            lock(marks()).remove(&local);
        }
    }
}

/// Where `peer`'s mark says it connects to, if it holds one.
fn marked_to(peer: SocketAddr) -> Option<SocketAddr> {
    if !peer.ip().is_loopback() {
        return None;
    }
    lock(marks())
        .get(&peer)
        .filter(|(_, at)| at.elapsed() < MAX_AGE)
        .map(|(to, _)| *to)
}

/// Whether `peer`, accepted on `at` (our end of the connection, asked for
/// only when `peer` holds a mark), is one of our own marked connections;
/// the mark is left for [`take`] (a port behind a proxy lets ours through
/// without a header).
pub fn is_ours(peer: SocketAddr, at: impl FnOnce() -> Option<SocketAddr>) -> bool {
    marked_to(peer).is_some_and(|to| at() == Some(to))
}

/// At accept: [`is_ours`], and the mark is used up.
pub fn take(peer: SocketAddr, at: impl FnOnce() -> Option<SocketAddr>) -> bool {
    let Some(to) = marked_to(peer) else {
        return false;
    };
    if at() != Some(to) {
        return false;
    }
    let mut marks = lock(marks());
    match marks.get(&peer) {
        Some((still, _)) if *still == to => marks.remove(&peer).is_some(),
        _ => false,
    }
}

/// Connects to `to`, marked when `to` is on loopback where one of our TCP
/// services listens.
///
/// # Errors
/// The connect's.
pub async fn connect(to: SocketAddr) -> std::io::Result<TcpStream> {
    if !to.ip().is_loopback() || !listening_at(to) {
        return TcpStream::connect(to).await;
    }
    let socket = if to.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(to.ip(), 0))?;
    let local = socket.local_addr()?;
    let mut pending = Pending(mark(local, to).then_some(local));
    let connected = socket.connect(to).await?;
    pending.0 = None;
    Ok(connected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_marked_connection_is_recognised_once_and_others_never() {
        let listener = crate::service::listen::bind_inet("127.0.0.1:0".parse().unwrap()).unwrap();
        let other = crate::service::listen::bind_inet("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = listener.local_addr().unwrap();
        let elsewhere = other.local_addr().unwrap();
        let _listening = Listening::new(to);
        let _ours = connect(to).await.unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let at = || stream.local_addr().ok();
        assert!(is_ours(peer, at), "seen without being used up");
        assert!(
            !is_ours(peer, || Some(elsewhere)) && !take(peer, || Some(elsewhere)),
            "a mark is for the one address it connected to"
        );
        assert!(take(peer, at));
        assert!(!take(peer, at), "a mark is used once");
        let _theirs = TcpStream::connect(to).await.unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let at = || stream.local_addr().ok();
        assert!(!is_ours(peer, at));
        assert!(!take(peer, at));
        assert!(!active());
        assert!(scope(async { active() }).await);
    }

    #[tokio::test]
    async fn a_mark_goes_only_to_the_socket_it_was_made_for() {
        use crate::service::listen::Stream;
        use tokio_util::either::Either;
        let listener = crate::service::listen::bind_inet("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = listener.local_addr().unwrap();
        let _listening = Listening::new(to);
        let _ours = connect(to).await.unwrap();
        let (ours, relay) = listener.accept().await.unwrap();
        let _proxy = TcpStream::connect(to).await.unwrap();
        let (proxied, _) = listener.accept().await.unwrap();
        let (ours, proxied) = (
            Stream::Plain(Either::Left(ours)),
            Stream::Plain(Either::Left(proxied)),
        );
        // A trusted proxy's header names the relay's address as its client.
        assert!(
            !take(relay, || proxied.local_inet_addr_from(relay)),
            "a header naming our relay's address is not ours"
        );
        assert!(
            take(relay, || ours.local_inet_addr_from(relay)),
            "and it left the mark for the relay"
        );
    }

    #[tokio::test]
    async fn only_connections_to_our_own_listeners_are_marked() {
        let listener = crate::service::listen::bind_inet("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = listener.local_addr().unwrap();
        // Not one of ours (some other local program): nothing to mark.
        let c = connect(to).await.unwrap();
        let local = c.local_addr().unwrap();
        assert!(!lock(marks()).contains_key(&local));
        // A wildcard listener of ours on that port: connections to it are.
        let _listening = Listening::new(SocketAddr::new([0, 0, 0, 0].into(), to.port()));
        let c = connect(to).await.unwrap();
        let local = c.local_addr().unwrap();
        assert!(lock(marks()).contains_key(&local));
        let _unmarked = listener.accept().await.unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, local);
        assert!(take(peer, || stream.local_addr().ok()));
    }

    #[test]
    fn a_pending_mark_goes_when_dropped_armed_and_stays_once_disarmed() {
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        // Addresses no socket of ours binds: ports 1 and 2 are never handed
        // out as a local port.
        let (gone, kept): (SocketAddr, SocketAddr) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        assert!(mark(gone, to) && mark(kept, to));
        drop(Pending(Some(gone)));
        let mut disarmed = Pending(Some(kept));
        disarmed.0 = None;
        drop(disarmed);
        assert!(!lock(marks()).contains_key(&gone));
        assert!(lock(marks()).remove(&kept).is_some());
    }
}
