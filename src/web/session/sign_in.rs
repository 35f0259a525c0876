//! Signing in and out: `POST`, `GET` and `DELETE /api/v1/session`, and the
//! session cookie they set and clear.

use super::*;

#[derive(Deserialize)]
pub struct SignIn {
    username: String,
    password: String,
}

pub(super) fn session_cookie(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    max_age: u64,
) -> HeaderValue {
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
            other => WebError::fault("cannot check the password", other),
        })?;
    let Some(role) = verified else {
        state.sign_in_failures().charge(ip);
        // Only names of real accounts are written down: a password typed
        // into the name field must not end up in the log.
        let known = state
            .users()
            .role(&body.username)
            .map(|_| body.username.as_str());
        state.stats().emit(crate::stats::EventKind::SignInFailed {
            service: "web",
            peer: ip.to_string(),
            user: known.map(str::to_owned),
            reason: match known {
                Some(user) => format!("dashboard sign-in failed for {user}"),
                None => "dashboard sign-in failed (no such account)".to_owned(),
            },
        });
        state
            .audit()
            .record(crate::audit::AuditEvent::Login {
                service: "web".into(),
                peer: ip.to_string(),
                user: known.map(str::to_owned),
                role: None,
                ok: false,
            })
            .await;
        return Err(WebError::BadCredentials);
    };
    state
        .audit()
        .record(crate::audit::AuditEvent::Login {
            service: "web".into(),
            peer: ip.to_string(),
            user: Some(body.username.clone()),
            role: Some(role),
            ok: true,
        })
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
