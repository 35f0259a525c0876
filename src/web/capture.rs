//! The wire inspector's routes, all admin only (captures may hold
//! passwords and file contents):
//!
//! - `GET /api/v1/captures`: the captures held (id, service, peer, open
//!   or closed, bytes held);
//! - `GET /api/v1/connections/{id}/capture?since=SEQ`: a capture's
//!   segments after the cursor, as JSON with hex bytes, at most
//!   [`MAX_JSON_BYTES`] of payload per answer (poll again from `next`);
//! - `GET /api/v1/connections/{id}/capture.pcapng` and
//!   `GET /api/v1/services/{name}/capture.pcapng`: the export;
//! - `PUT /api/v1/services/{name}/capture` `{"capture": true|false}`:
//!   the live switch, audited.
//!
//! An export is bounded by what is held (`capture_total_bytes`). Nothing
//! here logs a capture's bytes.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::error::{ApiQuery, UpstreamError, WebError};
use super::session::{Admin, ClientIp};
use crate::capture::{CaptureCopy, CaptureInfo, Dir, pcapng};
use crate::wire::hex;

/// Payload bytes (before hex) one JSON answer carries at most.
pub const MAX_JSON_BYTES: usize = 256 * 1024;

/// One segment as the live view gets it.
#[derive(Debug, Serialize)]
pub struct SegmentView {
    pub seq: u64,
    pub dir: Dir,
    /// Microseconds since the connection opened.
    pub t_us: u64,
    pub len: usize,
    /// Where its first byte is in its direction's stream.
    pub offset: u64,
    /// Bytes of its direction evicted just before it (a gap to mark).
    pub gap_before: u64,
    pub hex: String,
}

/// A capture's segments after a cursor.
#[derive(Debug, Serialize)]
pub struct CaptureView {
    #[serde(flatten)]
    pub info: CaptureInfo,
    pub capturing: bool,
    pub closed_us: Option<u64>,
    pub segments: Vec<SegmentView>,
    /// The cursor for the next poll: the last segment's number.
    pub next: u64,
    /// Whether more segments wait beyond this answer's size bound.
    pub more: bool,
}

#[derive(Debug, Deserialize)]
pub struct SinceQuery {
    since: Option<u64>,
}

/// The capture of connection `id`, or a 404 that says why there may be none.
fn capture_of(
    state: &AppState,
    id: u64,
) -> Result<std::sync::Arc<crate::capture::ConnCapture>, WebError> {
    state.stats().captures().get(id).ok_or_else(|| {
        WebError::NotFound(format!(
            "capture of connection {id} (its service may not capture, or it was evicted)"
        ))
    })
}

/// Captures one list answer names at most: the newest.
pub const MAX_LISTED: usize = 1000;

/// `GET /api/v1/captures` (admin): the newest [`MAX_LISTED`] captures,
/// oldest first, and how many are held in all.
pub async fn list(State(state): State<AppState>, _: Admin) -> Json<serde_json::Value> {
    let captures = state.stats().captures();
    let all = captures.list();
    let skip = all.len().saturating_sub(MAX_LISTED);
    let list: Vec<CaptureInfo> = all[skip..].iter().map(|c| c.info()).collect();
    Json(json!({
        "budget": captures.budget(),
        "held": captures.held(),
        "total": all.len(),
        "captures": list,
    }))
}

/// `GET /api/v1/connections/{id}/capture?since=SEQ` (admin).
///
/// # Errors
/// No capture of that connection.
pub async fn segments(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<u64>,
    ApiQuery(q): ApiQuery<SinceQuery>,
) -> Result<Json<CaptureView>, WebError> {
    let since = q.since.unwrap_or(0);
    let capture = capture_of(&state, id)?;
    let CaptureCopy {
        info,
        closed_us,
        segments,
        more,
        ..
    } = capture.copy(since, MAX_JSON_BYTES);
    let next = segments.last().map_or(since, |s| s.seq);
    Ok(Json(CaptureView {
        capturing: state.stats().capturing(info.service.name()),
        info,
        closed_us,
        segments: segments
            .into_iter()
            .map(|s| SegmentView {
                seq: s.seq,
                dir: s.dir,
                t_us: s.t_us,
                len: s.bytes.len(),
                offset: s.offset,
                gap_before: s.gap_before,
                hex: hex(&s.bytes),
            })
            .collect(),
        next,
        more,
    }))
}

/// Exports made at once, in all. Each holds a copy of what it exports
/// while its file is made and sent piece by piece ([`pcapng::Encoder`]):
/// about `capture_total_bytes` for a whole instance, not the three times
/// that a copy, the packets and the whole file cost before; the bound
/// keeps a few parallel downloads to a few times the capture budget.
pub const MAX_EXPORTS: usize = 2;

/// A place among the exports being built, or 503.
fn export_slot(state: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, WebError> {
    super::error::slot(&state.inner.capture_exports, || {
        format!("{MAX_EXPORTS} capture exports are being built; try again in a moment")
    })
}

/// A pcapng download named `name`, made piece by piece as it is sent.
/// The export's place is held until the body has been handed on, piece by
/// piece, so slow downloads count too.
fn pcapng_response(
    name: &str,
    captures: Vec<CaptureCopy>,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> Response {
    let encoder = pcapng::Encoder::new(captures);
    let length = HeaderValue::from(encoder.file_len());
    // The slot goes when the stream is dropped: after its last piece.
    let pieces = encoder.map(move |piece| {
        let _ = &slot;
        Ok::<_, std::convert::Infallible>(bytes::Bytes::from(piece))
    });
    let mut response = axum::body::Body::from_stream(tokio_stream::iter(pieces)).into_response();
    let headers = response.headers_mut();
    // Known up front: a download shows its progress, and is not chunked.
    headers.insert(header::CONTENT_LENGTH, length);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.tcpdump.pcap"),
    );
    // The name is ours (an instance name or a number): safe in a header.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.pcapng\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// `GET /api/v1/connections/{id}/capture.pcapng` (admin).
///
/// # Errors
/// No capture of that connection.
pub async fn connection_pcapng(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<u64>,
) -> Result<Response, WebError> {
    let capture = capture_of(&state, id)?;
    let slot = export_slot(&state)?;
    let copy = capture.copy(0, usize::MAX);
    let name = format!("{}-{id}", copy.info.service);
    Ok(pcapng_response(&name, vec![copy], slot))
}

/// `GET /api/v1/services/{name}/capture.pcapng` (admin): every capture
/// the instance holds, open and closed.
///
/// # Errors
/// Unknown instance, or one that captures nothing and holds nothing.
pub async fn service_pcapng(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Response, WebError> {
    let id = state
        .supervisor()
        .id(&name)
        .ok_or_else(|| WebError::NotFound(format!("service `{name}`")))?;
    let held = state.stats().captures().of_service(id.name());
    if held.is_empty() && !state.stats().capturing(id.name()) {
        return Err(WebError::NotFound(format!(
            "capture of `{id}`: capture is off for it and none is retained"
        )));
    }
    let slot = export_slot(&state)?;
    let copies: Vec<CaptureCopy> = held.iter().map(|c| c.copy(0, usize::MAX)).collect();
    Ok(pcapng_response(id.name(), copies, slot))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    capture: bool,
}

/// `PUT /api/v1/services/{name}/capture` `{"capture": true|false}`
/// (admin): switches capturing of new connections, live; audited, and
/// kept in `services.toml` so a restart captures the same way.
///
/// # Errors
/// Unknown instance, a malformed body.
pub async fn switch(
    State(state): State<AppState>,
    Admin(session): Admin,
    ClientIp(from): ClientIp,
    Path(name): Path<String>,
    body: Result<Json<Switch>, JsonRejection>,
) -> Result<Json<serde_json::Value>, WebError> {
    let Json(Switch { capture }) = body?;
    let id = state
        .supervisor()
        .id(&name)
        .ok_or_else(|| WebError::NotFound(format!("service `{name}`")))?;
    let result = state.supervisor().set_capture(id.name(), capture);
    state
        .audit()
        .record(crate::audit::AuditEvent::Capture {
            service: id.name().to_owned(),
            capture,
            user: session.user.clone(),
            peer: Some(from.to_string()),
            ok: result.is_ok(),
        })
        .await;
    result.map_err(|e| WebError::NotFound(e.to_string()))?;
    state.keep_capture(id.name(), capture).await?;
    Ok(Json(json!({"service": id, "capture": capture})))
}

/// Replays from the dashboard run at once, in all: each holds a socket and
/// up to [`REPLAY_TIMEOUT`] of a request.
pub const MAX_REPLAYS: usize = 2;
/// Wall time one replay from the dashboard may take.
const REPLAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// The instance to replay to (default: the capture's own). Only this
    /// server's own instances: the dashboard is not a way to send bytes to
    /// any address the server can reach.
    target: Option<String>,
    /// Keep the recorded gaps between the client's segments.
    #[serde(default)]
    timing: bool,
}

/// `POST /api/v1/connections/{id}/replay` `{"target": "NAME", "timing":
/// bool}` (admin): sends the capture's client side again, segment by
/// segment with its original boundaries, to one of this server's instances
/// (by default the one it was captured on) and answers what was sent, the
/// recorded replies, the new ones and their diff, as `switchboard replay`
/// does. Audited.
///
/// # Errors
/// No such capture; a capture that lost some of the client's bytes (a
/// replay would send another stream); a target that is unknown, stopped,
/// of another kind or protocol, or speaks TLS; two replays already running.
pub async fn replay(
    State(state): State<AppState>,
    Admin(session): Admin,
    ClientIp(from): ClientIp,
    Path(id): Path<u64>,
    body: Result<Json<ReplayRequest>, JsonRejection>,
) -> Result<Json<crate::replay::Outcome>, WebError> {
    let Json(request) = body?;
    let capture = capture_of(&state, id)?;
    // Taken before the capture is copied: a refused replay copies nothing.
    let _slot = super::error::slot(&state.inner.capture_replays, || {
        format!("{MAX_REPLAYS} replays are already running; try again")
    })?;
    let copy = capture.copy(0, usize::MAX);
    if copy.info.dropped_in > 0 {
        return Err(WebError::Conflict(format!(
            "the capture no longer holds the first {} bytes the client sent \
             (capture_bytes); a replay would send another stream",
            copy.info.dropped_in
        )));
    }
    let name = request
        .target
        .unwrap_or_else(|| copy.info.service.name().to_owned());
    super::replay_target::check(&state, &copy.info, &name)?;
    let addr = state.target(&name)?;
    let conversation = conversation_of(&copy);
    drop(copy);
    let limits = crate::replay::Limits {
        timeout: REPLAY_TIMEOUT,
        timing: request.timing,
        // The answer carries the replies (hex and text): as bounded as a
        // page of segments.
        max_reply_bytes: MAX_JSON_BYTES,
        ..crate::replay::Limits::default()
    };
    // Marked as ours, like the relays (see `service::internal`): it holds
    // no slot of 127.0.0.1's, and a port behind a proxy lets it in.
    let outcome =
        crate::service::internal::scope(crate::replay::run(&conversation, &addr, &limits)).await;
    state
        .audit()
        .record(crate::audit::AuditEvent::Replay {
            connection: id,
            target: name.clone(),
            user: session.user.clone(),
            peer: Some(from.to_string()),
            outcome: match &outcome {
                Ok(o) if o.equal() => "equal".to_owned(),
                Ok(_) => "different".to_owned(),
                Err(e) => format!("error: {e}"),
            },
        })
        .await;
    outcome
        .map(Json)
        .map_err(|e| WebError::Upstream(UpstreamError::Replay(e)))
}

/// A capture as the replay engine reads a capture file: the peer is the
/// client, our side the server.
fn conversation_of(copy: &CaptureCopy) -> crate::replay::Conversation {
    use crate::replay::{Conversation, Dir as Side, Proto, Segment};
    let unknown = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    Conversation {
        proto: match copy.info.proto {
            crate::kind::Proto::Tcp => Proto::Tcp,
            crate::kind::Proto::Udp => Proto::Udp,
        },
        client: copy.client.unwrap_or(unknown),
        server: copy.server.unwrap_or(unknown),
        started_us: copy.info.opened_at_unix_us,
        segments: copy
            .segments
            .iter()
            .map(|s| Segment {
                dir: match s.dir {
                    Dir::In => Side::Client,
                    Dir::Out => Side::Server,
                },
                t_us: s.t_us,
                bytes: s.bytes.clone(),
            })
            .collect(),
        client_fin_us: None,
    }
}
