//! One [`Worker`] per kind of request: echo round trips, UDP datagrams in
//! lockstep, time queries, remote commands (ours and the tutorial's
//! protocol), and signed-in dashboard API calls.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

use super::{OpError, Worker};
use crate::client::{ClientError, CommandClient, CommandOutcome, Stream, connect_stream};
use crate::wire;

/// Largest reply the tutorial's command server may announce.
const MAX_CLASSIC_REPLY: usize = 16 << 20;
/// Largest HTTP response body read.
const MAX_HTTP_BODY: usize = 16 << 20;

/// Runs `fut` within `after`, a timeout being a fatal [`OpError`] (the
/// stream's state is unknown afterwards).
async fn within<T>(
    after: Duration,
    fut: impl Future<Output = Result<T, OpError>>,
) -> Result<T, OpError> {
    tokio::time::timeout(after, fut).await.unwrap_or_else(|_| {
        Err(OpError {
            message: format!("no reply within {after:?}"),
            timeout: true,
            fatal: true,
        })
    })
}

fn io_fatal(e: std::io::Error) -> OpError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        OpError::fatal("the server closed the connection")
    } else {
        OpError::fatal(e.to_string())
    }
}

/// The request payload of `size` bytes: lower-case letters, so the server
/// has real upper-casing to do, and its expected reply.
pub fn letters(size: usize) -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let mut expected = payload.clone();
    wire::ascii_upper_in_place(&mut expected);
    (payload, expected)
}

/// TCP echo: writes the payload, reads until as many bytes came back (the
/// server may answer in pieces), checks them.
pub struct EchoWorker {
    stream: Stream,
    payload: Bytes,
    expected: Bytes,
    buf: Vec<u8>,
    timeout: Duration,
}

impl EchoWorker {
    /// # Errors
    /// The connection cannot be opened.
    pub async fn connect(
        addr: &str,
        payload: Bytes,
        expected: Bytes,
        timeout: Duration,
        tls: Option<&crate::tls::ClientTls>,
    ) -> Result<Self, ClientError> {
        let (stream, _) = crate::client::connect_stream_tls(addr, timeout, tls).await?;
        Ok(EchoWorker {
            stream,
            buf: vec![0; payload.len()],
            payload,
            expected,
            timeout,
        })
    }
}

impl Worker for EchoWorker {
    async fn op(&mut self) -> Result<u64, OpError> {
        let EchoWorker {
            stream,
            payload,
            expected,
            buf,
            timeout,
        } = self;
        within(*timeout, async {
            stream.write_all(payload).await.map_err(io_fatal)?;
            let mut filled = 0;
            while filled < buf.len() {
                match stream.read(&mut buf[filled..]).await {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    // A refusal line, then a reset (our request reached a
                    // closed socket): the line is the reason.
                    Err(_) if super::refusal::line_in(&buf[..filled]).is_some() => break,
                    Err(e) => return Err(io_fatal(e)),
                }
            }
            if buf[..filled] != expected[..filled] || filled < buf.len() {
                // A refused connection: the server's line says why.
                let why = super::refusal::finish_line(stream, &buf[..filled]).await;
                return Err(OpError::fatal(why.unwrap_or_else(|| {
                    if crate::client::is_tls_answer(&buf[..filled], payload) {
                        "the server answered with TLS: it speaks TLS (add --tls with --ca or --pin)"
                            .to_owned()
                    } else if filled < buf.len() {
                        "the server closed the connection".to_owned()
                    } else {
                        "the reply differs from the upper-cased request".to_owned()
                    }
                })));
            }
            Ok(())
        })
        .await?;
        Ok(2 * payload.len() as u64)
    }
}

/// A connected UDP socket doing one datagram at a time. A reply that does
/// not come within the timeout is counted as lost and the socket goes on.
pub struct UdpWorker {
    socket: UdpSocket,
    payload: Bytes,
    check: UdpCheck,
    buf: Vec<u8>,
    timeout: Duration,
}

/// What a good reply looks like.
#[derive(Clone)]
pub enum UdpCheck {
    /// Exactly these bytes.
    Equals(Bytes),
    /// Any non-empty text not starting with `error:` (the time service).
    NotError,
}

impl UdpWorker {
    /// Binds an ephemeral socket of the target's family and connects it.
    ///
    /// # Errors
    /// The address is not `HOST:PORT`, or the socket cannot be made.
    pub async fn connect(
        addr: &str,
        payload: Bytes,
        check: UdpCheck,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let (socket, _) = crate::client::udp::connected_socket(addr).await?;
        Ok(UdpWorker {
            socket,
            payload,
            check,
            buf: vec![0; 65_536],
            timeout,
        })
    }
}

impl Worker for UdpWorker {
    async fn op(&mut self) -> Result<u64, OpError> {
        // A late reply to a request already counted lost is not this one's.
        while self.socket.try_recv(&mut self.buf).is_ok() {}
        let refused = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                // The port is closed; try again later rather than spin.
                OpError::wrong("nothing listens on the port (ICMP port unreachable)")
            } else {
                OpError::wrong(e.to_string())
            }
        };
        self.socket.send(&self.payload).await.map_err(refused)?;
        let n = match tokio::time::timeout(self.timeout, self.socket.recv(&mut self.buf)).await {
            Ok(r) => r.map_err(refused)?,
            Err(_) => {
                return Err(OpError {
                    message: format!("no reply within {:?} (lost)", self.timeout),
                    timeout: true,
                    fatal: false,
                });
            }
        };
        let reply = &self.buf[..n];
        let good = match &self.check {
            UdpCheck::Equals(want) => reply == &want[..],
            UdpCheck::NotError => !reply.is_empty() && !reply.starts_with(b"error:"),
        };
        if !good {
            return Err(OpError::wrong(format!(
                "unexpected reply: {}",
                String::from_utf8_lossy(&reply[..n.min(60)])
            )));
        }
        Ok((self.payload.len() + n) as u64)
    }
}

/// Runs one command per request on our exec service; exit 0 is a success.
pub struct ExecWorker {
    client: CommandClient,
    argv: Vec<String>,
    timeout: Duration,
}

impl ExecWorker {
    /// Connects and authenticates.
    ///
    /// # Errors
    /// Connection errors or a wrong key.
    pub async fn connect(
        addr: &str,
        key: &[u8],
        argv: Vec<String>,
        timeout: Duration,
        tls: Option<&crate::tls::ClientTls>,
    ) -> Result<Self, ClientError> {
        Ok(ExecWorker {
            client: CommandClient::connect_tls(addr, key, timeout, tls).await?,
            argv,
            timeout,
        })
    }
}

impl Worker for ExecWorker {
    async fn op(&mut self) -> Result<u64, OpError> {
        let mut out = 0u64;
        let outcome = within(self.timeout, async {
            self.client
                .run(&self.argv, None, |_, bytes| out += bytes.len() as u64)
                .await
                .map_err(|e| OpError::fatal(e.to_string()))
        })
        .await?;
        match outcome {
            CommandOutcome::Exit(0) => Ok(out),
            CommandOutcome::Exit(code) => Err(OpError::wrong(format!("exit code {code}"))),
            CommandOutcome::Signal(s) => Err(OpError::wrong(format!("killed by signal {s}"))),
            CommandOutcome::Error(why) => Err(OpError::wrong(why)),
        }
    }
}

/// The seeds/001 remote-command protocol ("方式二"): the command line as
/// one write, answered by a 4-byte little-endian length (`struct 'i'`) and
/// that many bytes of output. For measuring the tutorial's own server.
pub struct ClassicExecWorker {
    stream: Stream,
    line: Bytes,
    timeout: Duration,
    out: Vec<u8>,
}

impl ClassicExecWorker {
    /// # Errors
    /// The connection cannot be opened.
    pub async fn connect(addr: &str, line: Bytes, timeout: Duration) -> Result<Self, ClientError> {
        let (stream, _) = connect_stream(addr, timeout).await?;
        Ok(ClassicExecWorker {
            stream,
            line,
            timeout,
            out: Vec::new(),
        })
    }
}

impl Worker for ClassicExecWorker {
    async fn op(&mut self) -> Result<u64, OpError> {
        let ClassicExecWorker {
            stream,
            line,
            timeout,
            out,
        } = self;
        within(*timeout, async {
            stream.write_all(line).await.map_err(io_fatal)?;
            let mut len = [0u8; 4];
            stream.read_exact(&mut len).await.map_err(io_fatal)?;
            let len = i32::from_le_bytes(len);
            let len = usize::try_from(len)
                .ok()
                .filter(|&n| n <= MAX_CLASSIC_REPLY)
                .ok_or_else(|| OpError::fatal(format!("bad reply length {len}")))?;
            out.resize(len, 0);
            stream.read_exact(out).await.map_err(io_fatal)?;
            Ok((line.len() + 4 + len) as u64)
        })
        .await
    }
}

/// Keep-alive HTTP/1.1 requests to one dashboard route with a session cookie.
pub struct HttpWorker {
    sender: SendRequest<Empty<Bytes>>,
    host: String,
    path: String,
    cookie: String,
    timeout: Duration,
}

/// Opens an HTTP/1.1 connection and drives it on its own task. Returns the
/// sender and the `Host` to send: the address as given (`localhost:8443`
/// stays a name, which `web.allowed_hosts` may list and a certificate may
/// name), `8080` alone becoming `127.0.0.1:8080`.
async fn http_conn<B>(
    addr: &str,
    timeout: Duration,
    tls: Option<&crate::tls::ClientTls>,
) -> Result<(SendRequest<B>, String), ClientError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if addr.trim().starts_with("unix:") {
        return Err(ClientError::BadAddress(format!(
            "{addr} (HTTP needs HOST:PORT)"
        )));
    }
    // Plain or HTTPS, with TCP_NODELAY, as every client connects.
    let (stream, label) = crate::client::connect_stream_tls(addr, timeout, tls).await?;
    let host = label.clone();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ClientError::Protocol {
            addr: label,
            detail: e.to_string(),
        })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender, host))
}

/// Signs in at the dashboard and returns the session cookie (`name=value`).
///
/// # Errors
/// Connection errors, or the sign-in was refused (its status and message).
pub async fn http_sign_in(
    addr: &str,
    user: &str,
    password: &str,
    timeout: Duration,
    tls: Option<&crate::tls::ClientTls>,
) -> Result<String, ClientError> {
    let (mut sender, host) = http_conn::<Full<Bytes>>(addr, timeout, tls).await?;
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let request = hyper::Request::post("/api/v1/session")
        .header("host", host)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| ClientError::BadAddress(e.to_string()))?;
    let protocol = |detail: String| ClientError::Protocol {
        addr: addr.to_owned(),
        detail,
    };
    let response = tokio::time::timeout(timeout, sender.send_request(request))
        .await
        .map_err(|_| ClientError::Timeout {
            addr: addr.to_owned(),
            after: timeout,
        })?
        .map_err(|e| protocol(e.to_string()))?;
    let status = response.status();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()
                .filter(|c| c.starts_with("switchboard_session="))
        })
        .map(str::to_owned);
    let body = Limited::new(response.into_body(), 64 * 1024)
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    let hint = match status.as_u16() {
        421 => " (dial it by a name its `web.allowed_hosts` lists: bench http NAME:PORT)",
        400 if body.starts_with(crate::client::health::HTTPS_ONLY) => {
            " (add --tls, with --ca FILE or --pin SHA256)"
        }
        _ => "",
    };
    match cookie {
        Some(c) if status.is_success() => Ok(c),
        _ => Err(ClientError::Rejected {
            addr: addr.to_owned(),
            reason: format!("sign-in answered {status}: {}{hint}", body.trim()),
        }),
    }
}

impl HttpWorker {
    /// # Errors
    /// The connection cannot be opened.
    pub async fn connect(
        addr: &str,
        path: String,
        cookie: String,
        timeout: Duration,
        tls: Option<&crate::tls::ClientTls>,
    ) -> Result<Self, ClientError> {
        let (sender, host) = http_conn(addr, timeout, tls).await?;
        Ok(HttpWorker {
            sender,
            host,
            path,
            cookie,
            timeout,
        })
    }
}

impl Worker for HttpWorker {
    async fn op(&mut self) -> Result<u64, OpError> {
        let request = hyper::Request::get(&self.path)
            .header("host", &self.host)
            .header("cookie", &self.cookie)
            .body(Empty::new())
            .map_err(|e| OpError::fatal(e.to_string()))?;
        let HttpWorker {
            sender, timeout, ..
        } = self;
        let (status, len) = within(*timeout, async {
            sender
                .ready()
                .await
                .map_err(|e| OpError::fatal(e.to_string()))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| OpError::fatal(e.to_string()))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_HTTP_BODY)
                .collect()
                .await
                .map_err(|e| OpError::fatal(e.to_string()))?;
            Ok((status, body.to_bytes().len()))
        })
        .await?;
        if !status.is_success() {
            return Err(OpError::wrong(format!("HTTP {status}")));
        }
        Ok(len as u64)
    }
}
