//! `udp-chat` (UDP): seeds/000's UDP chat, where the server's person types
//! each reply: here the signed-in operator on the dashboard's Chat page (or
//! `POST /api/v1/services/{name}/chat/{peer}`), one thread per peer address.
//!
//! The tutorial's end words are kept: a datagram `q` or `Q` is answered
//! with `您已断开连接!` and ends the thread; `您已断开连接!` from the peer
//! (its answer to our `q`) ends it quietly; an operator's `q` goes out as
//! typed, so the tutorial's client answers and leaves. A peer waits at most
//! `reply_timeout_ms`; then it is sent `q`, which ends the tutorial's client
//! cleanly. Datagrams a peer sends while it waits are queued (a few; more
//! are dropped) and each is answered in turn.
//!
//! Bounded: datagrams are read up to the largest UDP payload and shown up to
//! [`MAX_TEXT`] bytes; at most [`super::chat_hub::MAX_OPEN`] peers at once (a new
//! one past that is ignored); sources that could loop are never answered.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::chat_hub::{ChatThread, MAX_TEXT};
use super::{Kind, ServiceError, UdpCtx, udp};
use crate::kind::Proto;
use crate::settings::{ConfigError, Section};

/// What the tutorial's server sends when the peer says `q`.
pub const DISCONNECTED: &str = "您已断开连接!";

/// A udp-chat instance's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long a peer waits for the operator's reply.
    pub reply_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            reply_timeout: super::chat::Settings::default().reply_timeout,
        }
    }
}

impl Kind for Settings {
    type Socket = UdpSocket;

    fn read(s: &Section<'_>) -> Result<Self, ConfigError> {
        Ok(Settings {
            reply_timeout: super::chat::read_reply_timeout(s)?,
        })
    }

    async fn run(self, socket: UdpSocket, ctx: UdpCtx) -> Result<(), ServiceError> {
        run(Arc::new(socket), ctx, self).await
    }
}

async fn run(socket: Arc<UdpSocket>, ctx: UdpCtx, config: Settings) -> Result<(), ServiceError> {
    let own = socket.local_addr()?;
    let mut peers: HashMap<SocketAddr, mpsc::Sender<String>> = HashMap::new();
    let mut buf = vec![0u8; udp::MAX_DATAGRAM];
    loop {
        let (n, src) = tokio::select! {
            () = ctx.cancel.cancelled() => return Ok(()),
            got = socket.recv_from(&mut buf) => match got {
                Ok(got) => got,
                // An ICMP error from an earlier send: nothing to do here.
                Err(_) => continue,
            },
        };
        if udp::blocked_source(src, own) || ctx.own_udp_ports.contains(src) {
            continue;
        }
        let text = String::from_utf8_lossy(&buf[..n.min(MAX_TEXT)]).into_owned();
        if let Some(inbox) = peers.get(&src) {
            match inbox.try_send(text) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => continue,
                Err(mpsc::error::TrySendError::Closed(text)) => {
                    peers.remove(&src);
                    start(&socket, &ctx, &config, &mut peers, src, text);
                }
            }
        } else {
            peers.retain(|_, inbox| !inbox.is_closed());
            start(&socket, &ctx, &config, &mut peers, src, text);
        }
    }
}

/// A thread for a new peer, unless it only says goodbye or there are too many.
fn start(
    socket: &Arc<UdpSocket>,
    ctx: &UdpCtx,
    config: &Settings,
    peers: &mut HashMap<SocketAddr, mpsc::Sender<String>>,
    src: SocketAddr,
    first: String,
) {
    if first == DISCONNECTED {
        // The tutorial client's answer to a `q` of ours: the thread it
        // belonged to has ended already.
        return;
    }
    let Ok(thread) = ctx.resources.chats.open(ctx.id.name(), &src.to_string()) else {
        return;
    };
    let (tx, rx) = mpsc::channel(8);
    if tx.try_send(first).is_err() {
        return;
    }
    peers.insert(src, tx);
    let conn = ctx
        .stats
        .open_under(&ctx.id, Proto::Udp, src.to_string(), &ctx.cancel);
    let (socket, timeout) = (Arc::clone(socket), config.reply_timeout);
    let stop = conn.close_requested();
    ctx.tasks.spawn(async move {
        tokio::select! {
            () = stop.cancelled() => {}
            () = converse(thread, rx, &socket, src, timeout, &conn) => {}
        }
    });
}

/// One peer's conversation, until an end word, a timeout or the stop.
async fn converse(
    mut thread: ChatThread,
    mut inbox: mpsc::Receiver<String>,
    socket: &UdpSocket,
    peer: SocketAddr,
    timeout: Duration,
    conn: &crate::stats::ConnGuard,
) {
    let send = |text: &str| {
        let bytes = text.as_bytes().to_vec();
        async move {
            if socket.send_to(&bytes, peer).await.is_ok() {
                conn.sent(&bytes);
            }
        }
    };
    while let Some(text) = inbox.recv().await {
        conn.received(text.as_bytes());
        thread.heard(&text);
        if text.eq_ignore_ascii_case("q") {
            send(DISCONNECTED).await;
            thread.note("the peer said q: conversation ended");
            return;
        }
        if text == DISCONNECTED {
            thread.note("the peer disconnected");
            return;
        }
        let Some(reply) = thread.reply_within(timeout).await else {
            thread.note(&format!(
                "no reply within {} ms: sent q",
                timeout.as_millis()
            ));
            send("q").await;
            return;
        };
        send(&reply).await;
        if reply.eq_ignore_ascii_case("q") {
            // The tutorial's client answers `您已断开连接!` and leaves.
            thread.note("the operator said q: conversation ended");
            return;
        }
    }
}
