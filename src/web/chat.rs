//! The dashboard's side of the chat kinds: the Chat page, where the
//! signed-in operator plays the tutorials' server's person, and its API.
//!
//! - `GET /api/v1/services/{name}/chat[?after=V]` (viewer): the instance's
//!   threads; with `after`, waits (up to [`LONG_POLL`]) until something
//!   changed past version `V`, which makes it live for a poller.
//! - `POST /api/v1/services/{name}/chat/{peer}` `{"text": "..."}`
//!   (operator, CSRF for sessions): the reply to the peer waiting there;
//!   audited (who, which instance and peer, how long, never the text).
//!
//! What this does not do: keep history past the hub's bounds, or send a
//! line to a peer that is not waiting (the tutorials' chats take turns).

use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiQuery, PageError, WebError};
use super::pages::Chrome;
use super::session::{Operator, Viewer};
use crate::kind::ServiceKind;
use crate::service::chat_hub::ChatError;

/// The longest a `GET …/chat?after=V` waits for a change.
pub const LONG_POLL: Duration = Duration::from_secs(25);

fn chat_instance(state: &AppState, name: &str) -> Result<crate::kind::ServiceId, WebError> {
    let id = state
        .supervisor()
        .id(name)
        .ok_or_else(|| WebError::NotFound(format!("service `{name}`")))?;
    match id.kind() {
        ServiceKind::Chat | ServiceKind::UdpChat => Ok(id),
        other => Err(WebError::BadRequest(format!(
            "`{name}` is a {other} instance; only chat and udp-chat instances have conversations"
        ))),
    }
}

#[derive(Debug, Deserialize)]
pub struct Since {
    after: Option<u64>,
}

/// `GET /api/v1/services/{name}/chat`.
///
/// # Errors
/// Not signed in, no such chat instance.
pub async fn threads(
    State(state): State<AppState>,
    _: Viewer,
    Path(name): Path<String>,
    ApiQuery(since): ApiQuery<Since>,
) -> Result<Json<Value>, WebError> {
    let id = chat_instance(&state, &name)?;
    let hub = state.supervisor().chats();
    if let Some(after) = since.after {
        hub.changed(after, LONG_POLL).await;
    }
    let version = hub.version();
    Ok(Json(json!({
        "service": id.name(),
        "kind": id.kind(),
        "version": version,
        "threads": hub.threads(id.name()),
    })))
}

#[derive(Debug, Deserialize)]
pub struct ReplyRequest {
    text: String,
}

/// `POST /api/v1/services/{name}/chat/{peer}`.
///
/// # Errors
/// Not an operator, no such chat instance or waiting peer, a bad text.
pub async fn reply(
    State(state): State<AppState>,
    Operator(session): Operator,
    Path((name, peer)): Path<(String, String)>,
    body: Result<Json<ReplyRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, WebError> {
    let id = chat_instance(&state, &name)?;
    let Json(req) = body?;
    let outcome = state
        .supervisor()
        .chats()
        .reply(id.name(), &peer, &req.text);
    state
        .audit()
        .record(crate::audit::AuditEvent::ChatReply {
            user: session.user.clone(),
            service: id.name().to_owned(),
            peer: peer.clone(),
            bytes: req.text.len(),
            ok: outcome.is_ok(),
        })
        .await;
    match outcome {
        Ok(()) => Ok(Json(json!({"sent": true, "peer": peer}))),
        Err(e @ (ChatError::NoThread(_) | ChatError::NotWaiting(_))) => {
            Err(WebError::Conflict(e.to_string()))
        }
        Err(e) => Err(WebError::BadRequest(e.to_string())),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "chat.html")]
pub struct ChatPage {
    chrome: Chrome,
    /// The chat and udp-chat instances: (name, kind).
    instances: Vec<(String, &'static str)>,
    can_reply: bool,
}

/// `GET /chat`: the conversations of every chat instance.
///
/// # Errors
/// Not signed in: a redirect to the sign-in page.
pub async fn page(
    State(state): State<AppState>,
    viewer: Result<Viewer, WebError>,
) -> Result<ChatPage, PageError> {
    let Viewer(session) = viewer?;
    let instances = state
        .supervisor()
        .ids()
        .into_iter()
        .filter(|id| matches!(id.kind(), ServiceKind::Chat | ServiceKind::UdpChat))
        .map(|id| (id.name().to_owned(), id.kind().name()))
        .collect();
    let can_reply = session.role >= crate::users::Role::Operator;
    Ok(ChatPage {
        chrome: Chrome::new(session, "chat"),
        instances,
        can_reply,
    })
}
