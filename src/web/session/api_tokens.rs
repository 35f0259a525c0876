//! API tokens over the dashboard: `GET`, `POST /api/v1/tokens` and
//! `DELETE /api/v1/tokens/{name}`, for admins, audited by name.

use super::*;

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

pub(super) fn token_error(e: TokensError) -> WebError {
    match e {
        TokensError::BadName(_) | TokensError::BadExpiry(_) => WebError::BadRequest(e.to_string()),
        TokensError::Exists(_) => WebError::Conflict(e.to_string()),
        TokensError::NoSuchToken(name) => WebError::NotFound(format!("token `{name}`")),
        TokensError::Io { .. } | TokensError::Corrupt { .. } | TokensError::Random(_) => {
            WebError::fault("the token store failed", e)
        }
    }
}

/// Runs a file change of the token store off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TokensError> + Send + 'static,
) -> Result<T, WebError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WebError::fault("the token store's task failed", e))?
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
    ClientIp(from): ClientIp,
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
        .record(crate::audit::AuditEvent::Token(
            crate::audit::TokenEvent::Create {
                service: "web".into(),
                user: Some(session.user.clone()),
                peer: Some(from.to_string()),
                token: body.name.clone(),
                role,
                expires_unix,
            },
        ))
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
    ClientIp(from): ClientIp,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<serde_json::Value>, WebError> {
    let tokens = state.tokens().clone();
    let target = name.clone();
    blocking(move || tokens.revoke(&target)).await?;
    state
        .audit()
        .record(crate::audit::AuditEvent::Token(
            crate::audit::TokenEvent::Revoke {
                service: "web".into(),
                user: Some(session.user.clone()),
                peer: Some(from.to_string()),
                token: name.clone(),
            },
        ))
        .await;
    Ok(Json(json!({"ok": true, "revoked": name})))
}

impl AppState {
    /// Writes the tokens' last-used times still held in memory (they are
    /// written at most once a minute while serving): called as the
    /// dashboard stops, so a shutdown loses none. Nothing to do when no
    /// token was checked.
    pub(in crate::web) async fn flush_token_use(&self) {
        let Some(tokens) = self.sessions().tokens.get().cloned() else {
            return;
        };
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || tokens.flush_used()).await {
            tracing::warn!("cannot record when API tokens were last used: {e}");
        }
    }
}
