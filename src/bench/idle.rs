//! `bench idle`: opens N connections, holds them without a byte sent, then
//! reports how many the server kept open and, with `--server-pid`, what
//! each one cost it in resident memory.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::task::JoinSet;

use std::net::SocketAddr;

use tokio_util::either::Either;

use super::{BenchError, CONNECTS_IN_FLIGHT, ERROR_SAMPLES, MAX_IDLE, ProcSample};
use crate::client::{ClientError, Stream, Target, connect_stream};

/// What `bench idle` does.
#[derive(Debug, Clone)]
pub struct IdlePlan {
    pub connections: usize,
    /// How long to hold them all before looking.
    pub hold: Duration,
    pub timeout: Duration,
    /// Connect from this many loopback addresses (127.0.0.1, .2, ...), so
    /// more connections than one source's ephemeral ports (about 28,000)
    /// can be held against one server address. 1: the system's choice.
    pub sources: u8,
}

/// What it found.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    pub target: String,
    pub requested: usize,
    pub opened: usize,
    pub stayed_open: usize,
    pub closed_by_server: usize,
    pub connect_s: f64,
    pub hold_s: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
    /// The server's refusal lines among the closed ones, with counts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refusals: Vec<super::refusal::Refusal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<IdleServer>,
}

/// The server's memory before and while holding the connections.
#[derive(Debug, Clone, Serialize)]
pub struct IdleServer {
    pub pid: u32,
    pub rss_before_kib: u64,
    pub rss_held_kib: u64,
    /// (held − before) / connections opened.
    pub rss_per_connection_bytes: f64,
}

impl IdleReport {
    pub fn text(&self) -> String {
        let mut out = format!(
            "bench idle -> {}: {} of {} connections opened in {:.2} s, held {:.1} s\n  stayed open {}   closed by the server {}\n",
            self.target,
            self.opened,
            self.requested,
            self.connect_s,
            self.hold_s,
            self.stayed_open,
            self.closed_by_server
        );
        for e in &self.error_samples {
            out += &format!("  error: {e}\n");
        }
        out += &super::refusal::text(&self.refusals);
        if let Some(s) = &self.server {
            out += &format!(
                "  server    pid {}: RSS {} -> {} KiB, {:.0} bytes per connection\n",
                s.pid, s.rss_before_kib, s.rss_held_kib, s.rss_per_connection_bytes
            );
        }
        out
    }
}

/// What became of a held connection.
enum Held {
    Open,
    /// Closed by the server, with its refusal line if it sent one.
    Closed(Option<String>),
}

/// Bytes of a greeting read while looking; past them, the connection is
/// taken as open (a server that talks is not one that closed).
const MAX_GREETING: usize = 16 * 1024;

/// Still open? Reads what is waiting without waiting for more: nothing (or
/// a greeting) then no EOF means open; EOF or an error means the server
/// closed it; a whole refusal line (`switchboard: too many connections
/// …`) means refused, even if its close has not arrived yet.
async fn look(stream: &mut Stream) -> Held {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    poll_fn(|cx| {
        loop {
            let mut buf = ReadBuf::new(&mut chunk);
            let closed = |seen: &[u8]| Poll::Ready(Held::Closed(super::refusal::line_in(seen)));
            match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                Poll::Pending => {
                    let refused = seen.contains(&b'\n') && super::refusal::line_in(&seen).is_some();
                    return if refused {
                        closed(&seen)
                    } else {
                        Poll::Ready(Held::Open)
                    };
                }
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return closed(&seen),
                Poll::Ready(Ok(())) => {
                    seen.extend_from_slice(buf.filled());
                    if seen.len() >= MAX_GREETING {
                        return Poll::Ready(Held::Open);
                    }
                }
                Poll::Ready(Err(_)) => return closed(&seen),
            }
        }
    })
    .await
}

/// Most loopback source addresses `bench idle` spreads over.
pub const MAX_SOURCES: u8 = 64;

/// The target as one IPv4 loopback address: spreading connections over
/// source addresses is for loopback benches only.
async fn loopback_v4(addr: &str) -> Result<SocketAddr, BenchError> {
    let resolved = match Target::resolve(addr).await? {
        Target::Inet(addrs, _) => addrs.into_iter().find(SocketAddr::is_ipv4),
        Target::Unix(_) => None,
    };
    match resolved {
        Some(a) if a.ip().is_loopback() => Ok(a),
        _ => Err(BenchError::Bad(format!(
            "--sources needs an IPv4 loopback target (127.x.x.x:PORT), not {addr}"
        ))),
    }
}

/// A plain connection from `127.0.0.<source>` (any port) to `server`.
async fn connect_from(
    source: u8,
    server: SocketAddr,
    timeout: Duration,
) -> Result<Stream, ClientError> {
    let label = server.to_string();
    let connect = async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, source], 0)))?;
        socket.connect(server).await
    };
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(tcp)) => Ok(Stream::Plain(Either::Left(tcp))),
        Ok(Err(e)) => Err(ClientError::io(
            &format!("{label} from 127.0.0.{source}"),
            e,
        )),
        Err(_) => Err(ClientError::io(
            &label,
            std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
        )),
    }
}

/// Runs the idle bench.
///
/// # Errors
/// Bad bounds, or not one connection could be opened.
pub async fn idle(
    addr: &str,
    plan: &IdlePlan,
    server_pid: Option<u32>,
) -> Result<IdleReport, BenchError> {
    if plan.connections == 0 || plan.connections > MAX_IDLE {
        return Err(BenchError::Bad(format!(
            "connections must be 1 to {MAX_IDLE}"
        )));
    }
    if plan.sources == 0 || plan.sources > MAX_SOURCES {
        return Err(BenchError::Bad(format!(
            "sources must be 1 to {MAX_SOURCES}"
        )));
    }
    if plan.hold > super::MAX_DURATION {
        return Err(BenchError::Bad("hold at most 600 s".into()));
    }
    let server = if plan.sources > 1 {
        Some(loopback_v4(addr).await?)
    } else {
        None
    };
    let before = server_pid.and_then(ProcSample::read);
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECTS_IN_FLIGHT));
    let mut connecting = JoinSet::new();
    for i in 0..plan.connections {
        let (gate, addr, timeout) = (Arc::clone(&gate), addr.to_owned(), plan.timeout);
        // Round-robin over the sources: 127.0.0.1, 127.0.0.2, ...
        let source = u8::try_from(i % usize::from(plan.sources)).expect("sources is a u8") + 1;
        connecting.spawn(async move {
            let _permit = gate.acquire_owned().await;
            match server {
                Some(server) => connect_from(source, server, timeout).await,
                None => connect_stream(&addr, timeout).await.map(|(s, _)| s),
            }
        });
    }
    let mut streams = Vec::with_capacity(plan.connections);
    let mut errors: Vec<String> = Vec::new();
    while let Some(joined) = connecting.join_next().await {
        match joined {
            Ok(Ok(s)) => streams.push(s),
            Ok(Err(e)) => {
                let e = e.to_string();
                if errors.len() < ERROR_SAMPLES && !errors.contains(&e) {
                    errors.push(e);
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    let connect_s = started.elapsed().as_secs_f64();
    if streams.is_empty() {
        return Err(BenchError::NoConnections(errors.join("; ")));
    }
    let held = Instant::now();
    tokio::time::sleep(plan.hold).await;
    let during = server_pid.and_then(ProcSample::read);
    let mut stayed_open = 0;
    let refusals = super::refusal::Refusals::default();
    for s in &mut streams {
        // Unconstrained: past tokio's cooperative budget (128 reads a
        // task tick) a read answers "not ready" whatever the socket holds,
        // and every connection after that looked open (3,000 refused ones
        // were reported as 2,936 held).
        match tokio::task::unconstrained(look(s)).await {
            Held::Open => stayed_open += 1,
            Held::Closed(Some(line)) => refusals.note(&line),
            Held::Closed(None) => {}
        }
    }
    let opened = streams.len();
    let server = match (server_pid, before, during) {
        (Some(pid), Some(b), Some(d)) => Some(IdleServer {
            pid,
            rss_before_kib: b.rss_kib(),
            rss_held_kib: d.rss_kib(),
            rss_per_connection_bytes: d.rss_kib().saturating_sub(b.rss_kib()) as f64 * 1024.0
                / opened as f64,
        }),
        _ => None,
    };
    Ok(IdleReport {
        target: addr.to_owned(),
        requested: plan.connections,
        opened,
        stayed_open,
        closed_by_server: opened - stayed_open,
        connect_s,
        hold_s: held.elapsed().as_secs_f64(),
        error_samples: errors,
        refusals: refusals.snapshot(),
        server,
    })
}
