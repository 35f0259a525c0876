//! The start of every authenticated message-protocol connection (`exec`
//! and `files` on their own protocol): the accepted stream framed, every
//! byte counted and every write bounded by the idle timeout, then the HMAC
//! handshake; and the next request's header, read within the idle
//! timeout. One home, so the two kinds cannot drift apart on either.
//!
//! Not here: what a kind does with a request, or how it tells a peer that
//! sent a bad header (each answers in its own reply type).

use super::TcpCtx;
use super::accept::{MessageStream, authenticate, message_stream};
use super::listen::Stream;
use crate::conn::ConnError;
use crate::stats::ConnGuard;
use crate::wire::message::{Header, MAX_HEADER_LEN};

/// Frames `stream` and runs the HMAC handshake with `key`; a wrong answer
/// is counted as an auth failure and ends the connection.
///
/// # Errors
/// Silence past the handshake timeout, I/O errors, a wrong answer.
pub(crate) async fn authed_message_conn(
    stream: Stream,
    key: &[u8],
    ctx: &TcpCtx,
    guard: &ConnGuard,
) -> Result<MessageStream, ConnError> {
    let mut conn = message_stream(stream, ctx.limits.idle_timeout, guard);
    authenticate(&mut conn, key, ctx, guard).await?;
    Ok(conn)
}

/// The next request's header, or `None` when the peer ended cleanly between
/// requests; counts as activity on `guard`.
///
/// # Errors
/// No header within the idle timeout, I/O errors, or a malformed header
/// ([`ConnError::Wire`], which the caller answers before closing).
pub(crate) async fn next_header(
    conn: &mut MessageStream,
    ctx: &TcpCtx,
    guard: &ConnGuard,
) -> Result<Option<Header>, ConnError> {
    let idle = ctx.limits.idle_timeout;
    let header = tokio::time::timeout(idle, conn.read_header(MAX_HEADER_LEN))
        .await
        .map_err(|_| ConnError::Timeout(idle))??;
    if header.is_some() {
        guard.touch();
    }
    Ok(header)
}
