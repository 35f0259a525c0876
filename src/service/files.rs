//! `files` (TCP): authenticated upload, download and list over the message
//! protocol (seeds/003 made safe), after the HMAC handshake.
//!
//! ```text
//! {"op":"put","name":"a.jpg","size":N} + N bytes -> {"ok":true,"name":"<stored>","stored_size":N,"sha256":"<hex>"}
//! {"op":"get","name":"a.jpg"}                    -> {"ok":true,"name":..,"size":N,"sha256":..} + N bytes
//! {"op":"list"}                                  -> {"ok":true,"files":[{"name","size","sha256","modified"}]}
//! anything refused                               -> {"ok":false,"error":"<why>"}
//! ```
//!
//! Bodies stream between the socket and the disk through at most a few
//! buffers ([`store::UPLOAD_BUFFER`] up, [`store::CHUNK`] down), whatever
//! the size. A refused `put` (bad name, over `max_file_bytes`, no space)
//! is answered and the connection closed,
//! since its body would otherwise have to be read; the check comes before
//! a byte of the body is read or written. The close lingers (see
//! `linger_close`), so that a peer still sending its body reads the
//! refusal instead of a reset. A listing that would not fit in
//! one 64 KiB header is cut short and says `"truncated":true`.

use std::sync::Arc;
use std::time::Instant;

use tokio::io::AsyncReadExt;

use super::listen::{Listener, Peer, Stream};
use super::{Kind, ServiceError, TcpCtx};
use crate::audit::AuditLog;
use crate::conn::ConnError;
use crate::settings::{ConfigError, Section};
use crate::stats::{ConnGuard, EventKind};
use crate::store::{self, FileInfo, Store, StoreError};
use crate::wire::files::{FileEntry, FilesRequest, GetReply, ListReply, PutReply, Reply};
use crate::wire::message::MAX_HEADER_LEN;
use crate::wire::reply::Empty;

pub(super) struct Shared {
    key: Vec<u8>,
    store: Store,
    pub(super) audit: AuditLog,
    pub(super) max_file_bytes: u64,
    /// The folder's partial uploads (resumable puts); `None` when the
    /// area cannot be opened (resumable puts are then refused).
    pub(super) partials: Option<crate::store::partial::Partials>,
    pub(super) partial_ttl: std::time::Duration,
    pub(super) max_partials: u64,
}

/// A files (or files-classic) instance's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Largest upload accepted.
    pub max_file_bytes: u64,
    /// The folder it serves; `None`: `<data_dir>/files`, shared by the
    /// built-in files and files-classic.
    pub folder: Option<std::path::PathBuf>,
    /// How long an unfinished resumable upload is kept after its last
    /// write (`files` only; files-classic has no resumable uploads).
    pub partial_ttl_ms: u64,
    /// Unfinished resumable uploads per account at most (`files` only).
    pub max_partials: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_file_bytes: 2 << 30,
            folder: None,
            partial_ttl_ms: 24 * 3_600_000,
            max_partials: 64,
        }
    }
}

impl Settings {
    /// `max_file_bytes` and `folder`, the keys both files kinds have.
    ///
    /// # Errors
    /// A value out of bounds, or an empty folder.
    pub fn read_keys(s: &Section<'_>) -> Result<Self, ConfigError> {
        let d = Settings::default();
        let folder = match s.opt_str("folder")? {
            Some(f) if f.is_empty() => return Err(s.bad("folder", "must not be empty")),
            f => f.map(std::path::PathBuf::from),
        };
        Ok(Settings {
            max_file_bytes: s.int("max_file_bytes", d.max_file_bytes, 0, 1 << 50)?,
            folder,
            ..d
        })
    }

    /// The instance's own folder, or the shared one.
    ///
    /// # Errors
    /// Its own folder cannot be created or opened.
    pub fn store(&self, ctx: &TcpCtx) -> Result<Store, ServiceError> {
        match &self.folder {
            None => Ok(ctx.resources.store.clone()),
            Some(path) => Store::open_folder(path).map_err(|source| ServiceError::Folder {
                service: ctx.id.clone(),
                path: path.clone(),
                source,
            }),
        }
    }
}

impl Kind for Settings {
    type Socket = Listener;

    fn read(s: &Section<'_>) -> Result<Self, ConfigError> {
        let d = Settings::default();
        Ok(Settings {
            partial_ttl_ms: s.int("partial_ttl_ms", d.partial_ttl_ms, 100, 365 * 86_400_000)?,
            max_partials: s.int("max_partials", d.max_partials, 0, 100_000)?,
            ..Settings::read_keys(s)?
        })
    }

    async fn run(self, listener: Listener, ctx: TcpCtx) -> Result<(), ServiceError> {
        run(listener, ctx, self).await
    }
}

/// Runs the files service until `ctx.cancel` fires.
///
/// # Errors
/// No HMAC key, or the folder cannot be opened; otherwise none in
/// practice: accept errors are logged and retried.
async fn run(listener: Listener, ctx: TcpCtx, settings: Settings) -> Result<(), ServiceError> {
    let store = settings.store(&ctx)?;
    let partials = crate::store::partial::Partials::open(&store)
        .inspect_err(|e| tracing::warn!(service = %ctx.id, "no resumable puts: {e}"))
        .ok();
    let shared = Shared {
        key: ctx.key()?,
        store,
        audit: ctx.resources.audit.clone(),
        max_file_bytes: settings.max_file_bytes,
        partials,
        partial_ttl: std::time::Duration::from_millis(settings.partial_ttl_ms),
        max_partials: settings.max_partials,
    };
    super::accept::serve_tcp_shared(listener, ctx, shared, serve_conn).await;
    Ok(())
}

pub(super) type Conn = super::accept::MessageStream;

/// A refusal: the same `{"ok":false,"error":..}` whatever was asked.
pub(super) fn refusal(why: impl std::fmt::Display) -> Reply<Empty> {
    Reply::refused(why)
}

/// Logs an upload that failed on the server's side (the disk full, a
/// write refused): the peer is told why, and so is the operator.
pub(super) fn log_store_failure(ctx: &TcpCtx, e: &StoreError) {
    if let StoreError::Io(io) = e {
        tracing::warn!(service = %ctx.id, "an upload could not be stored: {io}");
    }
}

/// Sends a refusal, then closes without a reset. The peer may still be
/// sending a body that will not be read, and a close with unread input
/// resets the connection: the peer's kernel would then drop the refusal
/// before the peer read it.
pub(super) async fn refuse_and_close(conn: &mut Conn, why: impl std::fmt::Display) -> Result<(), ConnError> {
    let sent = conn.write_message(&refusal(why), &[]).await;
    super::accept::linger_close(conn.stream_mut()).await;
    sent
}

/// Records a stored file: a stats event and an audit line.
pub(crate) async fn record_stored(
    ctx: &TcpCtx,
    audit: &AuditLog,
    guard: &ConnGuard,
    info: &FileInfo,
    millis: u64,
) {
    // The name came from the peer: escaped, so that it cannot forge or
    // colour log lines (safe names hold no control characters, but may
    // hold other invisible ones, such as a right-to-left override).
    tracing::info!(
        service = %ctx.id,
        peer = guard.peer(),
        "stored {:?} ({} bytes, {millis} ms)",
        info.name,
        info.size
    );
    audit
        .record(crate::audit::AuditEvent::FileStored {
            service: ctx.id.name().to_owned(),
            peer: guard.peer().to_owned(),
            name: info.name.clone(),
            size: info.size,
            sha256: info.sha256.clone(),
            duration_ms: millis,
        })
        .await;
    ctx.stats.emit(EventKind::FileStored {
        service: ctx.id.clone(),
        peer: guard.peer().to_owned(),
        name: info.name.clone(),
        size: info.size,
        sha256: info.sha256.clone(),
    });
}

async fn serve_conn(
    stream: Stream,
    _peer: Peer,
    guard: ConnGuard,
    shared: Arc<Shared>,
    ctx: TcpCtx,
) -> Result<(), ConnError> {
    let (shared, ctx, guard) = (&*shared, &ctx, &guard);
    let mut conn = super::authed::authed_message_conn(stream, &shared.key, ctx, guard).await?;
    loop {
        let header = match super::authed::next_header(&mut conn, ctx, guard).await {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(()),
            Err(ConnError::Wire(e)) => {
                let _ = refuse_and_close(&mut conn, &e).await;
                return Err(ConnError::Wire(e));
            }
            Err(e) => return Err(e),
        };
        let request = match header.request::<FilesRequest>() {
            Ok(r) => r,
            // Its body, if any, would have to be read: refused and closed.
            Err(e) if header.size > 0 => return refuse_and_close(&mut conn, e).await,
            Err(e) => {
                conn.write_message(&refusal(e), &[]).await?;
                continue;
            }
        };
        match request {
            FilesRequest::Put {
                name,
                total: Some(total),
                partial,
                offset,
            } => {
                let ask = super::files_resume::Resume {
                    total,
                    partial,
                    offset,
                };
                let size = header.size;
                if !super::files_resume::put(&mut conn, &name, size, ask, shared, ctx, guard).await? {
                    return Ok(());
                }
            }
            FilesRequest::Put {
                partial: Some(_), ..
            }
            | FilesRequest::Put {
                offset: Some(_), ..
            } => {
                let why = "`partial` and `offset` need `total` (a resumable put)";
                if header.size > 0 {
                    return refuse_and_close(&mut conn, why).await;
                }
                conn.write_message(&refusal(why), &[]).await?;
            }
            FilesRequest::Put { name, .. } => {
                if !put(&mut conn, &name, header.size, shared, ctx, guard).await? {
                    return Ok(());
                }
            }
            other if header.size > 0 => {
                let why = format!("`{}` requests carry no body", other.op());
                return refuse_and_close(&mut conn, why).await;
            }
            FilesRequest::Get { name } => get(&mut conn, &name, shared).await?,
            FilesRequest::List => list(&mut conn, shared).await?,
        }
    }
}

/// Receives one upload. `Ok(false)` when the connection must close (the
/// request was refused with its body still on the way).
async fn put(
    conn: &mut Conn,
    name: &str,
    size: u64,
    shared: &Shared,
    ctx: &TcpCtx,
    guard: &ConnGuard,
) -> Result<bool, ConnError> {
    let started = Instant::now();
    let checked = store::safe_name(name.as_bytes()).and_then(|name| {
        store::check_size(size, shared.max_file_bytes)?;
        shared.store.begin(&name, size)
    });
    if let Err(e) = &checked {
        log_store_failure(ctx, e);
    }
    let mut upload = match checked {
        Ok(u) => u,
        Err(e) if size == 0 => {
            conn.write_message(&refusal(&e), &[]).await?;
            return Ok(true);
        }
        Err(e) => {
            refuse_and_close(conn, &e).await?;
            return Ok(false);
        }
    };
    let idle = ctx.limits.idle_timeout;
    while upload.remaining() > 0 {
        let mut buf = upload.buffer().await;
        let want = upload.next_len(&buf);
        while buf.len() < want {
            let left = want - buf.len();
            let n = tokio::time::timeout(idle, conn.read_into(&mut buf, left))
                .await
                .map_err(|_| ConnError::Timeout(idle))??;
            if n == 0 {
                // Dropping the upload removes its temporary.
                return Err(ConnError::Truncated);
            }
        }
        if let Err(e) = upload.push(buf).await {
            log_store_failure(ctx, &e);
            // Its temporary goes now, not after the close has lingered.
            drop(upload);
            refuse_and_close(conn, &e).await?;
            return Ok(false);
        }
    }
    match upload.commit().await {
        Ok(info) => {
            ctx.stats.observe_upload(&ctx.id, started.elapsed());
            let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            record_stored(ctx, &shared.audit, guard, &info, millis).await;
            let reply = Reply::Ok(PutReply {
                name: info.name,
                stored_size: info.size,
                sha256: info.sha256,
            });
            conn.write_message(&reply, &[]).await?;
            Ok(true)
        }
        Err(e) => {
            log_store_failure(ctx, &e);
            conn.write_message(&refusal(&e), &[]).await?;
            Ok(true)
        }
    }
}

async fn get(conn: &mut Conn, name: &str, shared: &Shared) -> Result<(), ConnError> {
    let (mut file, info) = match shared.store.open_file(name).await {
        Ok(found) => found,
        Err(e) => return conn.write_message(&refusal(&e), &[]).await,
    };
    let reply = Reply::Ok(GetReply {
        name: info.name,
        sha256: info.sha256,
    });
    conn.write_header(&reply, info.size).await?;
    let mut left = info.size;
    let mut buf = Vec::with_capacity(store::CHUNK);
    while left > 0 {
        buf.clear();
        let want = left.min(store::CHUNK as u64);
        let n = (&mut file).take(want).read_buf(&mut buf).await?;
        if n == 0 {
            // Shrunk under us (changed on disk): the peer sees a short body.
            return Err(ConnError::Truncated);
        }
        conn.write_body(&buf).await?;
        left -= n as u64;
    }
    conn.flush().await?;
    Ok(())
}

async fn list(conn: &mut Conn, shared: &Shared) -> Result<(), ConnError> {
    let files = match shared.store.list().await {
        Ok(f) => f,
        Err(e) => return conn.write_message(&refusal(&e), &[]).await,
    };
    let total = files.len();
    // Keep well inside the header cap, with room for the other fields.
    let budget = MAX_HEADER_LEN - 256;
    let mut used = 0;
    let mut shown = Vec::new();
    for f in files {
        let entry = FileEntry {
            name: f.name,
            size: f.size,
            sha256: f.sha256,
            modified: f.modified,
        };
        used += serde_json::to_string(&entry).map_or(budget, |text| text.len()) + 1;
        if used > budget {
            break;
        }
        shown.push(entry);
    }
    let truncated = shown.len() < total;
    let reply = Reply::Ok(ListReply {
        files: shown,
        truncated,
        total: truncated.then_some(total as u64),
    });
    conn.write_message(&reply, &[]).await
}
