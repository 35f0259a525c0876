//! Everything a dashboard request can fail with, and how each becomes a
//! response: JSON `{"error": "..."}` for the API, `error.html` for pages
//! (see [`PageError`]). Logging stays out of the conversion except for
//! server faults, which are logged once here with their whole chain.

use askama::Template;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::users::Role;

/// Why a dashboard request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("sign in first")]
    SignInRequired,
    #[error("this needs the {need} role; you are {have}")]
    Forbidden { have: Role, need: Role },
    #[error("missing or wrong X-CSRF-Token header")]
    Csrf,
    #[error("cross-origin request refused")]
    CrossOrigin,
    #[error("this dashboard does not answer to that Host name")]
    UnknownHost,
    #[error("wrong user name or password")]
    BadCredentials,
    /// An `Authorization: Bearer` token that is malformed, unknown,
    /// revoked or expired; the message says which, never the token.
    #[error("API token refused: {0}")]
    BadToken(String),
    #[error("too many failed sign-ins from your address; try again in {0} s")]
    TooManyFailures(u64),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("no such {0}")]
    NotFound(String),
    /// A service said what it does not have, in its own words.
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Conflict(String),
    /// A submitted setting refused, with the form field it is about.
    #[error("{message}")]
    Invalid {
        field: Option<String>,
        message: String,
        /// 409 for a port in use, else 422.
        conflict: bool,
    },
    #[error("{0}")]
    Busy(String),
    #[error("your account already has {0} live streams open; close some dashboard tabs")]
    TooManyStreams(usize),
    #[error("send the size in Content-Length")]
    LengthRequired,
    /// No room on the disk for what the request declared.
    #[error("{0}")]
    NoSpace(String),
    /// The client stopped sending its body.
    #[error("{0}")]
    Stalled(String),
    /// The service behind the relay (or a replay's target) failed or timed
    /// out: the client reads its own message; its cause stays reachable
    /// through `source()` for the log.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A fault on our side; the message is logged, the client sees less.
    #[error("internal error: {0}")]
    Internal(String),
    /// A fault on our side caused by another error, kept whole: the log
    /// gets `what` and the cause's chain, the client sees less.
    #[error("internal error: {what}")]
    Fault {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What failed behind the dashboard when it acted as a client: kept as
/// the error itself, never flattened to its text.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The relay's request to a service.
    #[error(transparent)]
    Relay(crate::client::ClientError),
    /// A capture replayed into an instance.
    #[error(transparent)]
    Replay(#[from] crate::replay::ReplayError),
}

impl UpstreamError {
    /// Whether the service did not answer in time (504 rather than 502).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            UpstreamError::Relay(crate::client::ClientError::Timeout { .. })
        )
    }
}

/// A place among `slots` (the live streams, the WebSockets, the capture
/// exports, replays and decodings, each bounded), or `503` saying `busy`.
/// The place is held until the permit is dropped.
///
/// # Errors
/// [`WebError::Busy`] when every place is taken.
pub fn slot(
    slots: &std::sync::Arc<tokio::sync::Semaphore>,
    busy: impl FnOnce() -> String,
) -> Result<tokio::sync::OwnedSemaphorePermit, WebError> {
    std::sync::Arc::clone(slots)
        .try_acquire_owned()
        .map_err(|_| WebError::Busy(busy()))
}

impl WebError {
    /// A fault on our side: `what` we were doing, and the error that
    /// stopped it (kept, not turned into text).
    pub fn fault(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        WebError::Fault {
            what: what.into(),
            source: source.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            WebError::SignInRequired | WebError::BadCredentials | WebError::BadToken(_) => {
                StatusCode::UNAUTHORIZED
            }
            WebError::Forbidden { .. } | WebError::Csrf | WebError::CrossOrigin => {
                StatusCode::FORBIDDEN
            }
            WebError::UnknownHost => StatusCode::MISDIRECTED_REQUEST,
            WebError::TooManyFailures(_) | WebError::TooManyStreams(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::NotFound(_) | WebError::Missing(_) => StatusCode::NOT_FOUND,
            WebError::Conflict(_) | WebError::Invalid { conflict: true, .. } => {
                StatusCode::CONFLICT
            }
            WebError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            WebError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::LengthRequired => StatusCode::LENGTH_REQUIRED,
            WebError::NoSpace(_) => StatusCode::INSUFFICIENT_STORAGE,
            WebError::Stalled(_) => StatusCode::REQUEST_TIMEOUT,
            WebError::Upstream(e) if e.is_timeout() => StatusCode::GATEWAY_TIMEOUT,
            WebError::Upstream(_) => StatusCode::BAD_GATEWAY,
            WebError::Internal(_) | WebError::Fault { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told: everything but our own faults in full.
    fn public_message(&self) -> String {
        match self {
            WebError::Internal(detail) => {
                tracing::error!("dashboard request failed: {detail}");
                "internal error; the server log has the details".to_owned()
            }
            WebError::Fault { what, source } => {
                let mut chain = source.to_string();
                let mut cause = source.source();
                while let Some(c) = cause {
                    chain.push_str(&format!(": {c}"));
                    cause = c.source();
                }
                tracing::error!("dashboard request failed: {what}: {chain}");
                "internal error; the server log has the details".to_owned()
            }
            other => other.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            WebError::TooManyFailures(secs) => Some(*secs),
            _ => None,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let body = match &self {
            WebError::Invalid {
                field: Some(field), ..
            } => json!({ "error": self.public_message(), "field": field }),
            _ => json!({ "error": self.public_message() }),
        };
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, WebError::BadToken(_)) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"switchboard\""),
            );
        }
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<JsonRejection> for WebError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            WebError::TooLarge(format!(
                "request body larger than {} bytes",
                super::MAX_JSON_BODY
            ))
        } else {
            WebError::BadRequest(r.body_text())
        }
    }
}

impl From<PathRejection> for WebError {
    fn from(r: PathRejection) -> Self {
        WebError::BadRequest(r.body_text())
    }
}

impl From<QueryRejection> for WebError {
    fn from(r: QueryRejection) -> Self {
        WebError::BadRequest(r.body_text())
    }
}

/// An API handler's query string, as [`Query`] reads it, but refused as a
/// [`WebError`]: a malformed one (`?limit=abc`) gets the API's JSON error,
/// like every other 400, not axum's plain-text one. Put it after the
/// handler's sign-in extractor, so that "sign in first" comes first.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WebError> {
        let Query(q) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(q))
    }
}

/// A [`WebError`] met by a page: "sign in first" sends the browser to the
/// sign-in page; anything else renders `error.html`.
#[derive(Debug)]
pub struct PageError(pub WebError);

impl From<WebError> for PageError {
    fn from(e: WebError) -> Self {
        PageError(e)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    reason: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if matches!(self.0, WebError::SignInRequired) {
            return Redirect::to("/login").into_response();
        }
        let status = self.0.status();
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message: self.0.public_message(),
        };
        match page.render() {
            Ok(html) => (status, axum::response::Html(html)).into_response(),
            Err(e) => {
                tracing::error!("cannot render the error page: {e}");
                (status, page.message).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::client::ClientError;

    #[test]
    fn an_upstream_failure_keeps_its_error_and_its_message() {
        let cause = std::io::Error::new(std::io::ErrorKind::NotFound, "no such host");
        let failed = ClientError::Resolve {
            target: "nowhere:7".into(),
            source: cause,
        };
        let said = failed.to_string();
        let e = WebError::from(UpstreamError::Relay(failed));
        // What the client reads is the service error's own message...
        assert_eq!(e.public_message(), said);
        assert_eq!(e.status(), StatusCode::BAD_GATEWAY);
        // ...and the error is kept, not its text: its cause is reachable.
        assert!(matches!(
            &e,
            WebError::Upstream(UpstreamError::Relay(ClientError::Resolve { .. }))
        ));
        let source = e.source().expect("the resolver's error is kept");
        assert_eq!(source.to_string(), "no such host");
    }

    #[test]
    fn an_upstream_timeout_is_a_gateway_timeout() {
        let late = ClientError::Timeout {
            addr: "127.0.0.1:7".into(),
            after: std::time::Duration::from_secs(10),
        };
        let said = late.to_string();
        let e = WebError::from(UpstreamError::Relay(late));
        assert_eq!(e.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(e.public_message(), said);
    }

    #[test]
    fn a_fault_keeps_its_cause_and_tells_the_client_less() {
        let cause = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "read-only disk");
        let e = WebError::fault("cannot write services.toml", cause);
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            e.public_message(),
            "internal error; the server log has the details"
        );
        let source = e.source().expect("the I/O error is kept");
        assert_eq!(source.to_string(), "read-only disk");
    }
}
