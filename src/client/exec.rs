//! `CommandClient`: runs commands on the `exec` service.

use std::time::Duration;

use serde_json::{Value, json};

use super::{ClientError, Stream, deadline};
use crate::conn::{ConnError, MessageConn};
use crate::wire::message::{self, MAX_HEADER_LEN};

/// The largest output chunk accepted in one message. The service sends at
/// most 8 KiB at once; anything far larger is a broken or hostile server.
const MAX_CHUNK: u64 = 1 << 20;

/// Which stream a piece of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    Stdout,
    Stderr,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    Exit(i32),
    Signal(i32),
    /// Refused or stopped by the service (not allowed, timeout, output cap...).
    Error(String),
}

/// An authenticated connection to the exec service.
pub struct CommandClient {
    conn: MessageConn<Stream>,
    addr: String,
}

impl CommandClient {
    /// Connects and authenticates with `key`.
    ///
    /// # Errors
    /// Connection errors, or [`ClientError::AuthRejected`] for a wrong key.
    pub async fn connect(target: &str, key: &[u8], timeout: Duration) -> Result<Self, ClientError> {
        Self::connect_tls(target, key, timeout, None).await
    }

    /// [`Self::connect`], speaking TLS with `tls` when given.
    ///
    /// # Errors
    /// As [`Self::connect`], or [`ClientError::Tls`] for a refused certificate.
    pub async fn connect_tls(
        target: &str,
        key: &[u8],
        timeout: Duration,
        tls: Option<&crate::tls::ClientTls>,
    ) -> Result<Self, ClientError> {
        let (conn, addr) = connect_authenticated(target, key, timeout, tls).await?;
        Ok(CommandClient { conn, addr })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Runs `argv` (no shell), calling `on_output` with each piece of output
    /// as it arrives. `timeout` asks the service for a shorter limit than its own.
    ///
    /// # Errors
    /// Connection or protocol errors. A refused or stopped command is an
    /// `Ok(CommandOutcome::Error(..))`.
    pub async fn run(
        &mut self,
        argv: &[String],
        timeout: Option<Duration>,
        on_output: impl FnMut(OutputKind, &[u8]),
    ) -> Result<CommandOutcome, ClientError> {
        self.request(json!({"op": "run", "argv": argv}), timeout, on_output)
            .await
    }

    /// Runs a shell line (only if the operator enabled shell mode).
    ///
    /// # Errors
    /// As [`CommandClient::run`].
    pub async fn shell(
        &mut self,
        line: &str,
        timeout: Option<Duration>,
        on_output: impl FnMut(OutputKind, &[u8]),
    ) -> Result<CommandOutcome, ClientError> {
        self.request(json!({"op": "shell", "line": line}), timeout, on_output)
            .await
    }

    async fn request(
        &mut self,
        request: Value,
        timeout: Option<Duration>,
        mut on_output: impl FnMut(OutputKind, &[u8]),
    ) -> Result<CommandOutcome, ClientError> {
        let mut request = message::fields(request);
        if let Some(t) = timeout {
            request.insert("timeout_ms".into(), (t.as_millis() as u64).into());
        }
        let addr = self.addr.clone();
        self.conn
            .write_message(request, &[])
            .await
            .map_err(|e| conn_error(&addr, e))?;
        let mut chunk = Vec::new();
        loop {
            let header = self
                .conn
                .read_header(MAX_HEADER_LEN)
                .await
                .map_err(|e| conn_error(&addr, e))?
                .ok_or_else(|| ClientError::Closed {
                    addr: addr.clone(),
                    detail: " before the command ended".into(),
                })?;
            let protocol = |detail: String| ClientError::Protocol {
                addr: addr.clone(),
                detail,
            };
            match header.str("type") {
                Some(kind @ ("stdout" | "stderr")) => {
                    if header.size > MAX_CHUNK {
                        return Err(protocol(format!("output chunk of {} bytes", header.size)));
                    }
                    chunk.resize(header.size as usize, 0);
                    self.conn
                        .read_body(&mut chunk)
                        .await
                        .map_err(|e| conn_error(&addr, e))?;
                    let kind = if kind == "stdout" {
                        OutputKind::Stdout
                    } else {
                        OutputKind::Stderr
                    };
                    on_output(kind, &chunk);
                }
                Some("exit") => {
                    let field = |name| {
                        header
                            .fields
                            .get(name)
                            .and_then(Value::as_i64)
                            .map(|v| v as i32)
                    };
                    return match (field("code"), field("signal")) {
                        (Some(code), _) => Ok(CommandOutcome::Exit(code)),
                        (None, Some(signal)) => Ok(CommandOutcome::Signal(signal)),
                        _ => Err(protocol("exit without code or signal".into())),
                    };
                }
                Some("error") => {
                    return Ok(CommandOutcome::Error(
                        header.str("error").unwrap_or("unknown error").to_owned(),
                    ));
                }
                other => return Err(protocol(format!("unexpected message type {other:?}"))),
            }
        }
    }
}

/// Connects and passes the HMAC handshake (exec and files).
///
/// # Errors
/// Connection errors, or [`ClientError::AuthRejected`] for a wrong key.
pub(super) async fn connect_authenticated(
    target: &str,
    key: &[u8],
    timeout: Duration,
    tls: Option<&crate::tls::ClientTls>,
) -> Result<(MessageConn<Stream>, String), ClientError> {
    let (stream, addr) = super::connect_stream_tls(target, timeout, tls).await?;
    let mut conn = MessageConn::new(stream);
    let refused = deadline(&addr, timeout, async {
        conn.offer_handshake(key)
            .await
            .map_err(|e| conn_error(&addr, e))
    })
    .await?;
    match refused {
        Some(reason) => Err(ClientError::AuthRejected { addr, reason }),
        None => Ok((conn, addr)),
    }
}

pub(super) fn conn_error(addr: &str, e: ConnError) -> ClientError {
    match e {
        ConnError::Io(io) => ClientError::io(addr, io),
        ConnError::Truncated => ClientError::Closed {
            addr: addr.to_owned(),
            detail: " in the middle of a message".into(),
        },
        other => ClientError::Protocol {
            addr: addr.to_owned(),
            detail: other.to_string(),
        },
    }
}
