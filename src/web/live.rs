//! `GET /api/v1/live`: the Server-Sent Events stream every page listens to.
//!
//! The messages (and `lagged`, below):
//! - `stream`, first and once: the id the page ends it by when left
//!   ([`super::live_leave`]);
//! - `snapshot`: services (state, totals, last second's rates) and the
//!   newest [`MAX_LIVE_CONNECTIONS`] connections, once a second and right
//!   after a connection opens or closes or a service changes state;
//! - `events`: the stats events since the last message, in batches at most
//!   [`BATCH_WINDOW`] apart, so a burst of connections costs a few messages
//!   rather than thousands (a file deleted from the dashboard is one of
//!   them, `file_deleted`, as a stored one is `file_stored`).
//!
//! Each stream is fed by a task of its own through a small channel: a slow
//! browser only slows its own task, and falling too far behind the event
//! channel sends a `lagged` message instead of stalling anything. Streams
//! end when the browser goes away, at shutdown, or when their session ends
//! (at once on sign-out; within [`SESSION_CHECK_EVERY`] on expiry or when
//! the account is removed, even by another process); `EventSource` in the
//! page reconnects by itself, and is then told to sign in.
//!
//! At most [`super::MAX_LIVE_STREAMS`] streams in all, and
//! `web.max_streams_per_session` per account (however many times it signs
//! in), so one viewer cannot take every slot.
//!
//! Every stream is answered with `Connection: close`. A browser leaving a
//! page cancels its stream, and on a connection it may reuse it would rather
//! *drain* the rest of the body (Chromium keeps reading a cancelled chunked
//! response for a long while) than close the socket: the server then sees
//! a reader, and the page left kept its slot for about a minute, so the
//! ninth page of a tour was refused. A connection that cannot be reused is
//! closed at once, the server reads the end of it, and the stream and its
//! slots are released within milliseconds. Behind an HTTP/1.1 proxy the
//! header stops at the proxy; there the page's beacon to
//! [`super::live_leave`] ends the stream instead.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::AppState;
use super::api::ServiceView;
use super::error::WebError;
use super::live_leave::Entered;
use super::session::{StreamTicket, Viewer};
use crate::stats::{ConnInfo, Event, EventKind};

/// Connections in one snapshot; the rest are counted in `connections_total`.
pub const MAX_LIVE_CONNECTIONS: usize = 500;
/// Events wait at most this long to be sent together.
const BATCH_WINDOW: Duration = Duration::from_millis(200);
/// Most events in one `events` message.
const MAX_BATCH: usize = 500;
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);
/// How often a stream checks that its session and account still stand.
/// Separate from the snapshot tick, which a burst of events keeps pushing
/// back.
pub const SESSION_CHECK_EVERY: Duration = Duration::from_millis(500);

/// What a `snapshot` message carries.
#[derive(Serialize)]
pub struct LiveSnapshot {
    pub at_unix_ms: u64,
    pub services: Vec<ServiceView>,
    /// The newest connections, oldest first.
    pub connections: Vec<ConnInfo>,
    pub connections_total: usize,
}

impl AppState {
    pub(super) fn live_snapshot(&self) -> LiveSnapshot {
        let (snapshot, total) = self.stats().snapshot_newest(MAX_LIVE_CONNECTIONS);
        let services = self.service_views(&snapshot);
        LiveSnapshot {
            at_unix_ms: snapshot.at_unix_ms,
            services,
            connections: snapshot.connections,
            connections_total: total,
        }
    }
}

/// The handler.
///
/// # Errors
/// Not signed in, the account's streams all open (429), or
/// [`super::MAX_LIVE_STREAMS`] streams already open (503).
pub async fn stream(
    State(state): State<AppState>,
    _: Viewer,
    headers: HeaderMap,
) -> Result<impl IntoResponse, WebError> {
    let ticket = state.open_stream(&headers)?;
    let permit = super::error::slot(&state.inner.live_slots, || {
        "too many live streams are open; close some dashboard tabs".into()
    })?;
    let entered = state.inner.leaving.enter()?;
    let (tx, rx) = mpsc::channel(8);
    let events = state.stats().subscribe();
    let tasks = state.inner.shutdown.tasks.clone();
    tasks.spawn(async move {
        feed(&state, &ticket, &entered, events, tx).await;
        drop((permit, ticket, entered));
    });
    let sse =
        Sse::new(ReceiverStream::new(rx).map(Ok::<_, Infallible>)).keep_alive(KeepAlive::default());
    // Not reusable, so never drained after the page is left (see above).
    Ok((
        [(header::CONNECTION, HeaderValue::from_static("close"))],
        sse,
    ))
}

fn message(name: &str, data: &impl Serialize) -> Option<SseEvent> {
    match SseEvent::default().event(name).json_data(data) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::error!("cannot encode a live {name} message: {e}");
            None
        }
    }
}

/// Whether the event changes what a snapshot shows enough to send one now.
fn reshapes(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Opened { .. } | EventKind::Closed { .. } | EventKind::ServiceState { .. }
    )
}

/// What the `stream` message tells the page: the id it ends the stream by
/// when it is left ([`super::live_leave`]).
#[derive(Serialize)]
struct StreamId<'a> {
    id: &'a str,
}

async fn feed(
    state: &AppState,
    ticket: &StreamTicket,
    entered: &Entered,
    mut events: broadcast::Receiver<Event>,
    tx: mpsc::Sender<SseEvent>,
) {
    let cancel = state.inner.shutdown.token.clone();
    let send = |msg: Option<SseEvent>| {
        let tx = tx.clone();
        let cancel = cancel.clone();
        let ended = ticket.ended.clone();
        let left = entered.left.clone();
        async move {
            let Some(m) = msg else { return true };
            // `false` when the browser has gone, its session has ended
            // (even while it is not reading), its page was left, or we are
            // shutting down.
            tokio::select! {
                sent = tx.send(m) => sent.is_ok(),
                () = cancel.cancelled() => false,
                () = ended.cancelled() => false,
                () = left.cancelled() => false,
            }
        }
    };
    let id = StreamId { id: &entered.id };
    if !send(message("stream", &id)).await
        || !send(message("snapshot", &state.live_snapshot())).await
    {
        return;
    }
    let mut tick = tokio::time::interval_at(Instant::now() + SNAPSHOT_EVERY, SNAPSHOT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut check =
        tokio::time::interval_at(Instant::now() + SESSION_CHECK_EVERY, SESSION_CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch: Vec<Event> = Vec::new();
    let mut reshaped = false;
    let mut flush_at = Instant::now();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = ticket.ended.cancelled() => return,
            () = entered.left.cancelled() => return,
            () = tx.closed() => return,
            _ = check.tick() => {
                if !state.stream_allowed(ticket) {
                    return;
                }
            }
            _ = tick.tick() => {
                if !send(message("snapshot", &state.live_snapshot())).await {
                    return;
                }
            }
            received = events.recv(), if batch.len() < MAX_BATCH => match received {
                Ok(event) => {
                    if batch.is_empty() {
                        flush_at = Instant::now() + BATCH_WINDOW;
                    }
                    reshaped |= reshapes(&event.kind);
                    batch.push(event);
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    if !send(message("lagged", &skipped)).await {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = tokio::time::sleep_until(flush_at), if !batch.is_empty() => {
                if !send(message("events", &batch)).await {
                    return;
                }
                batch.clear();
                if std::mem::take(&mut reshaped) {
                    if !send(message("snapshot", &state.live_snapshot())).await {
                        return;
                    }
                    tick.reset();
                }
            }
        }
    }
}
