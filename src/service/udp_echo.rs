//! `udp-echo` (UDP): every datagram is sent back ASCII upper-cased to its
//! sender. The reply is exactly as long as the request: nothing amplified.

use tokio::net::UdpSocket;

use super::{Kind, ServiceError, UdpCtx, udp};
use crate::settings::{ConfigError, Section};
use crate::wire;

/// A udp-echo instance: no settings beyond the UDP limits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings;

impl Kind for Settings {
    type Socket = UdpSocket;

    fn read(_: &Section<'_>) -> Result<Self, ConfigError> {
        Ok(Settings)
    }

    /// Runs udp-echo on a bound socket until `ctx.cancel` fires.
    async fn run(self, socket: UdpSocket, ctx: UdpCtx) -> Result<(), ServiceError> {
        udp::serve(socket, ctx, |request, reply| {
            reply.extend_from_slice(request);
            wire::ascii_upper_in_place(reply);
        })
        .await
    }
}
