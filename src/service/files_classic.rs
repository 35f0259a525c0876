//! `files-classic` (TCP): the seeds/003 upload, byte for byte.
//!
//! Each upload is a 136-byte header ([`wire::classic`]: 128-byte NUL-padded
//! name, little-endian i64 size) and that many bytes; several may follow on
//! one connection, as the tutorial's client sends them. A file is stored
//! as `new_<name>` in the files folder, through the same [`Store`] as
//! `files` (safe names, atomic arrival, no overwrite). Success is silent,
//! as in the tutorial (its client never reads); a refusal (bad name, bad
//! size, no space, short body) is one `error: <why>\n` line, and the
//! connection closes.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::listen::Listener;
use super::{Kind, ServiceError, TcpCtx};
use crate::audit::AuditLog;
use crate::settings::{ConfigError, Section};
use crate::stats::ConnGuard;
use crate::store::{self, Store, StoreError};
use crate::wire::classic::{self, HEADER_LEN};

struct Shared {
    store: Store,
    audit: AuditLog,
    max_file_bytes: u64,
}

/// A files-classic instance's settings: those of files (`max_file_bytes`,
/// `folder`), with no HMAC key, as the tutorial has none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings(pub super::files::Settings);

impl Kind for Settings {
    type Socket = Listener;

    fn read(s: &Section<'_>) -> Result<Self, ConfigError> {
        super::files::Settings::read_keys(s).map(Settings)
    }

    async fn run(self, listener: Listener, ctx: TcpCtx) -> Result<(), ServiceError> {
        run(listener, ctx, self.0).await
    }
}

/// Runs the files-classic service until `ctx.cancel` fires.
///
/// # Errors
/// The folder cannot be opened; otherwise none in practice.
async fn run(
    listener: Listener,
    ctx: TcpCtx,
    settings: super::files::Settings,
) -> Result<(), ServiceError> {
    let shared = Shared {
        store: settings.store(&ctx)?,
        audit: ctx.resources.audit.clone(),
        max_file_bytes: settings.max_file_bytes,
    };
    super::accept::serve_tcp_shared(listener, ctx, shared, |stream, _peer, conn, shared, ctx| async move {
        serve_conn(stream, &shared, &ctx, &conn).await
    })
    .await;
    Ok(())
}

/// Why an upload was not stored.
#[derive(Debug, thiserror::Error)]
enum ClassicError {
    #[error("{0}")]
    Refused(String),
    #[error("the connection closed inside the {HEADER_LEN}-byte header, after {got} bytes")]
    ShortHeader { got: usize },
    #[error("the connection closed after {got} of the file's {size} bytes")]
    ShortBody { got: u64, size: u64 },
    #[error("idle for {0:?}")]
    Idle(Duration),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<StoreError> for ClassicError {
    fn from(e: StoreError) -> Self {
        ClassicError::Refused(e.to_string())
    }
}

async fn serve_conn<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    shared: &Shared,
    ctx: &TcpCtx,
    guard: &ConnGuard,
) -> Result<(), ClassicError> {
    loop {
        match receive(&mut stream, shared, ctx, guard).await {
            Ok(true) => continue,
            Ok(false) => return Ok(()),
            // Said to the peer, which may still be reading (a short body
            // usually means the sender half-closed early): one line, then
            // a close that drains what it still sends rather than reset.
            Err(
                e @ (ClassicError::Refused(_)
                | ClassicError::ShortHeader { .. }
                | ClassicError::ShortBody { .. }),
            ) => {
                let line = format!("error: {e}\n");
                let idle = ctx.limits.idle_timeout;
                if let Ok(Ok(())) =
                    tokio::time::timeout(idle, stream.write_all(line.as_bytes())).await
                {
                    guard.sent(line.as_bytes());
                }
                super::accept::linger_close(&mut stream).await;
                return Err(e);
            }
            Err(e) => return Err(e),
        }
    }
}

/// One header and its body. `Ok(false)` at a clean end between uploads.
async fn receive<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    shared: &Shared,
    ctx: &TcpCtx,
    guard: &ConnGuard,
) -> Result<bool, ClassicError> {
    let idle = ctx.limits.idle_timeout;
    let mut raw = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = tokio::time::timeout(idle, stream.read(&mut raw[got..]))
            .await
            .map_err(|_| ClassicError::Idle(idle))??;
        if n == 0 {
            return if got == 0 {
                Ok(false)
            } else {
                Err(ClassicError::ShortHeader { got })
            };
        }
        guard.received(&raw[got..got + n]);
        got += n;
    }
    let started = Instant::now();
    let header = classic::decode(&raw);
    let name = format!("new_{}", store::safe_name(&header.name)?);
    let size = header
        .checked_size(shared.max_file_bytes)
        .map_err(|e| ClassicError::Refused(e.to_string()))?;
    let mut upload = shared
        .store
        .begin(&name, size)
        .inspect_err(|e| super::files::log_store_failure(ctx, e))?;
    while upload.remaining() > 0 {
        let mut buf = upload.buffer().await;
        let want = upload.next_len(&buf);
        while buf.len() < want {
            let left = (want - buf.len()) as u64;
            let n = tokio::time::timeout(idle, (&mut *stream).take(left).read_buf(&mut buf))
                .await
                .map_err(|_| ClassicError::Idle(idle))??;
            if n == 0 {
                return Err(ClassicError::ShortBody {
                    got: size - upload.remaining() + buf.len() as u64,
                    size,
                });
            }
            guard.received(&buf[buf.len() - n..]);
        }
        upload
            .push(buf)
            .await
            .inspect_err(|e| super::files::log_store_failure(ctx, e))?;
    }
    let info = upload
        .commit()
        .await
        .inspect_err(|e| super::files::log_store_failure(ctx, e))?;
    ctx.stats.observe_upload(&ctx.id, started.elapsed());
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    super::files::record_stored(ctx, &shared.audit, guard, &info, millis).await;
    Ok(true)
}
