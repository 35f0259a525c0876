//! One client per service, shared by the command line and the dashboard, so
//! whatever the browser does crosses a real socket, as a C/S client would.
//!
//! Addresses are given as text: `HOST:PORT`, `[v6]:PORT`, a bare `PORT`
//! (meaning 127.0.0.1), or `unix:/path` for TCP services.
//!
//! TCP clients may speak TLS ([`crate::tls::ClientTls`], the CLI's `--tls`
//! with `--ca` or `--pin`): [`connect_stream_tls`] runs the handshake within
//! the same connect deadline and hands the client a TLS stream
//! ([`crate::stream::MaybeTls::Tls`]).

/// `connect` and `connect_tls` for a client that is one stream with its
/// `addr` and `timeout` (plus `field: init` for any more), or (`authenticated`)
/// one message connection with its `addr`: the clients of each shape connect
/// one way.
macro_rules! stream_client_connect {
    // A server that speaks first (login's prompt): a plain connection that
    // meets a silent TLS port says so at once (`client::detect`).
    (greeted $client:ident $(, $field:ident: $init:expr)*) => {
        stream_client_connect!(@with crate::client::detect::connect_greeted, $client $(, $field: $init)*);
    };
    ($client:ident $(, $field:ident: $init:expr)*) => {
        stream_client_connect!(@with crate::client::connect_stream_tls, $client $(, $field: $init)*);
    };
    (@with $connect:path, $client:ident $(, $field:ident: $init:expr)*) => {
        /// Connects, trying each resolved address in turn.
        ///
        /// # Errors
        /// [`ClientError::Refused`](crate::client::ClientError::Refused) when
        /// nothing listens there, [`ClientError::Timeout`](crate::client::ClientError::Timeout)
        /// when the connection is not made in `timeout`.
        pub async fn connect(
            target: &str,
            timeout: std::time::Duration,
        ) -> Result<Self, crate::client::ClientError> {
            Self::connect_tls(target, timeout, None).await
        }

        /// [`Self::connect`], speaking TLS with `tls` when given.
        ///
        /// # Errors
        /// As [`Self::connect`], or [`ClientError::Tls`](crate::client::ClientError::Tls)
        /// for a refused certificate.
        pub async fn connect_tls(
            target: &str,
            timeout: std::time::Duration,
            tls: Option<&crate::tls::ClientTls>,
        ) -> Result<Self, crate::client::ClientError> {
            let (stream, addr) = $connect(target, timeout, tls).await?;
            Ok($client {
                stream,
                addr,
                timeout,
                $($field: $init,)*
            })
        }
    };
    // The same for a client of a message service, which authenticates with
    // `key` after connecting; `timeout` names the field that keeps it, if any.
    (authenticated $client:ident $(, $timeout:ident)?) => {
        /// Connects and authenticates with `key`.
        ///
        /// # Errors
        /// Connection errors,
        /// [`ClientError::AuthRejected`](crate::client::ClientError::AuthRejected)
        /// for a wrong key, or
        /// [`ClientError::TurnedAway`](crate::client::ClientError::TurnedAway)
        /// when the service refused the connection (a cap, a port behind a proxy).
        pub async fn connect(
            target: &str,
            key: &[u8],
            timeout: std::time::Duration,
        ) -> Result<Self, crate::client::ClientError> {
            Self::connect_tls(target, key, timeout, None).await
        }

        /// [`Self::connect`], speaking TLS with `tls` when given.
        ///
        /// # Errors
        /// As [`Self::connect`], or [`ClientError::Tls`](crate::client::ClientError::Tls)
        /// for a refused certificate.
        pub async fn connect_tls(
            target: &str,
            key: &[u8],
            timeout: std::time::Duration,
            tls: Option<&crate::tls::ClientTls>,
        ) -> Result<Self, crate::client::ClientError> {
            let (conn, addr) =
                crate::client::exec::connect_authenticated(target, key, timeout, tls).await?;
            Ok($client {
                conn,
                addr,
                $($timeout: timeout,)?
            })
        }
    };
}

mod detect;
pub(crate) use detect::is_tls_answer;
mod echo;
mod exec;
mod exec_tutorial;
mod files;
pub mod health;
mod login;
pub(crate) mod refusal;
pub(crate) mod udp;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::either::Either;

pub use echo::EchoClient;
pub use exec::{CommandClient, CommandOutcome, OutputKind, Step};
pub use exec_tutorial::{RAW_READ, TutorialExecClient};
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
    /// The service turned the connection away before serving it (its
    /// connection limits, or a port that takes connections through a
    /// trusted proxy only), with the reason its refusal line or TLS alert
    /// gave (`client::refusal`): unlike [`Self::Rejected`], no request was
    /// read.
    #[error("{addr} turned the connection away: {reason}")]
    TurnedAway { addr: String, reason: String },
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
    #[error("TLS with {addr} failed: {reason}")]
    Tls { addr: String, reason: String },
    /// A plain client met TLS: `seen` names the certificate shown.
    #[error("{addr} speaks TLS{seen}: {hint}")]
    SpeaksTls {
        addr: String,
        seen: String,
        hint: String,
    },
    #[error(
        "{addr} does not speak TLS ({detail}): drop --tls, or turn TLS on for that service \
         (services.NAME.tls = true)"
    )]
    NotTls { addr: String, detail: String },
    #[error(transparent)]
    TlsSetup(#[from] crate::tls::TlsError),
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

pub(crate) use crate::stream::Plain;

/// A connected stream: a plain socket, or TLS over one.
pub(crate) type Stream = crate::stream::MaybeTls<tokio_rustls::client::TlsStream<Plain>>;

impl Stream {
    /// This end's address over TCP.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        let plain = match self {
            Stream::Plain(p) => p,
            Stream::Tls(t) => t.get_ref().0,
        };
        match plain {
            Either::Left(tcp) => tcp.local_addr().ok(),
            Either::Right(_) => None,
        }
    }
}

/// A failed TLS handshake with `addr`, with rustls's reason (an expired
/// certificate, a name it is not valid for, a pin that does not match).
pub(crate) fn tls_failed(addr: &str, e: &std::io::Error) -> ClientError {
    if let Some(plain) = detect::not_tls(addr, e) {
        return plain;
    }
    if let Some(refused) = detect::turned_away(addr, e) {
        return refused;
    }
    ClientError::Tls {
        addr: addr.to_owned(),
        reason: crate::tls::describe(e),
    }
}

/// Connects to a TCP or unix-socket service, trying each resolved address.
pub(crate) async fn connect_stream(
    target: &str,
    timeout: Duration,
) -> Result<(Stream, String), ClientError> {
    connect_stream_tls(target, timeout, None).await
}

/// The name a certificate is checked against: the host as dialled.
fn server_name(target: &Target) -> String {
    match target {
        Target::Unix(_) => "localhost".to_owned(),
        Target::Inet(addrs, label) => match label.parse::<SocketAddr>() {
            Ok(a) => a.ip().to_string(),
            Err(_) => match label.rsplit_once(':') {
                Some((host, _)) => host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                None => addrs
                    .first()
                    .map_or_else(|| label.clone(), |a| a.ip().to_string()),
            },
        },
    }
}

/// [`connect_stream`], then a TLS handshake when `tls` is given, all
/// within `timeout`.
pub(crate) async fn connect_stream_tls(
    target: &str,
    timeout: Duration,
    tls: Option<&crate::tls::ClientTls>,
) -> Result<(Stream, String), ClientError> {
    let target = Target::resolve(target).await?;
    let addr = target.label();
    let plain = deadline(&addr, timeout, async {
        match &target {
            Target::Unix(path) => tokio::net::UnixStream::connect(path)
                .await
                .map(Either::Right)
                .map_err(|e| ClientError::io(&addr, e)),
            Target::Inet(addrs, _) => {
                let mut last = None;
                for a in addrs {
                    // From the dashboard's relays: marked as ours (see
                    // `service::internal`), so they hold no slot of
                    // 127.0.0.1's per-address cap.
                    let connect = if crate::service::internal::active() {
                        futures_util::future::Either::Left(crate::service::internal::connect(*a))
                    } else {
                        futures_util::future::Either::Right(tokio::net::TcpStream::connect(*a))
                    };
                    match connect.await {
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
    });
    let Some(tls) = tls else {
        return Ok((Stream::Plain(plain.await?), addr));
    };
    let name = server_name(&target);
    let stream = deadline(&addr, timeout, async {
        let plain = plain.await?;
        tls.connect(&name, plain)
            .await
            .map(|s| Stream::Tls(Box::new(s)))
            .map_err(|e| tls_failed(&addr, &e))
    })
    .await?;
    Ok((stream, addr))
}
