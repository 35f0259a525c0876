//! The dashboard's HTTP/1 server: the accept loop, each connection's
//! admission by the slot table ([`super::conns`]), its first-byte deadline,
//! the PROXY header of a trusted proxy, the TLS handshake when `web.tls` is
//! on, and the graceful end on shutdown.
//!
//! Not here: routes and middleware (that is [`super::router`]), or what a
//! request means.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::conns::{Refusal, RequestGuard, Slot};
use super::{AppState, client_addr, router};
use crate::shutdown::Shutdown;

/// Serves the dashboard on `listener` until the state's shutdown token
/// fires, then lets requests in flight finish (live streams end on the same
/// token).
///
/// The loop only accepts: each connection is admitted by the slot table
/// ([`super::conns`]: a cap per peer address, a global cap that sheds the longest
/// idle or silent connection before refusing) or refused at once with a
/// short status line, so the kernel's backlog never fills behind silent
/// sockets and `/healthz` stays reachable.
pub async fn serve(listener: TcpListener, state: AppState) {
    let Shutdown {
        token: cancel,
        tasks,
    } = state.inner.shutdown.clone();
    let app = router(state.clone());
    let conns = Arc::clone(&state.inner.conns);
    let timeouts = Timeouts {
        first_byte: state.web().first_byte_timeout,
        header: state.web().header_timeout,
        trusted: Arc::new(state.web().trusted_proxies.clone()),
    };
    let tls = state.supervisor().certs().web().cloned();
    loop {
        let (stream, peer) = tokio::select! {
            () = cancel.cancelled() => return state.flush_token_use().await,
            // Upgraded: the new process accepts; requests here finish.
            () = crate::handoff::draining().cancelled() => return state.flush_token_use().await,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, most likely: let some close.
                    tracing::warn!("dashboard accept failed: {e}");
                    let pause = tokio::time::sleep(std::time::Duration::from_millis(100));
                    let _ = cancel.run_until_cancelled(pause).await;
                    continue;
                }
            },
        };
        // Without it a response written in pieces (a streamed command's
        // output, a chunked body) waits on Nagle for the peer's delayed ACK,
        // ~40 ms per request on a kept-alive connection. Set before the TLS
        // handshake, so it holds for HTTPS too.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, "dashboard connection: TCP_NODELAY not set: {e}");
        }
        match conns.admit(peer.ip()) {
            Ok(slot) => {
                tasks.spawn(serve_conn(
                    stream,
                    peer,
                    slot,
                    app.clone(),
                    cancel.clone(),
                    timeouts.clone(),
                    tls.clone(),
                ));
            }
            Err(why) => refuse(&stream, peer, why),
        }
    }
}

#[derive(Clone)]
struct Timeouts {
    first_byte: Duration,
    header: Duration,
    /// `web.trusted_proxies`: peers whose word on the client we believe
    /// ([`client_addr`]); with the timeouts, as every connection reads it.
    trusted: Arc<crate::settings::TrustedProxies>,
}

/// Answers a connection that gets no slot, without waiting for it: a fresh
/// socket's send buffer has room for one short response, and the accept
/// loop must not block on a peer.
fn refuse(stream: &TcpStream, peer: SocketAddr, why: Refusal) {
    let (status, text) = match why {
        Refusal::PeerFull => (
            "429 Too Many Requests",
            "too many connections from your address\n",
        ),
        Refusal::Full => (
            "503 Service Unavailable",
            "the dashboard is at its connection limit; try again\n",
        ),
    };
    tracing::debug!(%peer, "dashboard connection refused: {}", text.trim_end());
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Retry-After: 1\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    crate::service::listen::last_words(stream, reply.as_bytes());
}

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a plaintext request to the HTTPS port gets before the close.
const HTTPS_ONLY: &str = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 43\r\nConnection: close\r\n\r\nthis port speaks HTTPS: use https:// to it\n";

/// The `Strict-Transport-Security` of every HTTPS response: a year.
const HSTS: &str = "max-age=31536000";

/// One connection: wait (briefly) for its first byte, then (TLS) shake
/// hands and speak HTTP/1 until it closes, is shed, or shutdown ends it
/// gracefully.
async fn serve_conn(
    mut stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    app: Router,
    cancel: CancellationToken,
    timeouts: Timeouts,
    tls: Option<Arc<crate::tls::ServerTls>>,
) {
    let mut first = [0u8; 1];
    tokio::select! {
        () = cancel.cancelled() => return,
        () = slot.shed.cancelled() => return,
        peeked = tokio::time::timeout(timeouts.first_byte, stream.peek(&mut first)) => match peeked {
            Ok(Ok(n)) if n > 0 => {}
            Ok(Ok(_)) => return,
            Ok(Err(e)) => {
                tracing::debug!(%peer, "dashboard connection failed before a byte: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "dashboard connection silent for {:?}: closed", timeouts.first_byte);
                return;
            }
        },
    }
    slot.heard();
    // Behind a trusted proxy, the client its PROXY header names (if any).
    let Some(peer) = client_addr::take_proxy_header(
        &mut stream,
        peer,
        &timeouts.trusted,
        &mut first,
        timeouts.first_byte,
    )
    .await
    else {
        return;
    };
    let Some(tls) = tls else {
        return serve_http(
            TokioIo::new(stream),
            peer,
            slot,
            app,
            cancel,
            timeouts,
            false,
        )
        .await;
    };
    if first[0] != TLS_HANDSHAKE_RECORD {
        tracing::debug!(%peer, "plaintext request to the HTTPS port: closed");
        let mut stream = stream;
        let _ = tokio::time::timeout(timeouts.first_byte, async {
            use tokio::io::AsyncWriteExt;
            stream.write_all(HTTPS_ONLY.as_bytes()).await?;
            // Read what the request sent, so the close is a FIN after the
            // reply rather than a reset that could destroy it.
            crate::service::listen::discard_received(&stream);
            stream.shutdown().await
        })
        .await;
        return;
    }
    let after = crate::tls::HANDSHAKE_TIMEOUT;
    let handshake = tokio::time::timeout(after, tls.acceptor().accept(stream));
    let stream = tokio::select! {
        () = cancel.cancelled() => return,
        () = slot.shed.cancelled() => return,
        done = handshake => match done {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%peer, "dashboard TLS handshake failed: {}", crate::tls::describe(&e));
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "dashboard TLS handshake not done within {after:?}: closed");
                return;
            }
        },
    };
    serve_http(
        TokioIo::new(stream),
        peer,
        slot,
        app,
        cancel,
        timeouts,
        true,
    )
    .await;
}

/// HTTP/1 over an established stream (plain or TLS).
async fn serve_http<I>(
    io: I,
    peer: SocketAddr,
    slot: Slot,
    app: Router,
    cancel: CancellationToken,
    timeouts: Timeouts,
    https: bool,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let slot = Arc::new(slot);
    let tracked = Arc::clone(&slot);
    let trusted = Arc::clone(&timeouts.trusted);
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let client = match client_addr::from_headers(peer, req.headers(), &trusted) {
            Ok(client) => client,
            Err(conflict) => {
                // Refused by the guard, inside the layers that log, time
                // and add the security headers; until then it is from the
                // connection's peer (the proxy, or whom its PROXY header named).
                req.extensions_mut().insert(conflict);
                peer
            }
        };
        req.extensions_mut()
            .insert(ConnectInfo::<SocketAddr>(client));
        // Busy from here until the response body is done (or dropped).
        let guard = tracked.request();
        let app = app.clone();
        async move {
            let mut response = app.oneshot(req).await.unwrap_or_else(|e| match e {});
            if https {
                response.headers_mut().insert(
                    header::STRICT_TRANSPORT_SECURITY,
                    HeaderValue::from_static(HSTS),
                );
            }
            Ok::<_, Infallible>(response.map(|body| TrackedBody {
                body,
                _guard: guard,
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    // Upgrades for the WebSocket relay: once upgraded, the socket is the
    // relay's (bounded by its own limits), and this connection's slot is
    // given back.
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        () = slot.shed.cancelled() => {
            // The busy flag only changes while `conn` is polled, here in
            // this task: not busy now means no request can be cut.
            if !slot.busy() {
                return;
            }
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, "dashboard connection ended: {e}");
    }
}

/// A response body that keeps its connection marked busy until hyper has
/// written it all (or dropped it): a live stream is never shed.
struct TrackedBody {
    body: axum::body::Body,
    _guard: RequestGuard,
}

impl hyper::body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}
