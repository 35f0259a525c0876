//! `GET /api/v1/services/{name}/ws`: the persistent B/S path. A WebSocket
//! to an `echo` or `udp-echo` instance, where each message in is sent
//! through a real socket to the service, as [`super::relay::send`] does,
//! and its reply comes back as one message out (text for text, binary for
//! binary).
//!
//! - One upstream per WebSocket, opened before the upgrade (so a service
//!   that is down is a plain HTTP error): a TCP connection kept for the
//!   socket's life for `echo`, a connected UDP socket for `udp-echo`. The
//!   lesson is "one framed connection", against one HTTP request per
//!   message.
//! - Who may: an operator's session (or an operator token), checked with
//!   the rest of the request; the `Origin` is checked before anything else,
//!   by the host guard ([`super::session::guard`]).
//! - Bounded: messages of at most [`MAX_WS_MESSAGE`] bytes (a bigger one
//!   closes the socket with 1009); [`WS_MESSAGES_PER_MINUTE`] messages per
//!   session, pings included (a token bucket from [`crate::ratelimit`],
//!   shared by the session's sockets; past it the socket closes with
//!   1008); at most [`MAX_WRITE_BUFFER`] waiting to be written to a
//!   browser (the pongs of a client that pings and never reads); no
//!   message for [`IDLE`] closes the socket; at most
//!   `web.max_streams_per_session` sockets per account (however many
//!   sessions it holds) and [`MAX_WEBSOCKETS`] in all (429 / 503 before the
//!   upgrade).
//! - Ended (close 1008) when the session ends: at once on sign-out,
//!   within [`SESSION_CHECK_EVERY`] on expiry, a demotion below operator,
//!   a removed account or a revoked token; with 1001 at shutdown.
//!
//! Not here: `time` (its format is a query, not a message to echo) and any
//! other kind, refused before the upgrade.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AppState;
use super::error::WebError;
use super::live::SESSION_CHECK_EVERY;
use super::relay::MAX_MESSAGE;
use super::session::{Holder, Operator};
use crate::client::{ClientError, EchoClient, UdpEchoClient};
use crate::kind::ServiceKind;
use crate::ratelimit::FailureLimit;
use crate::sync::lock;
use crate::users::Role;

/// Largest message relayed: the same as a test message.
pub const MAX_WS_MESSAGE: usize = MAX_MESSAGE;
/// What the WebSocket layer itself reads before it gives up on a message
/// (then the socket is closed with 1009 too): room above
/// [`MAX_WS_MESSAGE`] so an oversized message is usually read whole and
/// refused with a reason.
const WIRE_LIMIT: usize = 64 * 1024;
/// Messages per session per minute, across its sockets: enough for the
/// Send page's runs of a few hundred, not for a flood.
pub const WS_MESSAGES_PER_MINUTE: u32 = 600;
/// WebSockets open at once, across all sessions.
pub const MAX_WEBSOCKETS: usize = 64;
/// How long the relay waits to connect, for each reply, and for the
/// browser to take each message.
const TIMEOUT: Duration = Duration::from_secs(10);
/// A socket no message has come on for this long is closed: sockets are
/// few (see [`MAX_WEBSOCKETS`]), and an idle one should not hold its slot.
const IDLE: Duration = Duration::from_secs(120);
/// Most bytes waiting to be written to one browser. The library queues a
/// pong for every ping it reads; a client that pings and never reads
/// would otherwise grow this without bound. Past it the socket is dropped.
const MAX_WRITE_BUFFER: usize = 256 * 1024;
/// Longest close reason a close frame holds.
const MAX_REASON: usize = 123;

/// The relay's counts: sockets per session and in all, messages per session.
pub struct WsLimits {
    per_holder: usize,
    open: Mutex<HashMap<[u8; 32], usize>>,
    all: Arc<Semaphore>,
    messages: FailureLimit<[u8; 32]>,
}

impl WsLimits {
    pub fn new(per_holder: usize) -> Self {
        WsLimits {
            per_holder: per_holder.max(1),
            open: Mutex::new(HashMap::new()),
            all: Arc::new(Semaphore::new(MAX_WEBSOCKETS)),
            messages: FailureLimit::per_minute(WS_MESSAGES_PER_MINUTE),
        }
    }
}

/// One open WebSocket's place in the counts, given back on drop.
struct Slot {
    state: AppState,
    key: [u8; 32],
    _all: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = lock(&self.state.inner.ws.open);
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl AppState {
    fn ws_slot(&self, key: [u8; 32]) -> Result<Slot, WebError> {
        let limits = &self.inner.ws;
        let all = super::error::slot(&limits.all, || {
            "too many WebSockets are open; close some dashboard tabs".into()
        })?;
        let mut open = lock(&limits.open);
        let n = open.entry(key).or_insert(0);
        if *n >= limits.per_holder {
            return Err(WebError::TooManyStreams(limits.per_holder));
        }
        *n += 1;
        Ok(Slot {
            state: self.clone(),
            key,
            _all: all,
        })
    }
}

/// The service side of one WebSocket.
enum Upstream {
    Tcp(EchoClient),
    Udp(UdpEchoClient),
}

impl Upstream {
    async fn round_trip(&mut self, data: &[u8]) -> Result<Vec<u8>, ClientError> {
        match self {
            Upstream::Tcp(c) => c.round_trip(data).await,
            Upstream::Udp(c) => c.round_trip(data).await,
        }
    }
}

/// The handler: checks, the upstream, then the upgrade.
///
/// # Errors
/// Not signed in (401), not an operator (403), not a WebSocket handshake
/// (400), an unknown instance (404) or one of another kind (400), the
/// session's sockets all open (429), the service down or too many sockets
/// in all (503), the service unreachable (502/504).
pub async fn relay(
    State(state): State<AppState>,
    _: Operator,
    Path(name): Path<String>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, WebError> {
    let id = state
        .supervisor()
        .id(&name)
        .ok_or_else(|| WebError::NotFound(format!("service `{name}`")))?;
    let kind = id.kind();
    if !matches!(kind, ServiceKind::Echo | ServiceKind::UdpEcho) {
        return Err(WebError::BadRequest(format!(
            "the WebSocket relay goes to echo or udp-echo instances, not {kind}"
        )));
    }
    let upgrade =
        upgrade.map_err(|e| WebError::BadRequest(format!("not a WebSocket handshake: {e}")))?;
    let holder = state.holder(&headers)?;
    // Counted per account, not per session: signing in again does not
    // buy more sockets.
    let slot = state.ws_slot(holder.owner_key())?;
    let target = state.target(&id)?;
    let upstream = if kind == ServiceKind::Echo {
        let tls = state.tls(&id)?;
        Upstream::Tcp(
            crate::service::internal::scope(EchoClient::connect_tls(
                &target,
                TIMEOUT,
                tls.as_ref(),
            ))
            .await?,
        )
    } else {
        Upstream::Udp(UdpEchoClient::connect(&target, TIMEOUT).await?)
    };
    // Shutdown waits for the socket as for any request.
    let tracked = state.inner.shutdown.tasks.token();
    Ok(upgrade
        .max_message_size(WIRE_LIMIT)
        .max_frame_size(WIRE_LIMIT)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| async move {
            serve(&state, socket, upstream, &holder).await;
            drop((slot, tracked));
        }))
}

/// Relays until the browser closes, the session ends, a limit is hit or
/// the server shuts down; then says why in the close frame.
async fn serve(state: &AppState, mut socket: WebSocket, mut upstream: Upstream, holder: &Holder) {
    let cancel = state.inner.shutdown.token.clone();
    let ended = holder.ended.clone();
    let start = tokio::time::Instant::now() + SESSION_CHECK_EVERY;
    let mut check = tokio::time::interval_at(start, SESSION_CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let signed_out = || {
        (
            close_code::POLICY,
            "the session ended; sign in again".to_owned(),
        )
    };
    let mut last_message = tokio::time::Instant::now();
    let (code, reason) = loop {
        let received = tokio::select! {
            () = cancel.cancelled() => break (close_code::AWAY, "the server is shutting down".to_owned()),
            () = tokio::time::sleep_until(last_message + IDLE) => {
                break (close_code::NORMAL, format!("no message for {} s", IDLE.as_secs()));
            }
            () = ended.cancelled() => break signed_out(),
            _ = check.tick() => {
                if !state.holder_allowed(holder, Role::Operator) {
                    break signed_out();
                }
                continue;
            }
            received = socket.recv() => received,
        };
        let (data, text) = match received {
            // The browser went away or closed: the library answers a close.
            None | Some(Ok(Message::Close(_))) => return,
            Some(Ok(Message::Text(t))) => (bytes::Bytes::from(t), true),
            Some(Ok(Message::Binary(b))) => (b, false),
            // Pings are answered by the library, and count as messages:
            // a ping flood meets the same limit as a message flood.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                if let Some(over) = state.over_message_limit(holder) {
                    break over;
                }
                continue;
            }
            Some(Err(e)) => {
                // Over the wire limit, or not WebSocket at all.
                let e = e.to_string();
                if e.contains("Space limit") || e.contains("too long") {
                    break too_big();
                }
                tracing::debug!("WebSocket relay read failed: {e}");
                return;
            }
        };
        if data.len() > MAX_WS_MESSAGE {
            break too_big();
        }
        if let Some(over) = state.over_message_limit(holder) {
            break over;
        }
        last_message = tokio::time::Instant::now();
        let reply = match upstream.round_trip(&data).await {
            Ok(r) => r,
            Err(e) => break (close_code::ERROR, e.to_string()),
        };
        let out = if text {
            Message::Text(String::from_utf8_lossy(&reply).into_owned().into())
        } else {
            Message::Binary(reply.into())
        };
        // A browser that stops reading is not waited on for ever.
        match tokio::time::timeout(TIMEOUT, socket.send(out)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    };
    let frame = CloseFrame {
        code,
        reason: shorten(reason).into(),
    };
    let _ = tokio::time::timeout(TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
}

impl AppState {
    /// Charges one message to the holder's session; past the limit, the
    /// close code and reason to end the socket with.
    fn over_message_limit(&self, holder: &Holder) -> Option<(u16, String)> {
        let limits = &self.inner.ws.messages;
        if let Err(wait) = limits.check(holder.key) {
            return Some((
                close_code::POLICY,
                format!(
                    "more than {WS_MESSAGES_PER_MINUTE} messages a minute; try again in {} s",
                    wait.as_secs().max(1)
                ),
            ));
        }
        limits.charge(holder.key);
        None
    }
}

fn too_big() -> (u16, String) {
    (
        close_code::SIZE,
        format!("a message is at most {MAX_WS_MESSAGE} bytes"),
    )
}

/// `reason` cut (at a character boundary) to what a close frame holds.
fn shorten(mut reason: String) -> String {
    if reason.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}
