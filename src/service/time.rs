//! `time` (UDP): a datagram is a strftime pattern (empty: the tutorial's
//! `%Y-%m-%d-%X`); the reply is the local time in it, or `error: <why>`.
//! The pattern is validated and the reply capped by `wire::time`.

use tokio::net::UdpSocket;

use super::{Kind, ServiceError, UdpCtx, udp};
use crate::settings::{ConfigError, Section};
use crate::wire;

/// A time instance's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The longest reply sent; a format that would produce more gets an error.
    pub max_reply_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_reply_bytes: 512,
        }
    }
}

impl Kind for Settings {
    type Socket = UdpSocket;

    fn read(s: &Section<'_>) -> Result<Self, ConfigError> {
        let d = Settings::default();
        Ok(Settings {
            max_reply_bytes: s.usize("max_reply_bytes", d.max_reply_bytes, 16, 65_000)?,
        })
    }

    async fn run(self, socket: UdpSocket, ctx: UdpCtx) -> Result<(), ServiceError> {
        run(socket, ctx, self.max_reply_bytes).await
    }
}

/// Runs the time service on a bound socket until `ctx.cancel` fires.
///
/// # Errors
/// Only if the socket's own address cannot be read.
async fn run(socket: UdpSocket, ctx: UdpCtx, max_reply: usize) -> Result<(), ServiceError> {
    udp::serve(socket, ctx, move |request, reply| {
        reply.extend(wire::time::reply(&chrono::Local::now(), request, max_reply));
    })
    .await
}
