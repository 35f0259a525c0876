//! The files service's resumable `put`: a `put` with `total` (the whole
//! file's size) keeps its bytes in the store's partial area
//! ([`crate::store::partial`]) until the last one arrives, so a cut
//! connection continues from what the server holds instead of from zero.
//!
//! ```text
//! {"op":"put","name":"a.jpg","total":T}                      -> {"ok":true,"partial":"<id>","offset":0,"total":T}
//! {"op":"put","name":"a.jpg","total":T,"partial":"<id>"}     -> {"ok":true,"partial":"<id>","offset":H,"total":T}
//! {"op":"put",..,"partial":"<id>","offset":H,"size":N} + N bytes -> the classic put's reply when whole,
//!                                                                  else the offset reply
//! ```
//!
//! Partial uploads made here belong to whoever holds the service's key
//! (the owner `files-protocol`); the dashboard's tus uploads are its
//! accounts' and are not reachable from here. Not here: the classic put.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::TcpCtx;
use super::files::{Shared, refusal, refuse_and_close};
use crate::conn::ConnError;
use crate::stats::ConnGuard;
use crate::store::partial::{New, Partial, PartialError, Partials, Removal, State, is_id};
use crate::store::{self};
use crate::wire::files::{PutReply, Reply, ResumeReply};

/// The owner of partial uploads made over the files protocol.
pub const OWNER: &str = "files-protocol";

/// What a resumable put asked for.
pub(super) struct Resume {
    pub total: u64,
    pub partial: Option<String>,
    pub offset: Option<u64>,
}

/// Answers a resumable put. `Ok(false)` when the connection must close
/// (refused with its body on the way, or the body cut).
pub(super) async fn put(
    conn: &mut super::files::Conn,
    name: &str,
    size: u64,
    ask: Resume,
    shared: &Shared,
    ctx: &TcpCtx,
    guard: &ConnGuard,
) -> Result<bool, ConnError> {
    let refuse = async |conn: &mut super::files::Conn, why: String| {
        if size == 0 {
            conn.write_message(&refusal(why), &[]).await.map(|()| true)
        } else {
            refuse_and_close(conn, why).await.map(|()| false)
        }
    };
    let Some(partials) = &shared.partials else {
        return refuse(conn, "resumable uploads are not available here".into()).await;
    };
    let partial = match partial_for(partials, name, &ask, shared, ctx, guard).await {
        Ok(p) => p,
        Err(why) => return refuse(conn, why).await,
    };
    if partial.length() != ask.total {
        return refuse(
            conn,
            format!(
                "the partial upload is {} bytes, not {}",
                partial.length(),
                ask.total
            ),
        )
        .await;
    }
    // Declared before the lock it takes, so dropped after it.
    let mut fresh = Fresh {
        partials,
        partial: ask.partial.is_none().then(|| Arc::clone(&partial)),
        ctx,
        guard,
    };
    let mut held = partial.lock().await;
    if partials.expired(&partial, &mut held) {
        return refuse(conn, "the partial upload expired".into()).await;
    }
    let started = Instant::now();
    if size > 0 || ask.total == 0 {
        let offset = ask.offset.unwrap_or(0);
        // Checked before a writer starts: one would take the running hash.
        if size > partial.length().saturating_sub(offset) {
            fresh.discard(&mut held);
            let e = PartialError::PastEnd {
                end: offset.saturating_add(size),
                length: ask.total,
            };
            return refuse(conn, e.to_string()).await;
        }
        let mut patch = match partials.patch(&partial, &mut held, offset, None) {
            Ok(p) => p,
            Err(e) => {
                fresh.discard(&mut held);
                return refuse(conn, e.to_string()).await;
            }
        };
        let cut = receive(conn, &mut patch, size, ctx.limits.idle_timeout).await;
        let ended = partials
            .end_patch(&mut held, patch, cut.is_none(), ttl_of(shared))
            .await;
        if let Some(e) = cut {
            tracing::info!(service = %ctx.id, peer = guard.peer(), "partial upload {} cut at {} bytes", partial.id(), held.offset());
            fresh.discard(&mut held);
            return Err(e);
        }
        if let Err(e) = ended {
            fresh.discard(&mut held);
            conn.write_message(&refusal(e), &[]).await?;
            return Ok(true);
        }
        if held.offset() == ask.total {
            let stored = partials.complete(&partial, &mut held).await;
            if stored.is_err() {
                fresh.discard(&mut held);
            } else {
                fresh.partial = None; // stored: nothing left to remove
            }
            return stored_reply(conn, stored, started, shared, ctx, guard).await;
        }
    }
    let reply = Reply::Ok(ResumeReply {
        partial: partial.id().to_owned(),
        offset: held.offset(),
        total: ask.total,
    });
    conn.write_message(&reply, &[]).await?;
    fresh.partial = None; // its client has its id
    Ok(true)
}

/// A partial upload made by this request. Its id reaches the client only
/// in the reply, so one that fails before then could never be resumed or
/// cancelled: it is removed on every way out short of that reply (a
/// refusal, a cut body, a connection dropped at any await).
struct Fresh<'a> {
    partials: &'a Partials,
    /// `None` when there is nothing to remove: not made here, stored, or
    /// its id sent.
    partial: Option<Arc<Partial>>,
    ctx: &'a TcpCtx,
    guard: &'a ConnGuard,
}

impl Fresh<'_> {
    /// Removes it now, its lock held.
    fn discard(&mut self, held: &mut State) {
        if let Some(partial) = self.partial.take()
            && !held.gone()
        {
            self.partials.remove(&partial, held);
            self.removed(&partial);
        }
    }

    fn removed(&self, partial: &Partial) {
        let (id, peer) = (&self.ctx.id, self.guard.peer());
        tracing::info!(service = %id, peer, "partial upload {} removed: its first put failed", partial.id());
    }
}

impl Drop for Fresh<'_> {
    fn drop(&mut self) {
        let Some(partial) = self.partial.take() else {
            return;
        };
        let id = partial.id().to_owned();
        let (svc, peer) = (&self.ctx.id, self.guard.peer());
        match self.partials.remove_orphan(partial) {
            Removal::Now | Removal::Later => {
                tracing::info!(service = %svc, peer, "partial upload {id} removed: its first put ended before its reply");
            }
            Removal::AlreadyGone => {}
            Removal::Left => {
                tracing::warn!(service = %svc, peer, "partial upload {id} is left until it expires: its first put ended before its reply");
            }
        }
    }
}

/// The partial upload `ask` names, or a new one for `name`; the refusal's
/// reason when there is none to use.
async fn partial_for(
    partials: &Partials,
    name: &str,
    ask: &Resume,
    shared: &Shared,
    ctx: &TcpCtx,
    guard: &ConnGuard,
) -> Result<Arc<Partial>, String> {
    if let Some(id) = &ask.partial {
        return partials
            .get(id, OWNER)
            .filter(|_| is_id(id))
            .ok_or_else(|| format!("no partial upload `{id}` (finished, expired or never made)"));
    }
    let p = partials
        .create(New {
            owner: OWNER,
            name,
            length: ask.total,
            metadata: "",
            sha256: None,
            max_size: shared.max_file_bytes,
            max_per_owner: shared.max_partials,
            ttl: shared.partial_ttl,
        })
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(service = %ctx.id, peer = guard.peer(), "partial upload {} of {:?} started", p.id(), name);
    Ok(p)
}

/// Reads `size` body bytes into `patch`; the reason when the body ended
/// early (cut, stalled, the writer failed).
async fn receive(
    conn: &mut super::files::Conn,
    patch: &mut crate::store::partial::Patch,
    size: u64,
    idle: Duration,
) -> Option<ConnError> {
    let mut left = size;
    let mut cut = None;
    while left > 0 {
        let want = left.min(store::CHUNK as u64) as usize;
        let mut buf = Vec::with_capacity(want);
        let n = match tokio::time::timeout(idle, conn.read_into(&mut buf, want)).await {
            Err(_) => {
                cut = Some(ConnError::Timeout(idle));
                break;
            }
            Ok(Err(e)) => {
                cut = Some(ConnError::Io(e));
                break;
            }
            Ok(Ok(0)) => {
                cut = Some(ConnError::Truncated);
                break;
            }
            Ok(Ok(n)) => n,
        };
        buf.truncate(n);
        left -= n as u64;
        if let Err(e) = patch.push(Bytes::from(buf)).await {
            cut = Some(ConnError::Io(std::io::Error::other(e.to_string())));
            break;
        }
    }
    cut
}

/// Answers a completed upload: recorded and replied as a classic put is.
async fn stored_reply(
    conn: &mut super::files::Conn,
    stored: Result<crate::store::FileInfo, PartialError>,
    started: Instant,
    shared: &Shared,
    ctx: &TcpCtx,
    guard: &ConnGuard,
) -> Result<bool, ConnError> {
    match stored {
        Ok(info) => {
            ctx.stats.observe_upload(&ctx.id, started.elapsed());
            let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            super::files::record_stored(ctx, &shared.audit, guard, &info, millis).await;
            let reply = Reply::Ok(PutReply {
                name: info.name,
                stored_size: info.size,
                sha256: info.sha256,
            });
            conn.write_message(&reply, &[]).await.map(|()| true)
        }
        Err(e) => conn.write_message(&refusal(e), &[]).await.map(|()| true),
    }
}

fn ttl_of(shared: &Shared) -> Duration {
    shared.partial_ttl
}
