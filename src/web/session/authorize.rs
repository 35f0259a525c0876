//! Who is asking, and may they: the session cookie (and its CSRF token) or
//! an API token, read into a [`Session`] by one extractor per role
//! ([`Viewer`], [`Operator`], [`Admin`]).
//!
//! Not here: the Host and Origin checks ([`super::host`]) and the table of
//! sessions ([`super::table`]).

use super::*;

/// The session of a request: a live cookie, an account that still exists
/// (with its current role) and, on a state-changing request, the CSRF
/// token.
pub(super) fn session_of(parts: &Parts, state: &AppState) -> Result<Session, WebError> {
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
pub(super) async fn token_session(
    parts: &Parts,
    state: &AppState,
    token: &str,
) -> Result<Session, WebError> {
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
pub(super) async fn authorize(
    parts: &Parts,
    state: &AppState,
    need: Role,
) -> Result<Session, WebError> {
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

pub(super) async fn authorize_inner(
    parts: &Parts,
    state: &AppState,
    need: Role,
) -> Result<Session, WebError> {
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
    pub(in crate::web) fn tokens(&self) -> &Tokens {
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
    pub(in crate::web) fn open_stream(
        &self,
        headers: &HeaderMap,
    ) -> Result<StreamTicket, WebError> {
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
    pub(in crate::web) fn stream_allowed(&self, ticket: &StreamTicket) -> bool {
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

/// The client a request is from (behind a trusted proxy, the one it
/// names: `web::client_addr`), for the audit lines of what it does here.
/// Never refuses: `0.0.0.0` when the server gave none (a test's router).
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(peer_ip(&parts.extensions)))
    }
}

/// The peer's IP address: from the connection when served for real, the
/// unspecified address when a test calls the router directly.
pub(super) fn peer_ip(parts_or_req: &axum::http::Extensions) -> IpAddr {
    parts_or_req
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(a)| a.ip())
}

impl AppState {
    /// Who the request's session cookie belongs to, for the access log:
    /// a look that neither refreshes the session nor checks its CSRF token.
    pub(in crate::web) fn signed_in_user(&self, headers: &HeaderMap) -> Option<String> {
        let key = token_key(cookie_token(headers)?);
        let table = self.sessions().lock();
        let entry = table.get(&key)?;
        (entry.last_seen.elapsed() < self.sessions().idle).then(|| entry.session.user.clone())
    }
}
