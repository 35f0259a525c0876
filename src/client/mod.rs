//! One client per service, shared by the command line and the dashboard, so
//! whatever the browser does crosses a real socket, as a C/S client would.
//!
//! Addresses are given as text: `HOST:PORT`, `[v6]:PORT`, a bare `PORT`
//! (meaning 127.0.0.1), or `unix:/path` for TCP services.

mod echo;
mod exec;
mod files;
pub mod health;
mod login;
pub(crate) mod udp;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use echo::EchoClient;
pub use exec::{CommandClient, CommandOutcome, OutputKind};
pub use files::{ClassicClient, FilesClient, Stored};
pub use login::{LoginClient, LoginOutcome};
pub use udp::{TimeClient, UdpEchoClient};

/// Why a request failed, worded for the person who made it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad address `{0}`: expected HOST:PORT, [IPv6]:PORT, PORT or unix:/path")]
    BadAddress(String),
    #[error("cannot resolve `{target}`: {source}")]
    Resolve {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connection refused by {addr} — is `switchboard serve` running?")]
    Refused { addr: String },
    #[error("no UDP service at {addr} (port unreachable) — is `switchboard serve` running?")]
    NoUdpService { addr: String },
    #[error("no reply from {addr} within {after:?}")]
    Timeout { addr: String, after: Duration },
    #[error("{addr} closed the connection{detail}")]
    Closed { addr: String, detail: String },
    #[error("{what} is {len} bytes; the most one datagram can carry is {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{addr} refused our key: {reason}")]
    AuthRejected { addr: String, reason: String },
    #[error("{addr} refused: {reason}")]
    Rejected { addr: String, reason: String },
    #[error("SHA-256 mismatch for {name}: ours {ours}, the server's {theirs}")]
    Integrity {
        name: String,
        ours: String,
        theirs: String,
    },
    #[error("{path}: {source}")]
    Local {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr} broke the protocol: {detail}")]
    Protocol { addr: String, detail: String },
    #[error("{addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    /// Maps an I/O error from talking to `addr` to the clearest variant.
    pub(crate) fn io(addr: &str, source: std::io::Error) -> Self {
        let addr = addr.to_owned();
        match source.kind() {
            std::io::ErrorKind::ConnectionRefused => ClientError::Refused { addr },
            std::io::ErrorKind::NotFound => ClientError::Refused { addr },
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe => ClientError::Closed {
                addr,
                detail: String::new(),
            },
            _ => ClientError::Io { addr, source },
        }
    }
}

/// A service address, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// What a host name resolved to, with the text it came from.
    Inet(Vec<SocketAddr>, String),
    Unix(PathBuf),
}

impl Target {
    /// Parses and resolves an address.
    ///
    /// # Errors
    /// [`ClientError::BadAddress`] or [`ClientError::Resolve`].
    pub async fn resolve(text: &str) -> Result<Target, ClientError> {
        let text = text.trim();
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(ClientError::BadAddress(text.to_owned()));
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        if let Ok(port) = text.parse::<u16>() {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            return Ok(Target::Inet(vec![addr], addr.to_string()));
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Target::Inet(vec![addr], addr.to_string()));
        }
        if !text.contains(':') {
            return Err(ClientError::BadAddress(text.to_owned()));
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(text)
            .await
            .map_err(|source| ClientError::Resolve {
                target: text.to_owned(),
                source,
            })?
            .collect();
        if addrs.is_empty() {
            return Err(ClientError::BadAddress(text.to_owned()));
        }
        Ok(Target::Inet(addrs, text.to_owned()))
    }

    /// How the address is shown in messages.
    pub fn label(&self) -> String {
        match self {
            Target::Inet(_, label) => label.clone(),
            Target::Unix(p) => format!("unix:{}", p.display()),
        }
    }
}

/// Runs `fut` with a deadline, turning expiry into [`ClientError::Timeout`].
async fn deadline<T>(
    addr: &str,
    after: Duration,
    fut: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(after, fut).await.unwrap_or_else(|_| {
        Err(ClientError::Timeout {
            addr: addr.to_owned(),
            after,
        })
    })
}

/// A connected stream of either kind.
pub(crate) type Stream = tokio_util::either::Either<tokio::net::TcpStream, tokio::net::UnixStream>;

/// Connects to a TCP or unix-socket service, trying each resolved address.
pub(crate) async fn connect_stream(
    target: &str,
    timeout: Duration,
) -> Result<(Stream, String), ClientError> {
    use tokio_util::either::Either;
    let target = Target::resolve(target).await?;
    let addr = target.label();
    let stream = deadline(&addr, timeout, async {
        match &target {
            Target::Unix(path) => tokio::net::UnixStream::connect(path)
                .await
                .map(Either::Right)
                .map_err(|e| ClientError::io(&addr, e)),
            Target::Inet(addrs, _) => {
                let mut last = None;
                for a in addrs {
                    match tokio::net::TcpStream::connect(a).await {
                        Ok(s) => {
                            s.set_nodelay(true).map_err(|e| ClientError::io(&addr, e))?;
                            return Ok(Either::Left(s));
                        }
                        Err(e) => last = Some(ClientError::io(&a.to_string(), e)),
                    }
                }
                Err(last.unwrap_or_else(|| ClientError::BadAddress(addr.clone())))
            }
        }
    })
    .await?;
    Ok((stream, addr))
}
