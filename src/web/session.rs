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
//!   `web.max_streams_per_session` per session, and each ends when its
//!   session does (sign-out, expiry, the account removed), within a second.
//!
//! Not here: passwords (that is [`crate::users`]) and TLS (put a proxy in
//! front; the cookie turns `Secure` behind one).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
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
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::error::WebError;
use crate::config::SecureCookie;
use crate::tokens::{TokenInfo, Tokens, TokensError, Verdict};
use crate::users::{Role, UsersError};

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
    /// The session's live-stream slots.
    streams: Arc<Semaphore>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.ended.cancel();
    }
}

/// The live sessions, keyed by the SHA-256 of their token.
pub struct Sessions {
    idle: Duration,
    max_streams: usize,
    table: Mutex<HashMap<[u8; 32], Entry>>,
    /// The API tokens, opened on first use from the accounts' directory
    /// (the data directory).
    tokens: OnceLock<Tokens>,
}

/// A live stream's hold on its session: one of the session's stream slots
/// (given back on drop) and the signal that the session has ended.
pub struct StreamTicket {
    key: [u8; 32],
    user: String,
    /// Fires when the session leaves the table.
    pub ended: CancellationToken,
    _slot: OwnedSemaphorePermit,
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
            max_streams: max_streams.max(1),
            table: Mutex::new(HashMap::new()),
            tokens: OnceLock::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // Entries are replaced whole, so a poisoned table is still consistent.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
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
                streams: Arc::new(Semaphore::new(self.max_streams)),
            },
        );
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
    }

    fn remove(&self, token: &str) {
        self.lock().remove(&token_key(token));
    }

    /// One of the session's stream slots, without counting as a use.
    fn open_stream(&self, token: &str) -> Result<StreamTicket, WebError> {
        let key = token_key(token);
        let table = self.lock();
        let entry = table.get(&key).ok_or(WebError::SignInRequired)?;
        let slot = Arc::clone(&entry.streams)
            .try_acquire_owned()
            .map_err(|_| WebError::TooManyStreams(self.max_streams))?;
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

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether the request carries the session cookie at all (well-formed or
/// not): then it is a browser's, and gets the browser checks.
fn has_session_cookie(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, _)| name == COOKIE)
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
                .record(json!({
                    "event": "token", "action": "use", "service": "web", "peer": ip.to_string(),
                    "token": name, "method": parts.method.as_str(), "path": parts.uri.path(),
                    "ok": false, "reason": refused.to_string(),
                }))
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
            .record(json!({
                "event": "token", "action": "use", "service": "web",
                "peer": peer_ip(&parts.extensions).to_string(), "token": session.token,
                "role": session.role, "method": parts.method.as_str(), "path": parts.uri.path(),
                "ok": allowed.is_ok(),
            }))
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

/// The `Host` header without its port, lower-cased; `None` when absent or
/// malformed.
fn host_name(host: &str) -> Option<String> {
    let host = host.trim().to_ascii_lowercase();
    let name = if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        inside.to_owned()
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_owned(),
            Some(_) => return None,
            None => host,
        }
    };
    (!name.is_empty()).then_some(name)
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

/// Whether `name` (a [`host_name`]) is a loopback name.
fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The routes a machine asks without a session: the HEALTHCHECK, a
/// kubelet's probes, a Prometheus scrape. They answer loopback names even
/// when `web.allowed_hosts` is set, because `switchboard health` asks
/// `127.0.0.1` and a probe or scraper inside the deployment asks by the
/// address it was given. This opens nothing to DNS rebinding: a page whose
/// name was rebound to 127.0.0.1 still sends its own name as `Host`, never
/// a loopback one; and these routes carry no session and change nothing.
pub const PROBE_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

impl AppState {
    /// Whether the dashboard answers to this `Host` header value on `path`.
    fn host_allowed(&self, host: &str, path: &str) -> bool {
        let Some(name) = host_name(host) else {
            return false;
        };
        let allowed = &self.web().allowed_hosts;
        if !allowed.is_empty() {
            let host = host.trim().to_ascii_lowercase();
            return allowed
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&name) || a.eq_ignore_ascii_case(&host))
                || (PROBE_PATHS.contains(&path) && is_loopback_name(&name));
        }
        if !self.web().listen.ip().is_loopback() {
            return true;
        }
        is_loopback_name(&name)
    }
}

/// The middleware in front of every route: a `Host` the dashboard answers
/// to, and for state-changing requests and live streams, an `Origin` (when
/// the browser sends one) that is this same host. Browsers send `Origin` on
/// every cross-site POST/PUT/DELETE and `EventSource`, so a foreign page
/// cannot act here even if a cookie were sent along.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !state.host_allowed(&host, req.uri().path()) {
        return WebError::UnknownHost.into_response();
    }
    let live = req.uri().path() == super::LIVE_PATH;
    // A token request with no cookie is no browser's doing (a page cannot
    // set `Authorization` on a cross-site request without CORS, which is
    // not offered): nothing to check the origin of.
    let scripted = bearer(req.headers()).is_some() && !has_session_cookie(req.headers());
    if (!is_safe(req.method()) || live) && !scripted {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let same = origin.to_str().is_ok_and(|o| {
                let o = o.to_ascii_lowercase();
                let host = host.to_ascii_lowercase();
                o.strip_prefix("http://")
                    .or_else(|| o.strip_prefix("https://"))
                    .is_some_and(|authority| authority == host)
            });
            if !same {
                return WebError::CrossOrigin.into_response();
            }
        } else if req
            .headers()
            .get("sec-fetch-site")
            .is_some_and(|s| s != "same-origin" && s != "none")
        {
            return WebError::CrossOrigin.into_response();
        }
    }
    next.run(req).await
}

#[derive(Deserialize)]
pub struct SignIn {
    username: String,
    password: String,
}

fn session_cookie(state: &AppState, headers: &HeaderMap, token: &str, max_age: u64) -> HeaderValue {
    let secure = match state.web().secure_cookie {
        SecureCookie::Always => true,
        SecureCookie::Never => false,
        SecureCookie::Auto => {
            headers
                .get("x-forwarded-proto")
                .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"))
                || headers
                    .get(header::ORIGIN)
                    .is_some_and(|o| o.as_bytes().starts_with(b"https://"))
        }
    };
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&cookie).expect("the cookie is hex and ASCII attributes")
}

/// `POST /api/v1/session`: signs in; sets the cookie and returns the CSRF
/// token. Failures are rate-limited per address and audited.
///
/// # Errors
/// Wrong credentials, too many failures, hashing busy.
pub async fn sign_in(
    State(state): State<AppState>,
    parts: Parts,
    body: Result<Json<SignIn>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, WebError> {
    let Json(body) = body?;
    let ip = peer_ip(&parts.extensions);
    if let Err(wait) = state.sign_in_failures().check(ip) {
        return Err(WebError::TooManyFailures(wait.as_secs().max(1)));
    }
    if body.username.len() > MAX_CREDENTIAL_LEN || body.password.len() > MAX_CREDENTIAL_LEN {
        return Err(WebError::BadRequest(format!(
            "user name and password are limited to {MAX_CREDENTIAL_LEN} bytes"
        )));
    }
    let verified = state
        .users()
        .verify(&body.username, &body.password)
        .await
        .map_err(|e| match e {
            UsersError::Busy => WebError::Busy(e.to_string()),
            other => WebError::Internal(other.to_string()),
        })?;
    let Some(role) = verified else {
        state.sign_in_failures().charge(ip);
        // Only names of real accounts are written down: a password typed
        // into the name field must not end up in the log.
        let known = state
            .users()
            .role(&body.username)
            .map(|_| body.username.as_str());
        state
            .audit()
            .record(json!({"event": "login", "service": "web", "peer": ip.to_string(), "user": known, "ok": false}))
            .await;
        return Err(WebError::BadCredentials);
    };
    state
        .audit()
        .record(json!({"event": "login", "service": "web", "peer": ip.to_string(), "user": body.username, "role": role, "ok": true}))
        .await;
    let (token, session) = state.sessions().create(&body.username, role)?;
    let cookie = session_cookie(
        &state,
        &parts.headers,
        &token,
        state.web().session_idle.as_secs(),
    );
    let mut response = Json(session).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

/// `GET /api/v1/session`: who is signed in, and the CSRF token.
pub async fn current(Viewer(session): Viewer) -> Json<Session> {
    Json(session)
}

/// `DELETE /api/v1/session`: signs out, on the server too.
pub async fn sign_out(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = cookie_token(&headers) {
        state.sessions().remove(token);
    }
    let mut response = Json(json!({"ok": true})).into_response();
    let cleared = session_cookie(&state, &headers, "", 0);
    response.headers_mut().insert(header::SET_COOKIE, cleared);
    response
}

/// A token to make, as `POST /api/v1/tokens` takes it.
#[derive(Deserialize)]
pub struct NewToken {
    name: String,
    role: Role,
    /// `30d`, `12h`, `90m`; none means it does not expire.
    #[serde(default)]
    expires: Option<String>,
}

/// What `POST /api/v1/tokens` answers: the token, this once.
#[derive(Serialize)]
pub struct CreatedToken {
    name: String,
    role: Role,
    expires_unix: Option<u64>,
    token: String,
}

fn token_error(e: TokensError) -> WebError {
    match e {
        TokensError::BadName(_) | TokensError::BadExpiry(_) => WebError::BadRequest(e.to_string()),
        TokensError::Exists(_) => WebError::Conflict(e.to_string()),
        TokensError::NoSuchToken(name) => WebError::NotFound(format!("token `{name}`")),
        TokensError::Io { .. } | TokensError::Corrupt { .. } | TokensError::Random(_) => {
            WebError::Internal(e.to_string())
        }
    }
}

/// Runs a file change of the token store off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TokensError> + Send + 'static,
) -> Result<T, WebError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WebError::Internal(format!("token store task failed: {e}")))?
        .map_err(token_error)
}

/// `GET /api/v1/tokens` (admin): every token, never the token itself.
pub async fn list_tokens(State(state): State<AppState>, Admin(_): Admin) -> Json<Vec<TokenInfo>> {
    Json(state.tokens().list())
}

/// `POST /api/v1/tokens` (admin): makes a token and answers it, once.
///
/// # Errors
/// A bad name or expiry (400), a name in use (409).
pub async fn create_token(
    State(state): State<AppState>,
    Admin(session): Admin,
    body: Result<Json<NewToken>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<CreatedToken>, WebError> {
    let Json(body) = body?;
    let expires = body
        .expires
        .as_deref()
        .filter(|e| !e.trim().is_empty())
        .map(crate::tokens::parse_expiry)
        .transpose()
        .map_err(token_error)?;
    let tokens = state.tokens().clone();
    let (name, role) = (body.name.clone(), body.role);
    let (token, expires_unix) = blocking(move || tokens.create(&name, role, expires)).await?;
    state
        .audit()
        .record(json!({
            "event": "token", "action": "create", "service": "web", "user": session.user,
            "token": body.name, "role": role, "expires_unix": expires_unix,
        }))
        .await;
    Ok(Json(CreatedToken {
        name: body.name,
        role,
        expires_unix,
        token,
    }))
}

/// `DELETE /api/v1/tokens/{name}` (admin): revokes a token at once.
///
/// # Errors
/// No such token (404).
pub async fn revoke_token(
    State(state): State<AppState>,
    Admin(session): Admin,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<serde_json::Value>, WebError> {
    let tokens = state.tokens().clone();
    let target = name.clone();
    blocking(move || tokens.revoke(&target)).await?;
    state
        .audit()
        .record(json!({
            "event": "token", "action": "revoke", "service": "web", "user": session.user,
            "token": name,
        }))
        .await;
    Ok(Json(json!({"ok": true, "revoked": name})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("localhost:8080").as_deref(), Some("localhost"));
        assert_eq!(host_name("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_name("[::1]:80").as_deref(), Some("::1"));
        assert_eq!(host_name("Example.COM:1").as_deref(), Some("example.com"));
        assert_eq!(host_name("[::1]x"), None);
        assert_eq!(host_name("a:b"), None);
        assert_eq!(host_name(""), None);
    }

    #[test]
    fn sessions_expire_and_are_bounded() {
        let s = Sessions::new(Duration::from_millis(0), 4);
        let (token, _) = s.create("admin", Role::Admin).unwrap();
        assert!(s.touch(&token).is_none(), "idle 0: expired at once");

        let s = Sessions::new(Duration::from_secs(60), 4);
        let (first, _) = s.create("a", Role::Viewer).unwrap();
        let ticket = s.open_stream(&first).unwrap();
        for _ in 0..MAX_SESSIONS {
            s.create("b", Role::Viewer).unwrap();
        }
        assert_eq!(s.lock().len(), MAX_SESSIONS);
        assert!(s.touch(&first).is_none(), "the oldest made room");
        assert!(ticket.ended.is_cancelled(), "its streams were told");
    }

    #[test]
    fn a_session_has_a_few_stream_slots_and_ending_it_ends_them() {
        let s = Sessions::new(Duration::from_secs(60), 2);
        let (token, _) = s.create("a", Role::Viewer).unwrap();
        let one = s.open_stream(&token).unwrap();
        let two = s.open_stream(&token).unwrap();
        assert!(matches!(
            s.open_stream(&token),
            Err(WebError::TooManyStreams(2))
        ));
        drop(one);
        let three = s.open_stream(&token).expect("a slot came back");
        assert!(s.still_live(&two.key));
        s.remove(&token);
        assert!(two.ended.is_cancelled() && three.ended.is_cancelled());
        assert!(!s.still_live(&two.key));
        assert!(matches!(
            s.open_stream(&token),
            Err(WebError::SignInRequired)
        ));
    }

    #[test]
    fn bearer_tokens_are_read_only_from_the_bearer_scheme() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sbt_x"),
        );
        assert_eq!(bearer(&h), Some("sbt_x"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  sbt_y "),
        );
        assert_eq!(bearer(&h), Some("sbt_y"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer"));
        assert_eq!(
            bearer(&h),
            Some(""),
            "an empty bearer is a bad token, not none"
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YTpi"),
        );
        assert_eq!(bearer(&h), None);
        assert!(!has_session_cookie(&h));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("x=1; switchboard_session=zz"),
        );
        assert!(
            has_session_cookie(&h),
            "any value: it is a browser's request"
        );
    }

    #[test]
    fn the_cookie_is_found_among_others_and_checked_for_shape() {
        let mut h = HeaderMap::new();
        let token = "ab".repeat(32);
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; {COOKIE}={token}; y=2")).unwrap(),
        );
        assert_eq!(cookie_token(&h), Some(token.as_str()));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("switchboard_session=../x"),
        );
        assert_eq!(cookie_token(&h), None);
    }
}
