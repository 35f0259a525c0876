//! Where Toxiproxy's HTTP API (`web.toxiproxy_listen`) is served when it
//! is guarded: over the dashboard's TLS and with a bearer token
//! (`web.toxiproxy_token`), which a listen address beyond loopback
//! requires (Toxiproxy itself has neither, and its API can point a proxy
//! anywhere; the config checks that). On loopback without a token the
//! plain server in `web::toxiproxy` is used, as before.
//!
//! Bounded like the dashboard: at most [`MAX_CONNECTIONS`] at once (more
//! are closed at once), the TLS handshake within
//! [`crate::tls::HANDSHAKE_TIMEOUT`], a request head within
//! [`HEADER_TIMEOUT`]. It does not route or answer requests (the
//! router does) and never logs the token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::settings::Secret;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// A request head must arrive within this (also the keep-alive idle limit).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// `router` behind the token: a request without `Authorization: Bearer
/// <token>` gets Toxiproxy's error shape with 401.
pub fn guarded(router: Router, token: Secret) -> Router {
    let token = Arc::new(token);
    router.layer(middleware::from_fn(move |req: Request, next: Next| {
        let token = Arc::clone(&token);
        async move {
            let sent = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if bool::from(sent.as_bytes().ct_eq(token.expose())) {
                next.run(req).await
            } else {
                unauthorized()
            }
        }
    }))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::WWW_AUTHENTICATE, "Bearer"),
        ],
        "{\"error\":\"a bearer token (web.toxiproxy_token) is required\",\"status\":401}\n",
    )
        .into_response()
}

/// Serves `app` on `listener` (over `tls` when given) until `cancel`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<crate::tls::ServerTls>>,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = tokio::select! {
            () = cancel.cancelled() => return,
            () = crate::handoff::draining().cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("Toxiproxy API accept failed: {e}");
                    let pause = tokio::time::sleep(Duration::from_millis(100));
                    let _ = cancel.run_until_cancelled(pause).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "Toxiproxy API: {MAX_CONNECTIONS} connections open; closed");
            continue;
        };
        let (app, tls, cancel) = (app.clone(), tls.clone(), cancel.clone());
        tokio::spawn(async move {
            let _ = cancel
                .run_until_cancelled(one(stream, peer, app, tls))
                .await;
            drop(slot);
        });
    }
}

async fn one(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    tls: Option<Arc<crate::tls::ServerTls>>,
) {
    let _ = stream.set_nodelay(true);
    let service = hyper_util::service::TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let served = match tls {
        None => {
            builder
                .serve_connection(TokioIo::new(stream), service)
                .await
        }
        Some(tls) => {
            let after = crate::tls::HANDSHAKE_TIMEOUT;
            let stream = match tokio::time::timeout(after, tls.acceptor().accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "Toxiproxy API TLS handshake failed: {}", crate::tls::describe(&e));
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "Toxiproxy API TLS handshake not done within {after:?}");
                    return;
                }
            };
            builder
                .serve_connection(TokioIo::new(stream), service)
                .await
        }
    };
    if let Err(e) = served {
        tracing::debug!(%peer, "Toxiproxy API connection: {e}");
    }
}
