//! `CommandClient`: runs commands on the `exec` service.

use std::time::Duration;

use super::{ClientError, Stream, deadline};
use crate::conn::{ConnError, MessageConn};
use crate::wire::exec::{Command, ExecReply, ExecRequest, Exit};
use crate::wire::message::MAX_HEADER_LEN;

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
    stream_client_connect!(authenticated CommandClient);

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
        let command = Command::Run {
            argv: argv.to_vec(),
        };
        self.request(command, timeout, on_output).await
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
        let line = line.to_owned();
        self.request(Command::Shell { line }, timeout, on_output)
            .await
    }

    async fn request(
        &mut self,
        command: Command,
        timeout: Option<Duration>,
        mut on_output: impl FnMut(OutputKind, &[u8]),
    ) -> Result<CommandOutcome, ClientError> {
        self.start(command, timeout).await?;
        let mut chunk = Vec::new();
        loop {
            match self.next_output(&mut chunk).await? {
                Step::Output(kind) => on_output(kind, &chunk),
                Step::Done(outcome) => return Ok(outcome),
            }
        }
    }

    /// Sends `command`; its output is then read with
    /// [`CommandClient::next_output`], one piece at a time, so a caller that
    /// cannot pass output on yet simply stops reading: the socket, then the
    /// service and the command's pipe, fill and the command waits.
    ///
    /// # Errors
    /// Connection errors.
    pub async fn start(
        &mut self,
        command: Command,
        timeout: Option<Duration>,
    ) -> Result<(), ClientError> {
        let request = ExecRequest {
            command,
            timeout_ms: timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        };
        let addr = self.addr.clone();
        self.conn
            .write_message(&request, &[])
            .await
            .map_err(|e| conn_error(&addr, e))
    }

    /// The next piece of output (into `chunk`), or how the command ended.
    ///
    /// # Errors
    /// Connection or protocol errors.
    pub async fn next_output(&mut self, chunk: &mut Vec<u8>) -> Result<Step, ClientError> {
        let addr = self.addr.clone();
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
        let reply = header
            .message::<ExecReply>()
            .map_err(|e| protocol(format!("bad reply: {e}")))?;
        let kind = match reply {
            ExecReply::Stdout => OutputKind::Stdout,
            ExecReply::Stderr => OutputKind::Stderr,
            ExecReply::Exit(Exit::Code { code }) => {
                return Ok(Step::Done(CommandOutcome::Exit(code)));
            }
            ExecReply::Exit(Exit::Signal { signal }) => {
                return Ok(Step::Done(CommandOutcome::Signal(signal)));
            }
            ExecReply::Error { error } => return Ok(Step::Done(CommandOutcome::Error(error))),
        };
        if header.size > MAX_CHUNK {
            return Err(protocol(format!("output chunk of {} bytes", header.size)));
        }
        chunk.resize(header.size as usize, 0);
        self.conn
            .read_body(chunk)
            .await
            .map_err(|e| conn_error(&addr, e))?;
        Ok(Step::Output(kind))
    }
}

/// What [`CommandClient::next_output`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A piece of output from this stream, in the caller's buffer.
    Output(OutputKind),
    /// The command ended.
    Done(CommandOutcome),
}

/// Connects and passes the HMAC handshake (exec and files).
///
/// # Errors
/// Connection errors, [`ClientError::AuthRejected`] for a wrong key, or
/// [`ClientError::TurnedAway`] when the service refused the connection.
pub(super) async fn connect_authenticated(
    target: &str,
    key: &[u8],
    timeout: Duration,
    tls: Option<&crate::tls::ClientTls>,
) -> Result<(MessageConn<Stream>, String), ClientError> {
    let (stream, addr) = super::detect::connect_greeted(target, timeout, tls).await?;
    let mut conn = MessageConn::new(stream);
    let refused = deadline(&addr, timeout, async {
        if let Some(away) = turned_away(&mut conn, &addr, timeout).await {
            return Err(away);
        }
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

/// The refusal line a service sent where its challenge belongs, if it sent
/// one. The challenge's first bytes stay buffered for the handshake: they
/// are random, and start like the line once in 2^104 connections.
async fn turned_away(
    conn: &mut MessageConn<Stream>,
    addr: &str,
    within: Duration,
) -> Option<ClientError> {
    while conn.buffered().len() < super::refusal::PREFIX.len() {
        // An end or an error: the handshake's own read reports it.
        if !matches!(conn.fill().await, Ok(n) if n > 0) {
            break;
        }
    }
    let head = conn.buffered().to_vec();
    super::refusal::check(addr, &head, conn.stream_mut(), within).await
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
