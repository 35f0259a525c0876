//! `switchboard health`: asks a running dashboard's `/healthz` whether the
//! process is up (the Docker HEALTHCHECK). HTTP/1.1 (over TLS when the
//! dashboard speaks HTTPS), one request, its status line read with a cap.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{ClientError, deadline};

/// Most of the reply read: a status line and a few headers fit.
const MAX_REPLY: u64 = 4096;

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
    let label = addr.to_string();
    deadline(&label, timeout, async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| ClientError::io(&label, e))?;
        match tls {
            None => ask(stream, addr, &label).await,
            Some(tls) => {
                let stream = tls
                    .connect(&addr.ip().to_string(), stream)
                    .await
                    .map_err(|e| super::tls_failed(&label, &e))?;
                ask(stream, addr, &label).await
            }
        }
    })
    .await
}

async fn ask<S>(mut stream: S, addr: SocketAddr, label: &str) -> Result<(), ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    {
        let label = label.to_owned();
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| ClientError::io(&label, e))?;
        // The status line is all we need: read until it is complete.
        let mut reply = Vec::new();
        let mut limited = (&mut stream).take(MAX_REPLY);
        while !reply.contains(&b'\n') {
            let n = limited
                .read_buf(&mut reply)
                .await
                .map_err(|e| ClientError::io(&label, e))?;
            if n == 0 {
                break;
            }
        }
        let text = String::from_utf8_lossy(&reply);
        let status = text.lines().next().unwrap_or("").trim().to_owned();
        if status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.0 200") {
            Ok(())
        } else {
            Err(ClientError::Rejected {
                addr: label.clone(),
                reason: if status.is_empty() {
                    "no HTTP reply".into()
                } else {
                    format!("/healthz answered `{status}`")
                },
            })
        }
    }
}
