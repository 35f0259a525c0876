//! A small HTTP/1.1 client for the dashboard: `switchboard health` asks
//! `/healthz` (the Docker HEALTHCHECK) and `switchboard service` calls the
//! JSON API with a token. One request per connection (over TLS when the
//! dashboard speaks HTTPS), the reply read whole with a cap.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{ClientError, deadline};

/// Most of a reply read: the API's answers are small.
const MAX_REPLY: u64 = 1 << 20;

/// How the dashboard answers plain HTTP on its HTTPS port.
const HTTPS_ONLY: &str = "this port speaks HTTPS";

/// What `health` and `service` should be given to speak HTTPS to it: they
/// trust the dashboard's own certificate, found as the server finds it.
const HTTPS_HINT: &str = "the dashboard speaks HTTPS. Give this command the server's own \
     settings so it trusts that certificate: --config FILE, or SWITCHBOARD_WEB_TLS=self-signed \
     with --data-dir DIR (the server's data directory), or --set web.tls=self-signed";

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

/// One request: `method path` at `addr`, with a bearer `token` and a JSON
/// `body` when given.
///
/// # Errors
/// Connection errors, a timeout, a reply that is not HTTP.
pub async fn request(
    addr: SocketAddr,
    timeout: Duration,
    tls: Option<&crate::tls::ClientTls>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<Reply, ClientError> {
    let label = addr.to_string();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.map(ToString::to_string).unwrap_or_default();
    if !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    head.push_str(&body);
    deadline(&label, timeout, async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| ClientError::io(&label, e))?;
        match tls {
            None => {
                let reply = exchange(stream, &head, &label).await?;
                if reply.status == 400 && reply.body.starts_with(HTTPS_ONLY) {
                    return Err(super::detect::speaks_tls(&label, timeout, HTTPS_HINT).await);
                }
                Ok(reply)
            }
            Some(tls) => {
                let stream = tls
                    .connect(&addr.ip().to_string(), stream)
                    .await
                    .map_err(|e| super::tls_failed(&label, &e))?;
                exchange(stream, &head, &label).await
            }
        }
    })
    .await
}

/// `GET /healthz` at `addr`; `Ok` on a 200.
///
/// # Errors
/// Connection errors, a timeout, or any other status as
/// [`ClientError::Rejected`].
pub async fn check(
    addr: SocketAddr,
    timeout: Duration,
    tls: Option<&crate::tls::ClientTls>,
) -> Result<(), ClientError> {
    let reply = request(addr, timeout, tls, "GET", "/healthz", None, None).await?;
    if reply.status == 200 {
        Ok(())
    } else {
        Err(ClientError::Rejected {
            addr: addr.to_string(),
            reason: format!("/healthz answered {}", reply.status),
        })
    }
}

async fn exchange<S>(mut stream: S, request: &str, label: &str) -> Result<Reply, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| ClientError::io(label, e))?;
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let refuse = |reason: String| ClientError::Rejected {
        addr: label.to_owned(),
        reason,
    };
    let mut reply = Vec::new();
    let mut limited = (&mut stream).take(MAX_REPLY);
    // The head first: what answers is not HTTP as soon as its first line says so.
    let head_end = loop {
        if let Some(at) = reply.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let first = String::from_utf8_lossy(&reply)
            .lines()
            .next()
            .map(str::to_owned);
        if let Some(first) = first.filter(|l| reply.contains(&b'\n') && !l.starts_with("HTTP/")) {
            return Err(refuse(format!(
                "{path} answered `{}`",
                first.trim().escape_debug()
            )));
        }
        let n = limited
            .read_buf(&mut reply)
            .await
            .map_err(|e| ClientError::io(label, e))?;
        if n == 0 {
            return Err(refuse(format!("{path}: no HTTP reply")));
        }
    };
    let head = String::from_utf8_lossy(&reply[..head_end]).into_owned();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            refuse(format!(
                "{path} answered `{}`",
                head.lines().next().unwrap_or("")
            ))
        })?;
    // `Connection: close`: the body ends where the stream does.
    limited
        .read_to_end(&mut reply)
        .await
        .map_err(|e| ClientError::io(label, e))?;
    Ok(Reply {
        status,
        body: String::from_utf8_lossy(&reply[head_end + 4..]).into_owned(),
    })
}
