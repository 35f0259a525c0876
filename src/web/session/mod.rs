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
pub(crate) use host::{entry_allows, is_loopback_name, name_and_port};

mod persist;
pub use persist::FILE as SESSIONS_FILE;

mod api_tokens;
pub use api_tokens::{CreatedToken, NewToken, create_token, list_tokens, revoke_token};

mod sign_in;
mod streams;

mod table;
use table::Entry;
pub use table::{Sessions, StreamTicket};

mod authorize;
use authorize::peer_ip;
pub use authorize::{Admin, ClientIp, Operator, Requester, Viewer};

mod holder;
pub use holder::Holder;
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

fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub(super) fn random_hex() -> Result<String, WebError> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| WebError::fault("no randomness", e))?;
    Ok(crate::wire::hex(&raw))
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

#[cfg(test)]
mod tests;
