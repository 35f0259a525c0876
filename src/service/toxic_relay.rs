//! How a `tcp-proxy` connection moves its bytes once connected: splice
//! (Linux, plain TCP, not captured) while its instance has no toxic, and
//! the copying pumps of [`crate::toxic::tcp`] otherwise — from the start
//! when toxics are there already, or from the moment one is added, when the
//! splicing directions stop between bursts (nothing held, nothing lost)
//! and copy on.
//!
//! A toxic that ends the connection closes both sockets; `reset_peer`
//! first sets a zero linger on them, so the close is a TCP RST as
//! Toxiproxy's is. This module owns no policy of its own: what the toxics
//! do lives in [`crate::toxic`].

use std::io;
use std::time::Duration;

use tokio_util::either::Either;

use super::counted::Counted;
use super::listen::Stream;
use crate::stats::ConnGuard;
use crate::stream::Plain;
use crate::toxic::tcp::{Ended, Socket, Wire, pump};
use crate::toxic::{Stream as Dir, Watch};

/// Relays `client` ⇄ `upstream` until both directions end.
///
/// # Errors
/// Either side's error, or a toxic's end ([`Ended`]).
pub async fn relay(
    client: Stream,
    upstream: Plain,
    conn: &ConnGuard,
    toxics: Watch,
) -> io::Result<()> {
    #[allow(unused_mut)]
    let mut open = (true, true);
    #[cfg(target_os = "linux")]
    if let (Stream::Plain(Either::Left(c)), Either::Left(u)) = (&client, &upstream)
        && !conn.capturing()
        && toxics.borrow().is_empty()
    {
        open = spliced(c, u, conn, toxics.clone()).await?;
        if open == (false, false) {
            return Ok(());
        }
    }
    let (mut client, slicing_down) = Wire::new(Counted::new(client, conn.counter()));
    let (mut upstream, slicing_up) = Wire::new(upstream);
    let result = {
        let (cr, cw) = tokio::io::split(&mut client);
        let (ur, uw) = tokio::io::split(&mut upstream);
        let up = async {
            match open.0 {
                true => pump(cr, uw, slicing_up, Dir::Upstream, toxics.clone()).await,
                false => Ok(()),
            }
        };
        let down = async {
            match open.1 {
                true => pump(ur, cw, slicing_down, Dir::Downstream, toxics.clone()).await,
                false => Ok(()),
            }
        };
        tokio::try_join!(up, down).map(|_| ())
    };
    if let Err(e) = &result
        && Ended::of(e) == Some(Ended::Reset)
    {
        reset_plain(plain(client.get_ref().get_ref()));
        reset_plain(upstream.get_ref());
    }
    result
}

/// Splices both ways until both end or a toxic appears; returns which
/// directions are still open.
#[cfg(target_os = "linux")]
async fn spliced(
    c: &tokio::net::TcpStream,
    u: &tokio::net::TcpStream,
    conn: &ConnGuard,
    mut toxics: Watch,
) -> io::Result<(bool, bool)> {
    use super::splice::{Stop, one_way};
    let (stop_up, stop_down) = (Stop::default(), Stop::default());
    // Polled only when the toxics change, not on each of the connection's
    // wake-ups: its poll takes a lock every connection shares.
    let watch = crate::wake::OwnWake::new(async {
        while toxics.changed().await.is_ok() {
            if !toxics.borrow_and_update().is_empty() {
                stop_up.stop();
                stop_down.stop();
                break;
            }
        }
        std::future::pending::<()>().await;
    });
    let both = async {
        tokio::try_join!(
            one_way(c, u, |n| conn.add_in(n), |_| {}, &stop_up),
            one_way(u, c, |_| {}, |n| conn.add_out(n), &stop_down),
        )
    };
    let (up_ended, down_ended) = tokio::select! {
        biased;
        both = both => both?,
        () = watch => unreachable_pending(),
    };
    Ok((!up_ended, !down_ended))
}

/// `watch` above never completes; this names that for the select.
#[cfg(target_os = "linux")]
fn unreachable_pending() -> (bool, bool) {
    (false, false)
}

/// The connection under `client`, TLS or not.
fn plain(client: &Stream) -> &Plain {
    match client {
        Stream::Plain(p) => p,
        Stream::Tls(tls) => tls.get_ref().0,
    }
}

impl Socket for Plain {
    fn tcp(&self) -> Option<&tokio::net::TcpStream> {
        match self {
            Either::Left(tcp) => Some(tcp),
            Either::Right(_) => None,
        }
    }
}

impl Socket for Counted<Stream> {
    fn tcp(&self) -> Option<&tokio::net::TcpStream> {
        plain(self.get_ref()).tcp()
    }
}

fn reset_plain(s: &Plain) {
    if let Either::Left(tcp) = s
        && let Err(e) = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO))
    {
        tracing::debug!("cannot set a zero linger for reset_peer: {e}");
    }
}
