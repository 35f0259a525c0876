//! Replay a captured conversation: send the client's side of a TCP stream
//! or UDP flow to an address again, segment by segment, and compare what
//! comes back with what the server said when it was recorded.
//!
//! - [`read_file`] / [`conversation`] turn a pcap or pcapng file (our own
//!   exports, tcpdump's, tshark's) into a [`Conversation`]: `read.rs` walks
//!   the file's blocks, `packet.rs` decodes each frame's headers,
//!   `conversation.rs` picks the stream and puts each side in order.
//! - [`run`] replays a conversation against a target and returns an
//!   [`Outcome`] with the new replies and a [`Diff`] against the recording.
//!   It is the whole engine: the CLI's `switchboard replay` calls it, and
//!   so can the dashboard.
//!
//! One write per client segment, in order (with `--timing`, at the
//! recorded gaps, each capped at [`Limits::max_gap`]), so the server sees
//! the original boundaries as far as the network keeps them. A TCP client
//! that half-closed in the capture half-closes here too. Replies are read
//! while sending, and reading stops when the server closes, when the
//! recorded amount has come back and nothing more arrives for
//! [`Limits::settle`], when less came back and nothing more arrives for
//! [`Limits::idle`], at [`Limits::max_reply_bytes`], or at
//! [`Limits::timeout`], which bounds the whole replay. UDP waits up to
//! [`Limits::udp_wait`] after each datagram for as many datagrams as the
//! capture recorded after it.
//!
//! Not done: IP fragment reassembly; TLS (a capture of TLS replays its
//! ciphertext, which no server will accept twice); waiting for the
//! server's reply before the next client segment (segments go back to
//! back unless `--timing`).

mod conversation;
pub mod diff;
mod packet;
mod read;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

pub use conversation::{
    Conversation, Dir, MAX_STREAMS, ReadOptions, Segment, StreamInfo, conversation, streams,
};
pub use diff::Diff;
pub use packet::Proto;
pub use read::ReadError;

use crate::client::ClientError;

/// Why a replay could not be done (as opposed to done and found different).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Connect(#[from] ClientError),
    #[error("the capture's client sent no UDP datagram: nothing to replay")]
    NothingToSend,
    #[error("{addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// How a replay is paced and bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall time for the whole replay, connecting included.
    pub timeout: Duration,
    /// Keep the recorded gaps between client segments.
    pub timing: bool,
    /// Longest gap kept with `timing`.
    pub max_gap: Duration,
    /// Reply bytes kept; reading stops there.
    pub max_reply_bytes: usize,
    /// Reply reads (TCP) or datagrams (UDP) kept; reading stops there.
    pub max_replies: usize,
    /// TCP: once everything is sent and as many bytes came back as were
    /// recorded, how long a silence ends the replay.
    pub settle: Duration,
    /// TCP: once everything is sent, how long a silence ends the replay
    /// while fewer bytes than recorded came back.
    pub idle: Duration,
    /// UDP: how long to wait for the replies to each datagram.
    pub udp_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(30),
            timing: false,
            max_gap: Duration::from_secs(10),
            max_reply_bytes: 16 << 20,
            max_replies: 100_000,
            settle: Duration::from_millis(500),
            idle: Duration::from_secs(2),
            udp_wait: Duration::from_secs(2),
        }
    }
}

/// Reads a capture file, at most `options.max_file_bytes` of it, and the
/// conversation in it.
///
/// # Errors
/// [`ReadError`]: the file cannot be read, is too large, or holds no
/// single stream to replay.
pub fn read_file(path: &std::path::Path, options: &ReadOptions) -> Result<Conversation, ReadError> {
    use std::io::Read;
    let io = |e: std::io::Error| ReadError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    // A FIFO, a device or a socket would be read until its writer stops,
    // maybe never: only a regular file (through symlinks) is a capture.
    let kind = std::fs::metadata(path).map_err(io)?.file_type();
    if !kind.is_file() {
        return Err(ReadError::Io {
            path: path.display().to_string(),
            reason: "not a regular file (a FIFO, device or folder cannot be replayed)".into(),
        });
    }
    // Non-blocking, so a FIFO swapped in after the check above cannot
    // hold the open either (a regular file ignores the flag).
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(path)
            .map_err(io)?
    };
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(ReadError::Io {
            path: path.display().to_string(),
            reason: "not a regular file".into(),
        });
    }
    let len = meta.len();
    if len > options.max_file_bytes {
        return Err(ReadError::TooLarge {
            len,
            max: options.max_file_bytes,
        });
    }
    // The size can change between the check and the read (a capture
    // still being written): read one byte past the limit to notice.
    let mut data = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(options.max_file_bytes.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(io)?;
    if data.len() as u64 > options.max_file_bytes {
        return Err(ReadError::TooLarge {
            len: data.len() as u64,
            max: options.max_file_bytes,
        });
    }
    conversation(&data, options)
}

/// Why reading replies stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// TCP: the server closed the connection.
    ServerClosed,
    /// TCP: the server reset the connection.
    ServerReset,
    /// TCP: the recorded amount came back, then silence for `settle`.
    Settled,
    /// TCP: less than the recorded amount came back, then silence for `idle`.
    Idle,
    /// UDP: every datagram got as many replies as recorded.
    Answered,
    /// UDP: some datagram got fewer replies than recorded within `udp_wait`.
    NotAnswered,
    /// The reply limit was reached.
    ReplyLimit,
    /// The wall-time limit was reached.
    Timeout,
}

/// Bytes sent or received, with when (µs from the start of the replay, or
/// of the capture's stream for recorded ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chunk {
    pub t_us: u64,
    pub len: usize,
    #[serde(serialize_with = "as_hex")]
    pub bytes: Vec<u8>,
    /// Printable ASCII, the rest as `.`.
    pub text: String,
}

impl Chunk {
    fn new(t_us: u64, bytes: Vec<u8>) -> Self {
        Chunk {
            t_us,
            len: bytes.len(),
            text: diff::printable(&bytes),
            bytes,
        }
    }
}

fn as_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::wire::hex(bytes))
}

/// What a replay did and found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub proto: Proto,
    pub target: String,
    pub timing: bool,
    /// The client segments sent (times as sent).
    pub sent: Vec<Chunk>,
    /// The server's segments in the capture (times as recorded).
    pub recorded: Vec<Chunk>,
    /// What came back: one per read (TCP) or datagram (UDP).
    pub replies: Vec<Chunk>,
    pub ended: Ended,
    /// A write that failed (the server closed first), if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_error: Option<String>,
    pub elapsed_us: u64,
    pub diff: Diff,
}

impl Outcome {
    /// Whether the new replies equal the recorded ones.
    pub fn equal(&self) -> bool {
        self.diff.equal
    }
}

/// When each client segment is sent, from the replay's start: at once, or
/// at the recorded gaps (each capped).
fn schedule<'a>(conv: &'a Conversation, limits: &Limits) -> Vec<(Duration, &'a [u8])> {
    let mut at = Duration::ZERO;
    let mut last: Option<u64> = None;
    conv.client_segments()
        .map(|s| {
            if limits.timing {
                if let Some(prev) = last {
                    at += Duration::from_micros(s.t_us.saturating_sub(prev)).min(limits.max_gap);
                }
                last = Some(s.t_us);
            }
            (at, s.bytes.as_slice())
        })
        .collect()
}

/// Waits until `at` after the first send, and returns the time to stamp
/// the send with. The first send sets the origin, so each recorded gap is
/// a lower bound on the gap between the stamped times.
async fn send_time(first: &mut Option<Instant>, at: Duration) -> Instant {
    match *first {
        None => *first.insert(Instant::now()),
        Some(origin) => {
            tokio::time::sleep_until(origin + at).await;
            Instant::now()
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Replays `conv`'s client side to `target` (`HOST:PORT`, `[v6]:PORT`,
/// `PORT`, or `unix:/path` for TCP) and compares the replies with the
/// recording.
///
/// # Errors
/// [`ReplayError`] when nothing could be replayed: no connection, a
/// connection the service turned away with its refusal line, no datagram
/// to send. A server that answers differently, late or not at all is an
/// [`Outcome`], not an error.
pub async fn run(
    conv: &Conversation,
    target: &str,
    limits: &Limits,
) -> Result<Outcome, ReplayError> {
    let start = Instant::now();
    let recorded: Vec<Chunk> = conv
        .server_segments()
        .map(|s| Chunk::new(s.t_us, s.bytes.clone()))
        .collect();
    let mut outcome = match conv.proto {
        Proto::Tcp => tcp(conv, target, limits, start).await?,
        Proto::Udp => udp(conv, target, limits, start).await?,
    };
    outcome.diff = match conv.proto {
        Proto::Tcp => {
            let old: Vec<u8> = recorded.iter().flat_map(|c| c.bytes.clone()).collect();
            let new: Vec<u8> = outcome
                .replies
                .iter()
                .flat_map(|c| c.bytes.clone())
                .collect();
            // Refused before it was served (a cap, a port behind a proxy):
            // nothing was replayed to compare. A recording of a refusal
            // replays as itself.
            if !old.starts_with(crate::client::refusal::PREFIX)
                && let Some(away) = crate::client::refusal::in_reply(&outcome.target, &new)
            {
                return Err(away.into());
            }
            diff::stream(&old, &new)
        }
        Proto::Udp => {
            let old: Vec<&[u8]> = recorded.iter().map(|c| c.bytes.as_slice()).collect();
            let new: Vec<&[u8]> = outcome.replies.iter().map(|c| c.bytes.as_slice()).collect();
            diff::datagrams(&old, &new)
        }
    };
    outcome.recorded = recorded;
    outcome.elapsed_us = micros(start.elapsed());
    Ok(outcome)
}

fn blank(proto: Proto, target: String, timing: bool, ended: Ended) -> Outcome {
    Outcome {
        proto,
        target,
        timing,
        sent: Vec::new(),
        recorded: Vec::new(),
        replies: Vec::new(),
        ended,
        send_error: None,
        elapsed_us: 0,
        diff: diff::stream(&[], &[]),
    }
}

/// Keeps a reply within the limits; false once they are reached.
fn keep(replies: &mut Vec<Chunk>, total: &mut usize, limits: &Limits, t: u64, b: &[u8]) -> bool {
    let room = limits.max_reply_bytes.saturating_sub(*total);
    let b = &b[..b.len().min(room)];
    *total += b.len();
    replies.push(Chunk::new(t, b.to_vec()));
    *total < limits.max_reply_bytes && replies.len() < limits.max_replies
}

async fn tcp(
    conv: &Conversation,
    target: &str,
    limits: &Limits,
    start: Instant,
) -> Result<Outcome, ReplayError> {
    let deadline = start + limits.timeout;
    let (stream, addr) = crate::client::connect_stream(target, limits.timeout).await?;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let plan = schedule(conv, limits);
    let recorded_len: usize = conv.server_segments().map(|s| s.bytes.len()).sum();
    // The client's FIN, after its last segment (at the recorded gap).
    let fin_after = conv.client_fin_us.map(|fin| {
        let last = conv.client_segments().last().map_or(0, |s| s.t_us);
        let gap = if limits.timing {
            Duration::from_micros(fin.saturating_sub(last)).min(limits.max_gap)
        } else {
            Duration::ZERO
        };
        plan.last().map_or(Duration::ZERO, |p| p.0) + gap
    });
    // A mutex, not a RefCell, so the replay's future is `Send` (the
    // dashboard runs it in a request); never contended.
    let sent = std::sync::Mutex::new(Vec::with_capacity(plan.len()));
    let writer = async {
        let mut first = None;
        for (at, bytes) in &plan {
            let now = send_time(&mut first, *at).await;
            wr.write_all(bytes).await?;
            crate::sync::lock(&sent).push(Chunk::new(micros(now - start), bytes.to_vec()));
        }
        if let Some(after) = fin_after {
            send_time(&mut first, after).await;
            wr.shutdown().await?;
        }
        Ok::<(), std::io::Error>(())
    };
    let mut writer = std::pin::pin!(writer);
    let mut out = blank(Proto::Tcp, addr, limits.timing, Ended::Timeout);
    let mut writing = true;
    let mut total = 0usize;
    let mut last_event = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    out.ended = loop {
        let enough = total >= recorded_len;
        let quiet = if enough { limits.settle } else { limits.idle };
        tokio::select! {
            done = &mut writer, if writing => {
                writing = false;
                last_event = Instant::now();
                if let Err(e) = done {
                    out.send_error = Some(e.to_string());
                }
            }
            read = rd.read(&mut buf) => match read {
                Ok(0) => break Ended::ServerClosed,
                Ok(n) => {
                    last_event = Instant::now();
                    let t = micros(start.elapsed());
                    if !keep(&mut out.replies, &mut total, limits, t, &buf[..n]) {
                        break Ended::ReplyLimit;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    break Ended::ServerReset;
                }
                Err(source) => return Err(ReplayError::Io { addr: out.target, source }),
            },
            () = tokio::time::sleep_until(last_event + quiet), if !writing => {
                break if enough { Ended::Settled } else { Ended::Idle };
            }
            () = tokio::time::sleep_until(deadline) => break Ended::Timeout,
        }
    };
    out.sent = std::mem::take(&mut *crate::sync::lock(&sent));
    Ok(out)
}

async fn udp(
    conv: &Conversation,
    target: &str,
    limits: &Limits,
    start: Instant,
) -> Result<Outcome, ReplayError> {
    use crate::client::udp::MAX_UDP_PAYLOAD;
    let deadline = start + limits.timeout;
    let plan = schedule(conv, limits);
    if plan.is_empty() {
        return Err(ReplayError::NothingToSend);
    }
    // How many server datagrams the capture has after each client one,
    // before the next.
    let mut expected = vec![0usize; plan.len()];
    let mut client_seen = 0usize;
    for s in &conv.segments {
        match s.dir {
            Dir::Client => client_seen += 1,
            Dir::Server if client_seen > 0 => expected[client_seen - 1] += 1,
            Dir::Server => {}
        }
    }
    let (socket, addr) =
        tokio::time::timeout_at(deadline, crate::client::udp::connected_socket(target))
            .await
            .map_err(|_| ClientError::Timeout {
                addr: target.to_owned(),
                after: limits.timeout,
            })??;
    let unreachable = |addr: &str, e: std::io::Error| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => ReplayError::Connect(ClientError::NoUdpService {
            addr: addr.to_owned(),
        }),
        _ => ReplayError::Io {
            addr: addr.to_owned(),
            source: e,
        },
    };
    let mut first = None;
    let mut out = blank(Proto::Udp, addr, limits.timing, Ended::Answered);
    let mut total = 0usize;
    let mut buf = vec![0u8; 65_536];
    'send: for ((at, bytes), want) in plan.iter().zip(expected) {
        if bytes.len() > MAX_UDP_PAYLOAD {
            return Err(ClientError::TooLarge {
                what: "a recorded datagram",
                len: bytes.len(),
                max: MAX_UDP_PAYLOAD,
            }
            .into());
        }
        let Ok(now) = tokio::time::timeout_at(deadline, send_time(&mut first, *at)).await else {
            out.ended = Ended::Timeout;
            break;
        };
        let t = micros(now - start);
        socket
            .send(bytes)
            .await
            .map_err(|e| unreachable(&out.target, e))?;
        out.sent.push(Chunk::new(t, bytes.to_vec()));
        let window = (Instant::now() + limits.udp_wait).min(deadline);
        for _ in 0..want {
            match tokio::time::timeout_at(window, socket.recv(&mut buf)).await {
                Ok(Ok(n)) => {
                    let t = micros(start.elapsed());
                    if !keep(&mut out.replies, &mut total, limits, t, &buf[..n]) {
                        out.ended = Ended::ReplyLimit;
                        break 'send;
                    }
                }
                Ok(Err(e)) => return Err(unreachable(&out.target, e)),
                Err(_) if window >= deadline => {
                    out.ended = Ended::Timeout;
                    break 'send;
                }
                Err(_) => {
                    out.ended = Ended::NotAnswered;
                    break;
                }
            }
        }
    }
    Ok(out)
}
