//! `echo` (TCP): every chunk received is sent back ASCII upper-cased.
//!
//! No framing, on purpose: what one read returns is what is echoed, so the
//! tutorials' "sticky packets" can be seen. A task per connection is the
//! async form of the tutorials' `ThreadingTCPServer`.
//!
//! Bounds: `max_connections` at once (then refused with a message), and
//! `max_connections_per_peer` per IP; a connection idle for `idle_timeout`
//! either way is closed, which also drops a peer that stops reading our
//! replies (its writes stall). A connection waiting for data holds no
//! buffer (see [`serve_conn`]), so an idle one costs little memory.
//!
//! With `auth = "hmac-md5" | "hmac-sha256"` and `auth_key`, a connection
//! first answers the tutorial's challenge (seeds/001 "认证客户端合法性",
//! [`super::tutorial_auth`]); a wrong answer closes it unanswered.

use std::cell::RefCell;
use std::io;

use tokio::io::AsyncWriteExt;
use tokio::time::Duration;

use super::accept::{Place, serve_tcp};
use super::listen::{self, Listener, Stream};
use super::tutorial_auth::TutorialAuth;
use super::{Kind, ServiceError, TcpCtx};
use crate::settings::{ConfigError, Section};
use crate::stats::{ConnGuard, IdleExpired};
use crate::wire;

/// Largest chunk read (and so echoed) at once.
const READ_CHUNK: usize = 16 * 1024;

/// An echo instance: the tutorial's optional client check, beyond the TCP
/// limits every instance has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    pub auth: TutorialAuth,
}

impl Kind for Settings {
    type Socket = Listener;

    fn read(s: &Section<'_>) -> Result<Self, ConfigError> {
        Ok(Settings {
            auth: TutorialAuth::read(s)?,
        })
    }

    async fn run(self, listener: Listener, ctx: TcpCtx) -> Result<(), ServiceError> {
        run(listener, ctx, self.auth).await
    }
}

/// Runs the echo service on a bound listener until `ctx.cancel` fires.
///
/// # Errors
/// None in practice: accept errors are logged and retried.
async fn run(listener: Listener, ctx: TcpCtx, auth: TutorialAuth) -> Result<(), ServiceError> {
    let idle = ctx.limits.idle_timeout;
    if auth.is_on() {
        let conn_ctx = ctx.clone();
        let auth = std::sync::Arc::new(auth);
        serve_tcp(listener, ctx, Place::Shared, move |mut stream, _peer, conn| {
            let (auth, ctx) = (std::sync::Arc::clone(&auth), conn_ctx.clone());
            async move {
                let within = super::accept::HANDSHAKE_TIMEOUT;
                if !auth.challenge(&mut stream, within).await? {
                    ctx.stats
                        .auth_failed(&ctx.id, conn.peer(), "wrong challenge answer");
                    return Ok(());
                }
                serve_conn(stream, &conn, idle).await
            }
        })
        .await;
        return Ok(());
    }
    // The shared accept loop drops a connection's future when the service
    // stops or the connection is closed from the dashboard: no token here.
    serve_tcp(listener, ctx, Place::Shared, move |stream, _peer, conn| async move {
        serve_conn(stream, &conn, idle).await
    })
    .await;
    Ok(())
}

thread_local! {
    /// The read buffer, one per worker thread: a connection borrows it only
    /// between a readiness wake-up and its reply, never across an await.
    static CHUNK: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// Echoes until EOF, the idle timeout or an error. On EOF (the peer
/// half-closed) everything read has been echoed before we close too.
///
/// Readiness-based: the connection waits for data without a buffer, then
/// reads, upper-cases and answers in one synchronous step through the
/// thread's buffer. A waiting connection costs its task and its stats entry,
/// no buffer; a round trip costs two syscalls and no allocation. Only when
/// the peer's window is full does the rest of a reply get its own buffer.
///
/// The idle timeout is the stats' sweep's ([`ConnGuard::idle_expired`]),
/// not a timer of the connection's: a timer pending on the runtime makes
/// every park of its workers cost more (see `crate::clock`).
async fn serve_conn(mut stream: Stream, conn: &ConnGuard, idle: Duration) -> io::Result<()> {
    if stream.is_tls() {
        // Boxed, so the plain path's task stays as small as it was.
        return Box::pin(serve_tls(stream, conn, idle)).await;
    }
    let mut quiet = conn.idle_expired(idle);
    loop {
        tokio::select! {
            biased;
            ready = listen::readable(&stream) => ready?,
            () = &mut quiet => return Err(timed_out("idle timeout")),
        }
        let (n, rest) = match CHUNK.with_borrow_mut(|buf| echo_now(&stream, buf, conn)) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            step => step?,
        };
        if n == 0 {
            break;
        }
        if !rest.is_empty() {
            // The part written at once was counted (and recorded) in
            // `echo_now`; the rest, once written, as one segment.
            write_within(&mut stream, &rest, &mut quiet).await?;
            conn.sent(&rest);
        }
    }
    let _ = tokio::time::timeout(idle, stream.shutdown()).await;
    Ok(())
}

/// The same over TLS, where records must be read into a buffer: one per
/// connection, so a TLS connection costs its chunk even while idle.
async fn serve_tls(mut stream: Stream, conn: &ConnGuard, idle: Duration) -> io::Result<()> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut quiet = conn.idle_expired(idle);
    loop {
        let n = tokio::select! {
            biased;
            read = stream.read(&mut buf) => read?,
            () = &mut quiet => return Err(timed_out("idle timeout")),
        };
        if n == 0 {
            break;
        }
        conn.received(&buf[..n]);
        wire::ascii_upper_in_place(&mut buf[..n]);
        write_within(&mut stream, &buf[..n], &mut quiet).await?;
        conn.sent(&buf[..n]);
    }
    let _ = tokio::time::timeout(idle, stream.shutdown()).await;
    Ok(())
}

/// Reads what is there, upper-cases it and writes what the socket takes at
/// once, counting (and, when captured, recording) the read and that write.
/// Returns the bytes read (0 at EOF) and the part of the reply that did
/// not fit.
fn echo_now(stream: &Stream, buf: &mut [u8], conn: &ConnGuard) -> io::Result<(usize, Vec<u8>)> {
    let n = read_now(stream, buf)?;
    if n == 0 {
        return Ok((0, Vec::new()));
    }
    if conn.capturing() {
        // The request as read, before it is upper-cased in place.
        conn.received(&buf[..n]);
    }
    let reply = &mut buf[..n];
    wire::ascii_upper_in_place(reply);
    let wrote = match listen::try_write(stream, reply) {
        Ok(w) => w,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(e),
    };
    if conn.capturing() {
        conn.sent(&reply[..wrote]);
    } else {
        // One clock read for both counts: the uncaptured round trip.
        conn.add_exchange(n, wrote);
    }
    Ok((n, reply[wrote..].to_vec()))
}

/// Reads what is there now (`WouldBlock` if nothing is). A read shorter
/// than `buf` took all the socket had, so the socket's readiness is
/// cleared as of before the read, as tokio's own `poll_read` does: the
/// next wait then costs no `EAGAIN` read (`try_read` alone clears it only
/// on one, a third syscall per round trip). Bytes that came meanwhile
/// raised a newer readiness, which stays.
fn read_now(stream: &Stream, buf: &mut [u8]) -> io::Result<usize> {
    fn short_clears(
        try_io: impl FnOnce(&mut dyn FnMut() -> io::Result<usize>) -> io::Result<usize>,
        read: impl Fn(&mut [u8]) -> io::Result<usize>,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let full = buf.len();
        let mut short = 0;
        let read = try_io(&mut || {
            let n = read(buf)?;
            if n > 0 && n < full {
                short = n;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        match read {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && short > 0 => Ok(short),
            other => other,
        }
    }
    use tokio::io::Interest;
    use tokio_util::either::Either;
    match stream {
        Stream::Plain(Either::Left(s)) => {
            short_clears(|f| s.try_io(Interest::READABLE, f), |b| s.try_read(b), buf)
        }
        Stream::Plain(Either::Right(s)) => {
            short_clears(|f| s.try_io(Interest::READABLE, f), |b| s.try_read(b), buf)
        }
        Stream::Tls(_) => listen::try_read(stream, buf),
    }
}

/// Writes all of `bytes` while the idle limit holds, so a peer that stops
/// reading is closed when the connection has been quiet for it.
async fn write_within(
    stream: &mut Stream,
    bytes: &[u8],
    quiet: &mut IdleExpired<'_>,
) -> io::Result<()> {
    tokio::select! {
        biased;
        wrote = stream.write_all(bytes) => wrote,
        () = quiet => Err(timed_out("peer stopped reading")),
    }
}

fn timed_out(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, why.to_owned())
}
