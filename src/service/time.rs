//! `time` (UDP): a datagram is a strftime pattern (empty: the tutorial's
//! `%Y-%m-%d-%X`); the reply is the local time in it, or `error: <why>`.
//! The pattern is validated and the reply capped by `wire::time`.

use tokio::net::UdpSocket;

use super::{ServiceCtx, ServiceError, udp};
use crate::wire;

/// Runs the time service on a bound socket until `ctx.cancel` fires.
///
/// # Errors
/// Only if the socket's own address cannot be read.
pub(crate) async fn run(socket: UdpSocket, ctx: ServiceCtx) -> Result<(), ServiceError> {
    let max_reply = ctx.limits.max_reply_bytes;
    udp::serve(socket, ctx, move |request, reply| {
        reply.extend(wire::time::reply(&chrono::Local::now(), request, max_reply));
    })
    .await
}
