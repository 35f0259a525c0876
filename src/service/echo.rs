//! `echo` (TCP): every chunk received is sent back ASCII upper-cased.
//!
//! No framing, on purpose: what one read returns is what is echoed, so the
//! tutorials' "sticky packets" can be seen. A task per connection is the
//! async form of the tutorials' `ThreadingTCPServer`.
//!
//! Bounds: `max_connections` at once (then refused with a message), and
//! `max_connections_per_peer` per IP; a connection idle for `idle_timeout`
//! either way is closed, which also drops a peer that stops reading our
//! replies (its writes stall). The read buffer is allocated untouched, so an
//! idle connection costs little resident memory.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::listen::Listener;
use super::{ServiceCtx, ServiceError};
use crate::stats::ConnGuard;
use crate::wire;

/// Largest chunk read (and so echoed) at once.
const READ_CHUNK: usize = 16 * 1024;

/// Runs the echo service on a bound listener until `ctx.cancel` fires.
///
/// # Errors
/// None in practice: accept errors are logged and retried.
pub(crate) async fn run(listener: Listener, ctx: ServiceCtx) -> Result<(), ServiceError> {
    let (cancel, idle) = (ctx.cancel.clone(), ctx.limits.idle_timeout);
    super::serve_tcp(listener, ctx, move |stream, _peer, conn| {
        let cancel = cancel.clone();
        async move { serve_conn(stream, &conn, cancel, idle).await }
    })
    .await;
    Ok(())
}

/// Echoes until EOF, cancellation, the idle timeout or an error. On EOF (the
/// peer half-closed) everything read has been echoed before we close too.
async fn serve_conn<S>(
    mut stream: S,
    conn: &ConnGuard,
    cancel: CancellationToken,
    idle: std::time::Duration,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Capacity only: pages are touched when data arrives, not per connection.
    let mut buf = Vec::with_capacity(READ_CHUNK);
    loop {
        buf.clear();
        let read = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            read = tokio::time::timeout(idle, stream.read_buf(&mut buf)) => read,
        };
        let n = read.map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "idle timeout"))??;
        if n == 0 {
            break;
        }
        conn.add_in(n);
        wire::ascii_upper_in_place(&mut buf[..n]);
        // Not cancel safe, and it need not be: on cancel the connection is dropped.
        let wrote = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            wrote = tokio::time::timeout(idle, stream.write_all(&buf[..n])) => wrote,
        };
        wrote.map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "peer stopped reading"))??;
        conn.add_out(n);
    }
    let _ = tokio::time::timeout(idle, stream.shutdown()).await;
    Ok(())
}
