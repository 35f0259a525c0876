//! `chat` (TCP): the tutorial's chat (seeds/004, "客户端可以退出" and
//! "多用户"), where client and server send in turn and the server's side is
//! a person: here the signed-in operator on the dashboard's Chat page (or
//! `POST /api/v1/services/{name}/chat/{peer}`), one thread per connection.
//!
//! ```text
//! client: "hello"          (what one read returns, at most 1024 bytes)
//! server: "<the operator's reply>"
//! client: "exit"           ends the conversation (as does the operator's "exit")
//! ```
//!
//! A peer waits at most `reply_timeout_ms` for a reply; then it is sent the
//! tutorial's end word `exit` and the connection is closed. What this does
//! not do: queue a peer's further messages while it waits (they are read
//! after the reply and so glue, as to the tutorial's server).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::chat_hub::{ChatError, ChatHub, MAX_TEXT};
use super::listen::{Listener, Peer, Stream};
use super::{Kind, ServiceError, TcpCtx};
use crate::settings::{ConfigError, Section};
use crate::stats::ConnGuard;

/// The tutorial's end word, both ways.
pub const END: &str = "exit";

/// A chat instance's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long a peer waits for the operator's reply.
    pub reply_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            reply_timeout: Duration::from_secs(120),
        }
    }
}

/// `reply_timeout_ms`, shared with `udp-chat`.
pub(super) fn read_reply_timeout(s: &Section<'_>) -> Result<Duration, ConfigError> {
    s.ms(
        "reply_timeout_ms",
        Settings::default().reply_timeout,
        100,
        86_400_000,
    )
}

impl Kind for Settings {
    type Socket = Listener;

    fn read(s: &Section<'_>) -> Result<Self, ConfigError> {
        Ok(Settings {
            reply_timeout: read_reply_timeout(s)?,
        })
    }

    async fn run(self, listener: Listener, ctx: TcpCtx) -> Result<(), ServiceError> {
        let shared = (ctx.resources.chats.clone(), self);
        super::accept::serve_tcp_shared(listener, ctx, shared, serve_conn).await;
        Ok(())
    }
}

/// Why a chat connection ended early.
#[derive(Debug, thiserror::Error)]
enum ChatConnError {
    #[error(transparent)]
    Refused(#[from] ChatError),
    #[error("idle for {0:?}")]
    Idle(Duration),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

async fn serve_conn(
    mut stream: Stream,
    _peer: Peer,
    conn: ConnGuard,
    shared: Arc<(ChatHub, Settings)>,
    ctx: TcpCtx,
) -> Result<(), ChatConnError> {
    let (hub, config) = &*shared;
    let idle = ctx.limits.idle_timeout;
    let mut thread = match hub.open(ctx.id.name(), conn.peer()) {
        Ok(t) => t,
        Err(e) => {
            let _ = stream.write_all(format!("{e}\n").as_bytes()).await;
            return Err(e.into());
        }
    };
    let mut buf = vec![0u8; MAX_TEXT];
    loop {
        let n = tokio::time::timeout(idle, stream.read(&mut buf))
            .await
            .map_err(|_| ChatConnError::Idle(idle))??;
        if n == 0 {
            thread.note("the peer closed the connection");
            return Ok(());
        }
        conn.received(&buf[..n]);
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        thread.heard(&text);
        if text.trim() == END {
            thread.note("the peer said exit: conversation ended");
            return Ok(());
        }
        let Some(reply) = thread.reply_within(config.reply_timeout).await else {
            thread.note(&format!(
                "no reply within {} ms: sent exit and closed",
                config.reply_timeout.as_millis()
            ));
            let _ = tokio::time::timeout(idle, stream.write_all(END.as_bytes())).await;
            return Ok(());
        };
        tokio::time::timeout(idle, stream.write_all(reply.as_bytes()))
            .await
            .map_err(|_| ChatConnError::Idle(idle))??;
        conn.sent(reply.as_bytes());
        if reply.trim() == END {
            thread.note("the operator said exit: conversation ended");
            let _ = stream.shutdown().await;
            return Ok(());
        }
    }
}
