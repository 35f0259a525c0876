//! Browser → client → service: what the dashboard does *through* the
//! services, always with the same `client` code the CLI uses, over real
//! sockets, so every action shows up in the live connections and counters.
//!
//! - test messages to `echo`, `udp-echo` and `time`, with the bytes each way
//!   and the client-side round-trip time (the C/S path);
//! - the sticky-packet demonstration: messages written back to back to
//!   `echo`, raw and length-prefixed;
//! - uploads streamed from the request body into the files client (never
//!   held whole), downloads streamed back, the file list;
//! - remote commands through the exec client, output streamed as NDJSON.
//!
//! A request names a service, never an address: the relay only ever
//! connects to where the supervisor says that service is bound. The HMAC
//! key stays on the server.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_stream::StreamExt;

use super::AppState;
use super::error::{UpstreamError, WebError};
use super::session::{Admin, ClientIp, Operator, Viewer};
use crate::client::{
    ClientError, CommandClient, CommandOutcome, EchoClient, FilesClient, OutputKind, Step,
    TimeClient, UdpEchoClient,
};
use crate::kind::{ServiceId, ServiceKind};
use crate::stats::EventKind;
use crate::store::FileInfo;

mod files;
pub use files::{delete_file, get_file, list_files, put_file};
mod lab_proxy;
mod sticky_exec;
pub use sticky_exec::sticky_exec;

/// How long the relay waits to connect and for each reply.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest test message.
pub const MAX_MESSAGE: usize = 8 * 1024;
/// The sticky-packet panel's limits: messages, and bytes per message. At
/// most 96 bytes keeps each 4-byte length prefix below 0x61 (`a`), so the
/// echo service's upper-casing leaves the prefixes intact.
pub const MAX_STICKY_MESSAGES: usize = 20;
pub const MAX_STICKY_LEN: usize = 96;

impl From<ClientError> for WebError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Rejected { reason, .. } => WebError::BadRequest(reason),
            ClientError::TooLarge { .. } => WebError::TooLarge(e.to_string()),
            // The service's own connection limits: try again later.
            ClientError::TurnedAway { .. } => WebError::Busy(e.to_string()),
            // The browser's upload went silent (see `files::put_file`).
            ClientError::Local { ref source, .. }
                if source.kind() == std::io::ErrorKind::TimedOut =>
            {
                WebError::Stalled(e.to_string())
            }
            // The browser's own upload ended early or failed.
            ClientError::Local { .. } => WebError::BadRequest(e.to_string()),
            // Timeouts included: the status tells them apart (504).
            other => WebError::Upstream(UpstreamError::Relay(other)),
        }
    }
}

impl AppState {
    /// Where a running service can be reached from here: its bound address,
    /// with a wildcard (`0.0.0.0`, `::`) turned into loopback.
    pub(super) fn target(&self, name: impl AsRef<str>) -> Result<String, WebError> {
        let name = name.as_ref();
        let addr = self
            .supervisor()
            .local_addr(name)
            .ok_or_else(|| WebError::Busy(format!("{name} is not running; start it first")))?;
        Ok(addr.connectable().to_string())
    }

    /// TLS to instance `name` when it speaks it, trusting exactly its certificate.
    pub(super) fn tls(
        &self,
        name: impl AsRef<str>,
    ) -> Result<Option<crate::tls::ClientTls>, WebError> {
        match self.supervisor().tls_of(name) {
            Some(cert) => Ok(Some(
                cert.pinned_client()
                    .map_err(crate::client::ClientError::from)?,
            )),
            None => Ok(None),
        }
    }

    fn key(&self) -> Result<&[u8], WebError> {
        self.inner
            .key
            .as_ref()
            .map(crate::config::Secret::expose)
            .ok_or_else(|| WebError::Busy("no HMAC key is configured".into()))
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The body of a test message: `text`, or `hex` for arbitrary bytes.
/// Nothing else: in particular no host or port.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    text: Option<String>,
    hex: Option<String>,
}

/// What a test message did.
#[derive(Debug, Serialize)]
pub struct SendReply {
    pub service: ServiceId,
    /// The address the relay connected to (what the CLI would be given).
    pub target: String,
    /// The reply as text (invalid UTF-8 replaced).
    pub reply: String,
    pub request_hex: String,
    pub reply_hex: String,
    pub bytes_sent: usize,
    pub bytes_received: usize,
    /// The exchange alone: request written to reply read (the C/S path).
    pub rtt_us: u64,
    /// Connecting included, as a one-shot CLI call would see it.
    pub total_us: u64,
}

/// `POST /api/v1/services/{name}/send` (operator): one message through the
/// service's own socket.
///
/// # Errors
/// Not echo/udp-echo/time, bad input, the service down or silent.
pub async fn send(
    State(state): State<AppState>,
    _: Operator,
    Path(name): Path<String>,
    body: Result<Json<SendRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<SendReply>, WebError> {
    let id = state
        .supervisor()
        .id(&name)
        .ok_or_else(|| WebError::NotFound(format!("service `{name}`")))?;
    let Json(req) = body?;
    let payload = match (req.text, req.hex) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(hex)) => crate::wire::unhex(&hex).map_err(WebError::BadRequest)?,
        _ => return Err(WebError::BadRequest("give either `text` or `hex`".into())),
    };
    if payload.len() > MAX_MESSAGE {
        return Err(WebError::TooLarge(format!(
            "a test message is at most {MAX_MESSAGE} bytes"
        )));
    }
    let target = state.target(&id)?;
    let started = Instant::now();
    let (reply, rtt) = match id.kind() {
        ServiceKind::Echo => {
            if payload.is_empty() {
                return Err(WebError::BadRequest("an empty message gets no echo".into()));
            }
            let tls = state.tls(&id)?;
            let mut c = crate::service::internal::scope(EchoClient::connect_tls(
                &target,
                CLIENT_TIMEOUT,
                tls.as_ref(),
            ))
            .await?;
            let t = Instant::now();
            let reply = c.round_trip(&payload).await?;
            (reply, t.elapsed())
        }
        ServiceKind::UdpEcho => {
            let mut c = UdpEchoClient::connect(&target, CLIENT_TIMEOUT).await?;
            let t = Instant::now();
            let reply = c.round_trip(&payload).await?;
            (reply, t.elapsed())
        }
        ServiceKind::Time => {
            let format = String::from_utf8(payload.clone()).map_err(|_| {
                WebError::BadRequest("a time format is text (UTF-8), not bytes".into())
            })?;
            let mut c = TimeClient::connect(&target, CLIENT_TIMEOUT).await?;
            let t = Instant::now();
            let reply = c.query(&format).await?;
            (reply.into_bytes(), t.elapsed())
        }
        other => {
            return Err(WebError::BadRequest(format!(
                "test messages go to echo, udp-echo or time, not {other}"
            )));
        }
    };
    Ok(Json(SendReply {
        service: id,
        target,
        reply: String::from_utf8_lossy(&reply).into_owned(),
        request_hex: crate::wire::hex(&payload),
        reply_hex: crate::wire::hex(&reply),
        bytes_sent: payload.len(),
        bytes_received: reply.len(),
        rtt_us: micros(rtt),
        total_us: micros(started.elapsed()),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StickyRequest {
    messages: Vec<String>,
    /// Through a temporary proxy with this toxic (see [`lab_proxy`]).
    through: Option<lab_proxy::LabToxic>,
}

/// One side of the sticky-packet demonstration.
#[derive(Debug, Serialize)]
pub struct StickySide {
    /// The size of each write, in order.
    pub writes: Vec<usize>,
    /// Each read as the socket delivered it (text, invalid UTF-8 replaced,
    /// with the length prefixes of the framed side shown as `\u{...}`).
    pub reads: Vec<String>,
    pub read_sizes: Vec<usize>,
    /// The messages a receiver recovers: raw, it cannot tell them apart;
    /// framed, exactly what was sent.
    pub messages: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct StickyReply {
    pub target: String,
    /// The toxic both sides went through, when they did.
    pub through: Option<String>,
    pub raw: StickySide,
    pub framed: StickySide,
}

/// `POST /api/v1/sticky` (operator): writes the messages back to back to
/// `echo` twice — as they are, then each behind a 4-byte big-endian length
/// (the message protocol's framing) — and reports how the reads came back.
///
/// # Errors
/// Bad input, echo down.
pub async fn sticky(
    State(state): State<AppState>,
    _: Operator,
    body: Result<Json<StickyRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<StickyReply>, WebError> {
    let Json(req) = body?;
    if req.messages.is_empty() || req.messages.len() > MAX_STICKY_MESSAGES {
        return Err(WebError::BadRequest(format!(
            "send 1 to {MAX_STICKY_MESSAGES} messages"
        )));
    }
    if let Some(bad) = req
        .messages
        .iter()
        .find(|m| m.is_empty() || m.len() > MAX_STICKY_LEN)
    {
        return Err(WebError::BadRequest(format!(
            "each message is 1 to {MAX_STICKY_LEN} bytes; `{}` is {}",
            bad.chars().take(20).collect::<String>(),
            bad.len()
        )));
    }
    let toxic = req.through.as_ref().map(|t| t.toxic()).transpose()?;
    let target = state.target(ServiceKind::Echo)?;
    let raw: Vec<Vec<u8>> = req.messages.iter().map(|m| m.as_bytes().to_vec()).collect();
    let framed: Vec<Vec<u8>> = raw
        .iter()
        .map(|m| {
            let len = u32::try_from(m.len()).expect("messages are at most 96 bytes");
            [len.to_be_bytes().as_slice(), m].concat()
        })
        .collect();

    let (raw_reads, framed_reads) = match toxic {
        None => (
            echo_back_to_back(&state, &target, &raw, true).await?,
            echo_back_to_back(&state, &target, &framed, true).await?,
        ),
        Some(toxic) => {
            let proxy = lab_proxy::LabProxy::open(&state, &target, toxic).await?;
            let reads = async {
                Ok::<_, WebError>((
                    echo_back_to_back(&state, proxy.addr(), &raw, false).await?,
                    echo_back_to_back(&state, proxy.addr(), &framed, false).await?,
                ))
            }
            .await;
            proxy.close().await;
            reads?
        }
    };
    let shown = |chunk: &Vec<u8>| {
        String::from_utf8_lossy(chunk)
            .chars()
            .map(|c| {
                if c.is_control() {
                    format!("\\u{{{:02x}}}", u32::from(c))
                } else {
                    c.to_string()
                }
            })
            .collect::<String>()
    };
    let merged: Vec<u8> = framed_reads.concat();
    Ok(Json(StickyReply {
        target,
        through: req.through.as_ref().map(lab_proxy::LabToxic::describe),
        raw: StickySide {
            writes: raw.iter().map(Vec::len).collect(),
            reads: raw_reads.iter().map(shown).collect(),
            read_sizes: raw_reads.iter().map(Vec::len).collect(),
            messages: raw_reads
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect(),
        },
        framed: StickySide {
            writes: framed.iter().map(Vec::len).collect(),
            reads: framed_reads.iter().map(shown).collect(),
            read_sizes: framed_reads.iter().map(Vec::len).collect(),
            messages: deframe(&merged),
        },
    }))
}

/// Splits `[u32 BE length][bytes]...` back into messages.
fn deframe(mut bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while let Some((len, rest)) = bytes.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*len) as usize;
        let Some((msg, rest)) = rest.split_at_checked(len) else {
            break;
        };
        out.push(String::from_utf8_lossy(msg).into_owned());
        bytes = rest;
    }
    out
}

/// Writes `pieces` back to back on a fresh echo connection, waits until
/// the service has answered every byte, then reads: what arrives is one
/// stream, however it was written.
async fn echo_back_to_back(
    state: &AppState,
    target: &str,
    pieces: &[Vec<u8>],
    wait: bool,
) -> Result<Vec<Vec<u8>>, WebError> {
    let total: usize = pieces.iter().map(Vec::len).sum();
    let tls = state.tls(ServiceKind::Echo)?;
    let mut client = crate::service::internal::scope(EchoClient::connect_tls(
        target,
        CLIENT_TIMEOUT,
        tls.as_ref(),
    ))
    .await?;
    client.write_each(pieces).await?;
    // Through the lab's proxy echo sees the proxy, not this client, and
    // the toxic is what decides how the reads come back.
    if let Some(me) = client.local_addr().filter(|_| wait) {
        // Byte counts do not wake the stats' change signal (the data path
        // stays lock-free), so look every few milliseconds, for a while.
        let me = me.to_string();
        let answered = || {
            state.stats().snapshot().connections.iter().any(|c| {
                c.service == ServiceKind::Echo && c.peer == me && c.bytes_out >= total as u64
            })
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        while !answered() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    Ok(client.read_chunks(total).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    /// A program on the allowlist and its arguments (no shell).
    argv: Option<Vec<String>>,
    /// A shell line, when the operator enabled shell mode.
    line: Option<String>,
    timeout_ms: Option<u64>,
}

/// Output lines the exec relay holds for a browser that reads slowly (each
/// at most one 8 KiB chunk of the service's, as JSON).
pub const EXEC_QUEUE: usize = 16;

/// Limits on what a browser may ask to run (the service has its own).
const MAX_ARGS: usize = 256;
const MAX_ARGS_BYTES: usize = 16 * 1024;

/// `POST /api/v1/exec` (admin): runs a command through the exec client and
/// streams `application/x-ndjson`: `{"type":"stdout","data":"..."}` and
/// `{"type":"stderr",...}` lines as output is produced, then exactly one
/// `{"type":"exit","code":C}`, `{"type":"exit","signal":S}` or
/// `{"type":"error","error":"..."}`. Closing the response (a browser tab
/// going away) drops the connection, and the service kills the command.
///
/// # Errors
/// Bad input, exec down or refusing the key (before the stream starts).
pub async fn exec(
    State(state): State<AppState>,
    Admin(session): Admin,
    ClientIp(from): ClientIp,
    body: Result<Json<ExecRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, WebError> {
    let Json(req) = body?;
    let timeout = req.timeout_ms.map(Duration::from_millis);
    enum What {
        Run(Vec<String>),
        Shell(String),
    }
    let what = match (req.argv, req.line) {
        (Some(argv), None) if !argv.is_empty() => {
            if argv.len() > MAX_ARGS || argv.iter().map(String::len).sum::<usize>() > MAX_ARGS_BYTES
            {
                return Err(WebError::BadRequest(format!(
                    "at most {MAX_ARGS} arguments and {MAX_ARGS_BYTES} bytes"
                )));
            }
            What::Run(argv)
        }
        (None, Some(line)) if !line.trim().is_empty() => {
            if line.len() > MAX_ARGS_BYTES {
                return Err(WebError::BadRequest(format!(
                    "a shell line is at most {MAX_ARGS_BYTES} bytes"
                )));
            }
            What::Shell(line)
        }
        _ => {
            return Err(WebError::BadRequest(
                "give either a non-empty `argv` list or a shell `line`".into(),
            ));
        }
    };
    let target = state.target(ServiceKind::Exec)?;
    let tls = state.tls(ServiceKind::Exec)?;
    let client = crate::service::internal::scope(CommandClient::connect_tls(
        &target,
        state.key()?,
        CLIENT_TIMEOUT,
        tls.as_ref(),
    ))
    .await?;
    let audited = match &what {
        What::Run(argv) => crate::audit::AuditEvent::WebExec {
            user: session.user.clone(),
            peer: Some(from.to_string()),
            argv: Some(argv.clone()),
            line: None,
        },
        What::Shell(line) => crate::audit::AuditEvent::WebExec {
            user: session.user.clone(),
            peer: Some(from.to_string()),
            argv: None,
            line: Some(line.clone()),
        },
    };
    state.audit().record(audited).await;

    // A small bounded queue: when the browser reads slowly, the relay stops
    // reading the exec socket, and the service, then the command, wait for
    // it (the service's own write deadline ends a reader that stalls for
    // good). The server never buffers more than these lines of output.
    let (tx, rx) = tokio::sync::mpsc::channel::<Value>(EXEC_QUEUE);
    let cancel = state.inner.shutdown.token.clone();
    let command = match what {
        What::Run(argv) => crate::wire::exec::Command::Run { argv },
        What::Shell(line) => crate::wire::exec::Command::Shell { line },
    };
    state
        .inner
        .shutdown
        .tasks
        .spawn(relay_output(client, command, timeout, tx, cancel));
    let lines = tokio_stream::wrappers::ReceiverStream::new(rx)
        .map(|v| Ok::<_, std::convert::Infallible>(format!("{v}\n")));
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            // Ask proxies not to hold lines back.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(lines),
    )
        .into_response())
}

/// Runs `command` and passes its output on through `tx`, one line at a
/// time, then its end; waits while `tx` is full (the browser reading
/// slowly), and stops when the browser goes away or at shutdown.
async fn relay_output(
    mut client: CommandClient,
    command: crate::wire::exec::Command,
    timeout: Option<Duration>,
    tx: tokio::sync::mpsc::Sender<Value>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let started = Instant::now();
    let out = tx.clone();
    let run = async move {
        client.start(command, timeout).await.map_err(Some)?;
        let mut chunk = Vec::new();
        loop {
            let kind = match client.next_output(&mut chunk).await.map_err(Some)? {
                Step::Output(OutputKind::Stdout) => "stdout",
                Step::Output(OutputKind::Stderr) => "stderr",
                Step::Done(outcome) => return Ok::<_, Option<ClientError>>(outcome),
            };
            let line = json!({"type": kind, "data": String::from_utf8_lossy(&chunk)});
            if out.send(line).await.is_err() {
                // The browser went away; dropping the client ends the
                // connection, and the service kills the command.
                return Err(None);
            }
        }
    };
    let mut last = tokio::select! {
        () = tx.closed() => return, // the browser went away: drop the connection
        () = cancel.cancelled() => json!({"type": "error", "error": "the server is shutting down"}),
        outcome = run => match outcome {
            Ok(CommandOutcome::Exit(code)) => json!({"type": "exit", "code": code}),
            Ok(CommandOutcome::Signal(signal)) => json!({"type": "exit", "signal": signal}),
            Ok(CommandOutcome::Error(error)) => json!({"type": "error", "error": error}),
            Err(Some(e)) => json!({"type": "error", "error": e.to_string()}),
            Err(None) => return,
        },
    };
    // The C/S leg as the exec client saw it: request to final message.
    last["cs_us"] = micros(started.elapsed()).into();
    let _ = tx.send(last).await;
}

#[cfg(test)]
mod tests;
