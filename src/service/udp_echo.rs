//! `udp-echo` (UDP): every datagram is sent back ASCII upper-cased to its
//! sender. The reply is exactly as long as the request: nothing amplified.

use tokio::net::UdpSocket;

use super::{ServiceCtx, ServiceError, udp};
use crate::wire;

/// Runs udp-echo on a bound socket until `ctx.cancel` fires.
///
/// # Errors
/// Only if the socket's own address cannot be read.
pub(crate) async fn run(socket: UdpSocket, ctx: ServiceCtx) -> Result<(), ServiceError> {
    udp::serve(socket, ctx, |request, reply| {
        reply.extend_from_slice(request);
        wire::ascii_upper_in_place(reply);
    })
    .await
}
