//! Who is asking, and may they: sessions, the CSRF token, the Host and
//! Origin checks, and one extractor per role ([`Viewer`], [`Operator`],
//! [`Admin`]).
//!
//! - A session is a random 256-bit token in an `HttpOnly; SameSite=Strict`
//!   cookie. The server keeps only its SHA-256, so the table (in memory,
//!   bounded) holds nothing that could be replayed. Sessions end on sign-out,
//!   after `web.session_idle` unused, or when the account goes away.
//! - Every state-changing request carries the session's CSRF token in
//!   `X-CSRF-Token` (compared in constant time). [`guard`] also refuses a
//!   state-changing request or a live stream whose `Origin` is not this
//!   very host, and any request whose `Host` the dashboard does not answer
//!   to (against DNS rebinding).
//! - The role is read from the accounts on every request, so a demotion or a
//!   removed account takes effect at once.
//! - A script sends an API token instead (`Authorization: Bearer sbt_...`,
//!   see [`crate::tokens`]). Such a request carries no cookie, so nothing
//!   a foreign page can make a browser send: the CSRF and Origin checks are
//!   skipped for it, and only for it (a request with both a token and the
//!   session cookie is refused). A refused token counts as a failed sign-in
//!   for its address; every state-changing use is audited under the
//!   token's name (never the token).
//! - A live stream holds a [`StreamTicket`] from its session: at most
//!   `web.max_streams_per_session` per account (however many sessions it
//!   signs in), and each ends when its
//!   session does (sign-out, expiry, the account removed), within a second.
//!
//! Not here: passwords (that is [`crate::users`]) and TLS (put a proxy in
//! front; the cookie turns `Secure` behind one).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, Path as UrlPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::error::WebError;
use crate::config::SecureCookie;
use crate::tokens::{TokenInfo, Tokens, TokensError, Verdict};
use crate::users::{Role, UsersError};

mod host;
pub use host::{PROBE_PATHS, guard};

mod persist;
pub use persist::FILE as SESSIONS_FILE;

mod api_tokens;
pub use api_tokens::{CreatedToken, NewToken, create_token, list_tokens, revoke_token};

mod sign_in;
mod streams;
pub use sign_in::{SignIn, current, sign_in, sign_out};

/// The session cookie's name.
pub const COOKIE: &str = "switchboard_session";
/// The header every state-changing request carries.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Sessions kept at once; beyond it the least recently used goes.
const MAX_SESSIONS: usize = 10_000;
/// Longest accepted user name and password in a sign-in (the accounts'
/// own limits are lower; this only bounds the work before checking them).
const MAX_CREDENTIAL_LEN: usize = 1024;

/// A signed-in person, or a script with an API token.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    /// The account, or `token:NAME` for an API token (account names have
    /// no `:`, so the two never mix in the audit log).
    pub user: String,
    pub role: Role,
    /// Empty for an API token: its requests need none.
    pub csrf_token: String,
    /// The API token's name, when the request came with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl Session {
    /// # Errors
    /// [`WebError::Forbidden`] when this session's role is below `need`.
    pub fn require(&self, need: Role) -> Result<(), WebError> {
        if self.role >= need {
            Ok(())
        } else {
            Err(WebError::Forbidden {
                have: self.role,
                need,
            })
        }
    }
}

struct Entry {
    session: Session,
    last_seen: Instant,
    /// Cancelled when the entry leaves the table, however it leaves
    /// (sign-out, expiry, the account gone, eviction): the session's live
    /// streams wait on it.
    ended: CancellationToken,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.ended.cancel();
    }
}

/// The live sessions, keyed by the SHA-256 of their token.
pub struct Sessions {
    idle: Duration,
    /// Live-stream slots, per account.
    streams: streams::AccountStreams,
    table: Mutex<HashMap<[u8; 32], Entry>>,
    /// The API tokens, opened on first use from the accounts' directory
    /// (the data directory).
    tokens: OnceLock<Tokens>,
    /// Where the table is kept between runs (see [`persist`]).
    keeper: OnceLock<std::sync::Arc<persist::Keeper>>,
}

/// A live stream's hold on its session: one of its account's stream slots
/// (given back on drop) and the signal that the session has ended.
pub struct StreamTicket {
    key: [u8; 32],
    user: String,
    /// Fires when the session leaves the table.
    pub ended: CancellationToken,
    _slot: streams::AccountSlot,
}

fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn random_hex() -> Result<String, WebError> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| WebError::Internal(format!("no randomness: {e}")))?;
    Ok(crate::wire::hex(&raw))
}

impl Sessions {
    pub fn new(idle: Duration, max_streams: usize) -> Self {
        Sessions {
            idle,
            streams: streams::AccountStreams::new(max_streams),
            table: Mutex::new(HashMap::new()),
            tokens: OnceLock::new(),
            keeper: OnceLock::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // Entries are replaced whole, so a poisoned table is still consistent.
        crate::sync::lock(&self.table)
    }

    /// Starts a session; returns its token (for the cookie only).
    fn create(&self, user: &str, role: Role) -> Result<(String, Session), WebError> {
        let token = random_hex()?;
        let session = Session {
            user: user.to_owned(),
            role,
            csrf_token: random_hex()?,
            token: None,
        };
        let now = Instant::now();
        let mut table = self.lock();
        if table.len() >= MAX_SESSIONS {
            table.retain(|_, e| now.duration_since(e.last_seen) < self.idle);
            if table.len() >= MAX_SESSIONS
                && let Some(oldest) = table
                    .iter()
                    .min_by_key(|(_, e)| e.last_seen)
                    .map(|(k, _)| *k)
            {
                table.remove(&oldest);
            }
        }
        table.insert(
            token_key(&token),
            Entry {
                session: session.clone(),
                last_seen: now,
                ended: CancellationToken::new(),
            },
        );
        drop(table);
        self.kept_changed();
        Ok((token, session))
    }

    /// The session of `token`, if it is live; using it keeps it alive.
    fn touch(&self, token: &str) -> Option<Session> {
        let key = token_key(token);
        let now = Instant::now();
        let mut table = self.lock();
        let entry = table.get_mut(&key)?;
        if now.duration_since(entry.last_seen) >= self.idle {
            table.remove(&key);
            return None;
        }
        entry.last_seen = now;
        Some(entry.session.clone())
    }

    fn set_role(&self, token: &str, role: Role) {
        if let Some(e) = self.lock().get_mut(&token_key(token)) {
            e.session.role = role;
        }
        self.kept_changed();
    }

    fn remove(&self, token: &str) {
        self.lock().remove(&token_key(token));
        self.kept_changed();
    }

    /// Asks for the kept copy to be written soon (sign-in, sign-out).
    fn kept_changed(&self) {
        if let Some(k) = self.keeper.get() {
            k.changed();
        }
    }

    /// One of the session's account's stream slots, without counting as
    /// a use.
    fn open_stream(&self, token: &str) -> Result<StreamTicket, WebError> {
        let key = token_key(token);
        let table = self.lock();
        let entry = table.get(&key).ok_or(WebError::SignInRequired)?;
        let slot = self.streams.acquire(&entry.session.user)?;
        Ok(StreamTicket {
            key,
            user: entry.session.user.clone(),
            ended: entry.ended.clone(),
            _slot: slot,
        })
    }

    /// Whether the session behind `key` is still live. An expired one is
    /// removed (which ends its streams). A stream does not keep its session
    /// alive: a tab left open is not someone using the dashboard.
    fn still_live(&self, key: &[u8; 32]) -> bool {
        let now = Instant::now();
        let mut table = self.lock();
        match table.get(key) {
            None => false,
            Some(e) if now.duration_since(e.last_seen) >= self.idle => {
                table.remove(key);
                false
            }
            Some(_) => true,
        }
    }

    /// Sessions currently live (for `/metrics`).
    pub fn count(&self) -> usize {
        let now = Instant::now();
        self.lock()
            .values()
            .filter(|e| now.duration_since(e.last_seen) < self.idle)
            .count()
    }
}

/// Every `name=value` pair of the request's `Cookie` headers.
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    cookies(headers)
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether the request carries the session cookie at all (well-formed or
/// not): then it is a browser's, and gets the browser checks.
fn has_session_cookie(headers: &HeaderMap) -> bool {
    cookies(headers).any(|(name, _)| name == COOKIE)
}

/// The credential of an `Authorization: Bearer ...` header, if the request
/// has one (another scheme, say a proxy's `Basic`, is not ours to read).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credential.trim())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The session of a request: a live cookie, an account that still exists
/// (with its current role) and, on a state-changing request, the CSRF
/// token.
fn session_of(parts: &Parts, state: &AppState) -> Result<Session, WebError> {
    let token = cookie_token(&parts.headers).ok_or(WebError::SignInRequired)?;
    let mut session = state
        .sessions()
        .touch(token)
        .ok_or(WebError::SignInRequired)?;
    let Some(role) = state.users().role(&session.user) else {
        state.sessions().remove(token);
        return Err(WebError::SignInRequired);
    };
    if role != session.role {
        state.sessions().set_role(token, role);
        session.role = role;
    }
    if !is_safe(&parts.method) {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if !constant_time_eq(sent, session.csrf_token.as_bytes()) {
            return Err(WebError::Csrf);
        }
    }
    Ok(session)
}

/// The identity behind an API token, if it is good. A refused token is
/// charged to its address as a failed sign-in would be, and audited (by
/// name when it has one, and never its text).
async fn token_session(parts: &Parts, state: &AppState, token: &str) -> Result<Session, WebError> {
    let ip = peer_ip(&parts.extensions);
    if let Err(wait) = state.sign_in_failures().check(ip) {
        return Err(WebError::TooManyFailures(wait.as_secs().max(1)));
    }
    let tokens = state.tokens();
    let (verdict, flush_due) = tokens.check(token);
    let (name, role) = match verdict {
        Verdict::Valid { name, role } => (name, role),
        refused => {
            state.sign_in_failures().charge(ip);
            let name = match &refused {
                Verdict::Expired { name } => Some(name.as_str()),
                _ => None,
            };
            state
                .audit()
                .record(crate::audit::AuditEvent::Token(
                    crate::audit::TokenEvent::Use {
                        service: "web".into(),
                        peer: ip.to_string(),
                        token: name.map(str::to_owned),
                        role: None,
                        method: parts.method.as_str().to_owned(),
                        path: parts.uri.path().to_owned(),
                        ok: false,
                        reason: Some(refused.to_string()),
                    },
                ))
                .await;
            return Err(WebError::BadToken(refused.to_string()));
        }
    };
    if flush_due {
        let tokens = tokens.clone();
        // Off the async threads (a write, an fsync and a rename), but
        // awaited: at most once a minute, and then `token list` run after
        // this reply sees this use.
        let flushed = tokio::task::spawn_blocking(move || tokens.flush_used()).await;
        if let Ok(Err(e)) = flushed {
            tracing::warn!("cannot record when API tokens were last used: {e}");
        }
    }
    Ok(Session {
        user: format!("token:{name}"),
        role,
        csrf_token: String::new(),
        token: Some(name),
    })
}

/// Who is asking, and may they do what needs `need`: an API token when
/// the request has one (each state-changing use audited, allowed or not),
/// else the session cookie.
async fn authorize(parts: &Parts, state: &AppState, need: Role) -> Result<Session, WebError> {
    let session = authorize_inner(parts, state, need).await;
    if let (Ok(session), Some(seen)) = (&session, parts.extensions.get::<Requester>()) {
        let _ = seen.0.set(session.user.clone());
    }
    session
}

/// Who a request turned out to be (a user name, or `token:NAME`), for the
/// access log: set by the role extractors, read after the response, so the
/// log names token users too without checking a credential twice.
#[derive(Clone, Default)]
pub struct Requester(pub std::sync::Arc<std::sync::OnceLock<String>>);

async fn authorize_inner(parts: &Parts, state: &AppState, need: Role) -> Result<Session, WebError> {
    let Some(token) = bearer(&parts.headers) else {
        let session = session_of(parts, state)?;
        session.require(need)?;
        return Ok(session);
    };
    if has_session_cookie(&parts.headers) {
        return Err(WebError::BadRequest(
            "send either an Authorization: Bearer token or the session cookie, not both".into(),
        ));
    }
    let session = token_session(parts, state, token).await?;
    let allowed = session.require(need);
    if !is_safe(&parts.method) {
        state
            .audit()
            .record(crate::audit::AuditEvent::Token(
                crate::audit::TokenEvent::Use {
                    service: "web".into(),
                    peer: peer_ip(&parts.extensions).to_string(),
                    token: session.token.clone(),
                    role: Some(session.role),
                    method: parts.method.as_str().to_owned(),
                    path: parts.uri.path().to_owned(),
                    ok: allowed.is_ok(),
                    reason: None,
                },
            ))
            .await;
    }
    allowed?;
    Ok(session)
}

impl AppState {
    /// The API token store of this dashboard's data directory.
    pub(super) fn tokens(&self) -> &Tokens {
        self.sessions().tokens.get_or_init(|| {
            let data_dir = self.users().path().parent().unwrap_or(Path::new("."));
            Tokens::lazy(data_dir)
        })
    }

    /// A stream slot of the request's session (already checked by the
    /// [`Viewer`] extractor).
    ///
    /// # Errors
    /// No session, or [`WebError::TooManyStreams`].
    pub(super) fn open_stream(&self, headers: &HeaderMap) -> Result<StreamTicket, WebError> {
        if bearer(headers).is_some() {
            // A stream's slots and its end belong to a browser session.
            return Err(WebError::BadRequest(
                "the live stream is for dashboard sessions; with an API token, poll /api/v1/events"
                    .into(),
            ));
        }
        let token = cookie_token(headers).ok_or(WebError::SignInRequired)?;
        self.sessions().open_stream(token)
    }

    /// Whether a stream may go on: its session live, its account still
    /// there with at least the viewer role. A session whose account went
    /// away is removed, as [`session_of`] would on the next request.
    pub(super) fn stream_allowed(&self, ticket: &StreamTicket) -> bool {
        if !self.sessions().still_live(&ticket.key) {
            return false;
        }
        match self.users().role(&ticket.user) {
            Some(role) if role >= Role::Viewer => true,
            _ => {
                self.sessions().lock().remove(&ticket.key);
                false
            }
        }
    }
}

macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, $role:expr) => {
        $(#[$doc])*
        pub struct $name(pub Session);

        impl FromRequestParts<AppState> for $name {
            type Rejection = WebError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Self::Rejection> {
                Ok($name(authorize(parts, state, $role).await?))
            }
        }
    };
}

role_extractor!(
    /// Any signed-in person: sees everything.
    Viewer,
    Role::Viewer
);
role_extractor!(
    /// Sends test messages and uploads files.
    Operator,
    Role::Operator
);
role_extractor!(
    /// Starts and stops services, closes connections, runs commands.
    Admin,
    Role::Admin
);

/// The peer's IP address: from the connection when served for real, the
/// unspecified address when a test calls the router directly.
fn peer_ip(parts_or_req: &axum::http::Extensions) -> IpAddr {
    parts_or_req
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(a)| a.ip())
}

impl AppState {
    /// Who the request's session cookie belongs to, for the access log:
    /// a look that neither refreshes the session nor checks its CSRF token.
    pub(super) fn signed_in_user(&self, headers: &HeaderMap) -> Option<String> {
        let key = token_key(cookie_token(headers)?);
        let table = self.sessions().lock();
        let entry = table.get(&key)?;
        (entry.last_seen.elapsed() < self.sessions().idle).then(|| entry.session.user.clone())
    }
}

#[cfg(test)]
mod tests;

/// Who holds a WebSocket, for its limits and its end: a session (its key,
/// and the signal that fires when it leaves the table) or an API token.
pub struct Holder {
    /// What its limits are counted under: the session's key, or the
    /// token's digest.
    pub key: [u8; 32],
    /// Fires when the session ends; a token's holder is checked instead.
    pub ended: CancellationToken,
    who: Who,
}

enum Who {
    Session { user: String },
    Token(String),
}

impl Holder {
    /// What per-person limits count under: the account's name for a
    /// session (however many sessions it signs in), the token for a token.
    pub fn owner_key(&self) -> [u8; 32] {
        use sha2::Digest;
        match &self.who {
            Who::Session { user } => sha2::Sha256::new()
                .chain_update(b"user\0")
                .chain_update(user.as_bytes())
                .finalize()
                .into(),
            Who::Token(_) => self.key,
        }
    }
}

impl AppState {
    /// The holder of a request already let through by a role extractor.
    ///
    /// # Errors
    /// No session (it ended in between).
    pub(super) fn holder(&self, headers: &HeaderMap) -> Result<Holder, WebError> {
        if let Some(token) = bearer(headers) {
            return Ok(Holder {
                key: token_key(token),
                ended: CancellationToken::new(),
                who: Who::Token(token.to_owned()),
            });
        }
        let token = cookie_token(headers).ok_or(WebError::SignInRequired)?;
        let key = token_key(token);
        let table = self.sessions().lock();
        let entry = table.get(&key).ok_or(WebError::SignInRequired)?;
        Ok(Holder {
            key,
            ended: entry.ended.clone(),
            who: Who::Session {
                user: entry.session.user.clone(),
            },
        })
    }

    /// Whether the holder may go on with `need`: a session still live
    /// whose account still has the role (as [`Self::stream_allowed`]), or
    /// a token still valid with it.
    pub(super) fn holder_allowed(&self, holder: &Holder, need: Role) -> bool {
        match &holder.who {
            Who::Session { user } => {
                if !self.sessions().still_live(&holder.key) {
                    return false;
                }
                match self.users().role(user) {
                    Some(role) => role >= need,
                    None => {
                        self.sessions().lock().remove(&holder.key);
                        false
                    }
                }
            }
            Who::Token(token) => {
                matches!(self.tokens().check(token).0, Verdict::Valid { role, .. } if role >= need)
            }
        }
    }
}
