//! A small HTTP/1.1 client for the dashboard: `switchboard health` asks
//! `/healthz` (the Docker HEALTHCHECK) and `switchboard service` calls the
//! JSON API with a token. One request per connection (over TLS when the
//! dashboard speaks HTTPS), spoken by hyper's client, so a body is read by
//! its `Content-Length` or chunks, whole, up to a cap.
//!
//! Not here: connection reuse, redirects or cookies: the callers make one
//! call each.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{ClientError, deadline};

/// Most of a reply read: the API's answers are small.
const MAX_REPLY: usize = 1 << 20;

/// How the dashboard answers plain HTTP on its HTTPS port (the body's
/// start; `bench http` reads it too).
pub(crate) const HTTPS_ONLY: &str = "this port speaks HTTPS";

/// What `health`, `service` and `toxic` should be given to speak HTTPS to
/// the dashboard: they trust its own certificate, found as the server
/// finds it.
pub const HTTPS_SETTINGS: &str = "give this command the server's own settings so it trusts \
     the dashboard's certificate: --config FILE, or SWITCHBOARD_WEB_TLS=self-signed \
     (or --set web.tls=self-signed) with --data-dir DIR, the server's data directory";

/// An answer: its status code and its body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    /// The body as JSON (`null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One request: `method path` at `addr` (`HOST:PORT`, `[IPv6]:PORT` or
/// `PORT`), with a bearer `token` and a JSON `body` when given. The host
/// as given is sent as `Host` (and is the name a certificate is checked
/// for, when TLS trusts a CA).
///
/// # Errors
/// Connection errors, a timeout, a reply that is not HTTP.
pub async fn request(
    addr: &str,
    timeout: Duration,
    tls: Option<&crate::tls::ClientTls>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<Reply, ClientError> {
    deadline(addr, timeout, async {
        let (stream, label) = super::connect_stream_tls(addr, timeout, tls).await?;
        let request = build(&label, method, path, token, body)?;
        let reply = exchange(stream, request, &label).await?;
        if tls.is_none() && reply.status == 400 && reply.body.starts_with(HTTPS_ONLY) {
            let hint = format!("the dashboard speaks HTTPS: {HTTPS_SETTINGS}");
            return Err(super::detect::speaks_tls(&label, timeout, &hint).await);
        }
        Ok(reply)
    })
    .await
}

/// The request, with `label` (the address as given) as its `Host`.
fn build(
    label: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<hyper::Request<Full<Bytes>>, ClientError> {
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, label);
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(body) => {
            builder = builder.header(CONTENT_TYPE, "application/json");
            Bytes::from(body.to_string())
        }
        None => Bytes::new(),
    };
    builder
        .body(Full::new(body))
        .map_err(|e| ClientError::Rejected {
            addr: label.to_owned(),
            reason: format!("cannot make the request {method} {path}: {e}"),
        })
}

/// `GET /healthz` at `addr`; `Ok` on a 200.
///
/// # Errors
/// Connection errors, a timeout, or any other status as
/// [`ClientError::Rejected`].
pub async fn check(
    addr: &str,
    timeout: Duration,
    tls: Option<&crate::tls::ClientTls>,
) -> Result<(), ClientError> {
    let reply = request(addr, timeout, tls, "GET", "/healthz", None, None).await?;
    if reply.status == 200 {
        Ok(())
    } else {
        Err(ClientError::Rejected {
            addr: addr.to_owned(),
            reason: format!("/healthz answered {}", reply.status),
        })
    }
}

/// Sends `request` on `stream` and reads the whole reply, driving hyper's
/// connection alongside (no task of its own: the deadline drops both).
async fn exchange<S>(
    stream: S,
    request: hyper::Request<Full<Bytes>>,
    label: &str,
) -> Result<Reply, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let path = request.uri().path().to_owned();
    let refuse = |reason: String| ClientError::Rejected {
        addr: label.to_owned(),
        reason,
    };
    let not_http = |e: hyper::Error| {
        if e.is_incomplete_message() {
            refuse(format!("{path}: no HTTP reply"))
        } else if e.is_parse() {
            refuse(format!("{path} answered something that is not HTTP ({e})"))
        } else {
            refuse(format!("{path}: {e}"))
        }
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(&not_http)?;
    let work = async {
        let reply = sender.send_request(request).await.map_err(&not_http)?;
        let status = reply.status().as_u16();
        let body = Limited::new(reply.into_body(), MAX_REPLY)
            .collect()
            .await
            .map_err(|e| match e.downcast::<hyper::Error>() {
                Ok(e) => not_http(*e),
                Err(e) => refuse(format!("{path}: the reply is too long ({e})")),
            })?
            .to_bytes();
        Ok(Reply {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    };
    tokio::pin!(work, conn);
    tokio::select! {
        reply = &mut work => reply,
        // The connection ended first: the exchange has its outcome (or
        // its error) by now.
        _ = &mut conn => work.await,
    }
}
