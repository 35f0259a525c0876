//! Resumable uploads on the dashboard: tus 1.0.0 (tus.io) at
//! `/api/v1/uploads/`, with the `creation`, `creation-with-upload`,
//! `termination`, `expiration` and `checksum` (sha1, sha256) extensions.
//!
//! - `POST` creates an upload (`Upload-Length`, `Upload-Metadata` with
//!   `filename`, optionally `sha256` of the whole file); `HEAD` says how
//!   much is held; `PATCH` appends at that offset; `DELETE` terminates.
//!   The file appears in the files folder under its name only once the
//!   last byte is in and its SHA-256 checked (against the declared one).
//! - The bytes live in the store's partial area ([`crate::store::partial`]),
//!   which claims the declared length against the free space, survives a
//!   restart, and expires `partial_ttl_ms` after the last write.
//! - Operators only; an upload answers to the account (or token) that
//!   created it, and is "not found" to anyone else. Cookie sessions need
//!   the CSRF token as every state-changing request does.
//! - A `PATCH` body streams to disk; a gap of `web.request_timeout_ms`
//!   between its bytes ends it (the bytes so far are kept).
//!
//! Not here: `creation-defer-length`, `concatenation`, the
//! `X-HTTP-Method-Override` header.

mod headers;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{head, post};

use super::AppState;
use super::session::{Admin, ClientIp, Operator, Session, Viewer};
use crate::config::Config;
use crate::shutdown::Shutdown;
use crate::stats::EventKind;
use crate::store::partial::{self, New, Partial, PartialError, Partials, State as Held};
use headers::{TusError, stamp};

/// How long a request waits for another request on the same upload (a
/// part still being written, a cut one still ending) before 423.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// The sweep's period at most (it runs more often when the expiry is shorter).
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// The dashboard's partial uploads and their limits.
pub struct Uploads {
    partials: Result<Partials, String>,
    max_size: u64,
    ttl: Duration,
    max_per_owner: u64,
}

impl Uploads {
    /// Opens the partial area of the folder the `files` instance serves,
    /// sweeps it now and then every hour (or every `partial_ttl_ms` when
    /// shorter) until shutdown.
    pub fn new(
        config: &Config,
        store: &crate::store::Store,
        audit: crate::audit::AuditLog,
        shutdown: &Shutdown,
    ) -> Uploads {
        let files = match config
            .service("files")
            .and_then(|s| s.settings.get::<crate::service::files::Settings>())
        {
            Some(f) => f.clone(),
            _ => crate::service::files::Settings::default(),
        };
        let partials = match &files.folder {
            Some(folder) => Partials::open_folder(folder),
            None => Partials::open(store),
        }
        .map_err(|e| format!("the partial upload area cannot be opened: {e}"));
        if let Err(e) = &partials {
            tracing::warn!("{e}");
        }
        let ttl = Duration::from_millis(files.partial_ttl_ms);
        if let Ok(p) = &partials {
            let (p, token) = (p.clone(), shutdown.token.clone());
            let every = ttl.clamp(Duration::from_millis(100), SWEEP_EVERY);
            shutdown.tasks.spawn(async move {
                let tick = crate::clock::every(every);
                while token.run_until_cancelled(tick.tick()).await.is_some() {
                    for meta in p.sweep() {
                        audit_meta(&audit, "expired", &meta, None).await;
                    }
                }
            });
        }
        Uploads {
            partials,
            max_size: files.max_file_bytes,
            ttl,
            max_per_owner: files.max_partials,
        }
    }

    fn partials(&self) -> Result<&Partials, TusError> {
        self.partials
            .as_ref()
            .map_err(|e| TusError(StatusCode::SERVICE_UNAVAILABLE, e.clone()))
    }
}

/// An `upload` audit line for `meta`: `from`, the client's address, when a
/// request caused it (not an expiry).
async fn audit_meta(
    audit: &crate::audit::AuditLog,
    action: &str,
    meta: &partial::Meta,
    from: Option<IpAddr>,
) {
    audit
        .record(crate::audit::AuditEvent::Upload {
            action: action.to_owned(),
            user: meta.owner.clone(),
            peer: from.map(|ip| ip.to_string()),
            id: meta.id.clone(),
            name: meta.name.clone(),
            length: Some(meta.length),
            size: None,
            sha256: None,
        })
        .await;
}

/// The routes: one line in the router merges them.
pub fn routes() -> Router<AppState> {
    let collection = post(create).options(options).get(list);
    Router::new()
        .route("/api/v1/uploads", collection.clone())
        .route("/api/v1/uploads/", collection)
        .route(
            "/api/v1/uploads/{id}",
            head(status).patch(patch).delete(terminate).options(options),
        )
}

fn uploads(state: &AppState) -> &Uploads {
    &state.inner.uploads
}

/// `OPTIONS`: what this server speaks.
async fn options(State(state): State<AppState>, _: Viewer) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    stamp(h);
    h.insert("tus-version", HeaderValue::from_static(headers::VERSION));
    h.insert(
        "tus-extension",
        HeaderValue::from_static(headers::EXTENSIONS),
    );
    h.insert(
        "tus-checksum-algorithm",
        HeaderValue::from_static(headers::CHECKSUMS),
    );
    h.insert("tus-max-size", HeaderValue::from(uploads(&state).max_size));
    res
}

/// `GET /api/v1/uploads/` (admin): every unfinished upload.
async fn list(State(state): State<AppState>, _: Admin) -> Result<Response, TusError> {
    let all = uploads(&state).partials()?.list().await;
    Ok(Json(all).into_response())
}

/// `owner`'s upload `id`, locked, unexpired; an expired one is audited
/// and removed on the way.
async fn held<'a>(
    state: &AppState,
    partial: &'a Partial,
) -> Result<tokio::sync::MutexGuard<'a, Held>, TusError> {
    let mut held = tokio::time::timeout(LOCK_WAIT, partial.lock())
        .await
        .map_err(|_| {
            TusError(
                StatusCode::LOCKED,
                "another request is writing this upload; try again".into(),
            )
        })?;
    let partials = uploads(state).partials()?;
    let meta = held.meta().clone();
    if partials.expired(partial, &mut held) {
        audit_meta(state.audit(), "expired", &meta, None).await;
        return Err(PartialError::NotFound.into());
    }
    Ok(held)
}

fn find(state: &AppState, session: &Session, id: &str) -> Result<Arc<Partial>, TusError> {
    if !partial::is_id(id) {
        return Err(PartialError::NotFound.into());
    }
    uploads(state)
        .partials()?
        .get(id, &session.user)
        .ok_or_else(|| PartialError::NotFound.into())
}

fn offset_headers(h: &mut HeaderMap, held: &Held) {
    stamp(h);
    h.insert("upload-offset", HeaderValue::from(held.offset()));
    h.insert("upload-expires", headers::expires(held.meta().expires_ms));
}

/// `HEAD /api/v1/uploads/{id}`: how much is held.
async fn status(
    State(state): State<AppState>,
    Operator(session): Operator,
    Path(id): Path<String>,
    req: HeaderMap,
) -> Result<Response, TusError> {
    headers::check_version(&req)?;
    let partial = find(&state, &session, &id)?;
    let held = held(&state, &partial).await?;
    let mut res = StatusCode::OK.into_response();
    let h = res.headers_mut();
    offset_headers(h, &held);
    h.insert("upload-length", HeaderValue::from(partial.length()));
    if let Ok(v) = HeaderValue::from_str(&held.meta().metadata)
        && !held.meta().metadata.is_empty()
    {
        h.insert("upload-metadata", v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `POST /api/v1/uploads/`: creates an upload, and (creation-with-upload)
/// writes the body as its first part.
async fn create(
    State(state): State<AppState>,
    Operator(session): Operator,
    ClientIp(from): ClientIp,
    req: HeaderMap,
    body: Body,
) -> Result<Response, TusError> {
    headers::check_version(&req)?;
    if req.contains_key("upload-defer-length") {
        return Err(TusError::bad(
            "Upload-Defer-Length is not supported: send Upload-Length",
        ));
    }
    let length = headers::number(&req, "upload-length")?
        .ok_or_else(|| TusError::bad("Upload-Length is required"))?;
    let meta = headers::metadata(&req)?;
    let name = meta
        .filename
        .clone()
        .ok_or_else(|| TusError::bad("Upload-Metadata must carry filename (base64)"))?;
    let with_data = headers::is_offset_stream(&req)
        && headers::number(&req, "content-length")?.is_none_or(|n| n > 0);
    let tasks = state.inner.shutdown.tasks.clone();
    // The creation is detached too: its files are made on a blocking job,
    // which shutdown waits for and a client that leaves cannot cut off.
    detached(&tasks, async move {
        let up = uploads(&state);
        let partial = up
            .partials()?
            .create(New {
                owner: &session.user,
                name: &name,
                length,
                metadata: &meta.raw,
                sha256: meta.sha256.clone(),
                max_size: up.max_size,
                max_per_owner: up.max_per_owner,
                ttl: up.ttl,
            })
            .await?;
        let mut held = partial.lock().await;
        audit_meta(state.audit(), "created", held.meta(), Some(from)).await;
        let part = if with_data {
            write_part(&state, &partial, from, &mut held, 0, &req, body).await
        } else {
            Ok(())
        };
        let first = match part {
            Ok(()) if held.offset() == partial.length() => {
                match finish(&state, &session, from, &partial, &mut held).await {
                    Ok(stored) => First::Kept(Some(stored)),
                    Err(e) => First::CompletionFailed(e),
                }
            }
            Ok(()) => First::Kept(None),
            Err(e) => First::PartFailed(e),
        };
        let mut res = match first {
            First::Kept(stored) => {
                let mut res = StatusCode::CREATED.into_response();
                stored_headers(res.headers_mut(), stored.as_ref());
                res
            }
            First::PartFailed(e) if held.offset() > 0 => {
                // Created, part of the body kept: the client resumes from here.
                tracing::debug!(
                    "the first part of upload {} ended early: {}",
                    partial.id(),
                    e.1
                );
                StatusCode::CREATED.into_response()
            }
            First::PartFailed(e) => {
                remove_failed(&state, &partial, &mut held, Some(from)).await?;
                return Err(e);
            }
            First::CompletionFailed(e) => {
                // `finish` audited it.
                remove_failed(&state, &partial, &mut held, None).await?;
                return Err(e);
            }
        };
        let h = res.headers_mut();
        offset_headers(h, &held);
        let location = format!("/api/v1/uploads/{}", partial.id());
        h.insert(
            header::LOCATION,
            HeaderValue::from_str(&location).expect("an id is hex"),
        );
        Ok(res)
    })
    .await
}

/// How a new upload's first part ended.
enum First {
    /// Kept: stored complete (`Some`), or to be resumed.
    Kept(Option<crate::store::FileInfo>),
    /// The part failed; the upload may hold some of it.
    PartFailed(TusError),
    /// The part was the whole file, and storing it failed.
    CompletionFailed(TusError),
}

/// Removes a new upload whose first part or completion failed: its client
/// gets no Location to resume, retry or delete it by, so it goes now, not
/// at its expiry. Audited `failed` if `audit` (a failed completion was,
/// by `finish`).
async fn remove_failed(
    state: &AppState,
    partial: &Partial,
    held: &mut Held,
    audit: Option<IpAddr>,
) -> Result<(), TusError> {
    if !held.gone() {
        let meta = held.meta().clone();
        uploads(state).partials()?.remove(partial, held);
        if let Some(from) = audit {
            audit_meta(state.audit(), "failed", &meta, Some(from)).await;
        }
    }
    Ok(())
}

/// Runs a request's work on a task of its own and answers its response.
/// hyper drops a handler whose client went away, at whatever it awaits;
/// a part's end, a completion (the link, the table, the audit) or the
/// removal of a failed upload must not stop half-way, so they run where
/// that cannot reach them. The work ends on its own: its body ends or
/// stalls for `request_timeout`. Shutdown waits for it.
async fn detached(
    tasks: &tokio_util::task::TaskTracker,
    work: impl Future<Output = Result<Response, TusError>> + Send + 'static,
) -> Result<Response, TusError> {
    tasks.spawn(work).await.unwrap_or_else(|e| {
        tracing::warn!("a resumable upload's request failed: {e}");
        Err(TusError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the upload's request failed".into(),
        ))
    })
}

/// `PATCH /api/v1/uploads/{id}`: appends the body at `Upload-Offset`.
async fn patch(
    State(state): State<AppState>,
    Operator(session): Operator,
    ClientIp(from): ClientIp,
    Path(id): Path<String>,
    req: HeaderMap,
    body: Body,
) -> Result<Response, TusError> {
    headers::check_version(&req)?;
    if !headers::is_offset_stream(&req) {
        return Err(TusError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be {}", headers::OFFSET_STREAM),
        ));
    }
    let offset = headers::number(&req, "upload-offset")?
        .ok_or_else(|| TusError::bad("Upload-Offset is required"))?;
    let partial = find(&state, &session, &id)?;
    let tasks = state.inner.shutdown.tasks.clone();
    detached(&tasks, async move {
        let mut held = held(&state, &partial).await?;
        write_part(&state, &partial, from, &mut held, offset, &req, body).await?;
        let stored = if held.offset() == partial.length() {
            Some(finish(&state, &session, from, &partial, &mut held).await?)
        } else {
            None
        };
        let mut res = StatusCode::NO_CONTENT.into_response();
        offset_headers(res.headers_mut(), &held);
        stored_headers(res.headers_mut(), stored.as_ref());
        Ok(res)
    })
    .await
}

/// On the request that completed an upload: the name it was stored under
/// (percent-encoded UTF-8; a taken name gets a free variant) and its
/// SHA-256, so a client can say where its file is without listing them.
/// Not tus headers: other clients ignore them.
fn stored_headers(h: &mut HeaderMap, stored: Option<&crate::store::FileInfo>) {
    let Some(stored) = stored else { return };
    let name =
        percent_encoding::utf8_percent_encode(&stored.name, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert("upload-stored-name", v);
    }
    if let Ok(v) = HeaderValue::from_str(&stored.sha256) {
        h.insert("upload-sha256", v);
    }
}

/// Streams `body` into the upload at `offset`.
async fn write_part(
    state: &AppState,
    partial: &Partial,
    from: IpAddr,
    held: &mut Held,
    offset: u64,
    req: &HeaderMap,
    body: Body,
) -> Result<(), TusError> {
    let checksum = headers::checksum(req)?;
    let up = uploads(state);
    let partials = up.partials()?;
    if let Some(n) = headers::number(req, "content-length")?
        && n > partial.length().saturating_sub(offset)
    {
        return Err(PartialError::PastEnd {
            end: offset.saturating_add(n),
            length: partial.length(),
        }
        .into());
    }
    let mut part = partials.patch(partial, held, offset, checksum)?;
    if held.cut && offset > 0 {
        held.cut = false;
        audit_meta(state.audit(), "resumed", held.meta(), Some(from)).await;
    }
    let idle = state.web().request_timeout;
    let mut body = body.into_data_stream();
    let read: Result<(), PartialError> = async {
        use futures_util::StreamExt;
        loop {
            match tokio::time::timeout(idle, body.next()).await {
                Err(_) => return Err(PartialError::Idle(idle)),
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => return Err(PartialError::Body(e.to_string())),
                Ok(Some(Ok(bytes))) => part.push(bytes).await?,
            }
        }
    }
    .await;
    let ended = partials.end_patch(held, part, read.is_ok(), up.ttl).await;
    if let Err(e) = read.and(ended.map(drop)) {
        held.cut = true;
        return Err(e.into());
    }
    Ok(())
}

/// Stores a complete upload and says so (audit, live pages).
async fn finish(
    state: &AppState,
    session: &Session,
    from: IpAddr,
    partial: &Partial,
    held: &mut Held,
) -> Result<crate::store::FileInfo, TusError> {
    let meta = held.meta().clone();
    let stored = match uploads(state).partials()?.complete(partial, held).await {
        Ok(s) => s,
        Err(e) => {
            audit_meta(state.audit(), "failed", &meta, Some(from)).await;
            return Err(e.into());
        }
    };
    state
        .audit()
        .record(crate::audit::AuditEvent::Upload {
            action: "completed".into(),
            user: session.user.clone(),
            peer: Some(from.to_string()),
            id: meta.id.clone(),
            name: stored.name.clone(),
            length: None,
            size: Some(stored.size),
            sha256: Some(stored.sha256.clone()),
        })
        .await;
    if let Some(files) = state.supervisor().id("files") {
        state.stats().emit(EventKind::FileStored {
            service: files,
            peer: session.user.clone(),
            name: stored.name.clone(),
            size: stored.size,
            sha256: stored.sha256.clone(),
        });
    }
    Ok(stored)
}

/// `DELETE /api/v1/uploads/{id}`: terminates the upload and frees its
/// space at once.
async fn terminate(
    State(state): State<AppState>,
    Operator(session): Operator,
    ClientIp(from): ClientIp,
    Path(id): Path<String>,
    req: HeaderMap,
) -> Result<Response, TusError> {
    headers::check_version(&req)?;
    let partial = find(&state, &session, &id)?;
    let mut held = held(&state, &partial).await?;
    let meta = held.meta().clone();
    uploads(&state).partials()?.remove(&partial, &mut held);
    audit_meta(state.audit(), "terminated", &meta, Some(from)).await;
    let mut res = StatusCode::NO_CONTENT.into_response();
    stamp(res.headers_mut());
    Ok(res)
}
