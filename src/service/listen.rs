//! Binding the sockets services run on, the same way everywhere.
//!
//! TCP listeners set `SO_REUSEADDR` (what the tutorials set by hand), so a
//! stopped service can start again at once on the same port while old
//! connections sit in TIME_WAIT. UDP sockets do not: on Linux it would let a
//! second process bind the same UDP port silently, and UDP has no TIME_WAIT
//! to wait out. Unix sockets remove a stale socket file left by a crash, but
//! never one that still answers, and remove their file when dropped.
//!
//! A listener may carry a TLS certificate ([`Listener::with_tls`]): it still
//! accepts plain streams, and the shared accept path runs [`handshake`] on
//! each one after admitting it (so a handshake counts against the per-peer
//! cap and has its own deadline), handing the service a TLS
//! [`Stream`] ([`crate::stream::MaybeTls::Tls`]).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};

use tokio::net::{TcpListener, UdpSocket, UnixListener};
use tokio_util::either::Either;

use crate::settings::ListenAddr;
use crate::tls::ServerTls;

/// Listen backlog: the kernel caps it at `net.core.somaxconn` anyway.
const BACKLOG: i32 = 1024;

/// A bound TCP or unix-socket listener, with the certificate its
/// connections speak TLS with, if any.
pub struct Listener {
    socket: Bound,
    tls: Option<Arc<ServerTls>>,
    /// `accept_proxy`: connections come through a trusted proxy, each
    /// opening with a PROXY header naming the client.
    proxy: Option<super::proxy_header::ProxyIntake>,
    /// A TCP service's address, while it listens: our own connections to
    /// it are marked (see `service::internal`).
    _listening: Option<super::internal::Listening>,
}

enum Bound {
    Tcp(TcpListener),
    Unix(UnixSocketListener),
}

/// A unix listener that removes its socket file when dropped.
pub struct UnixSocketListener {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for UnixSocketListener {
    fn drop(&mut self) {
        // The socket may live on in a reloaded instance or a new process.
        if crate::handoff::keep_unix_file(&self.path) {
            return;
        }
        // Best effort: the folder may be gone already at shutdown.
        let _ = std::fs::remove_file(&self.path);
    }
}

pub use crate::stream::Plain;

/// What a service is handed: a plain socket, or TLS over one.
pub type Stream = crate::stream::MaybeTls<tokio_rustls::server::TlsStream<Plain>>;

impl Stream {
    /// Whether this is TLS: the readiness helpers below only work on plain
    /// sockets (TLS records cannot be read without a buffer).
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Our end's address, on a plain TCP socket whose far end really is
    /// `peer`: not an address a PROXY header named for it (two syscalls).
    pub(crate) fn local_inet_addr_from(
        &self,
        peer: std::net::SocketAddr,
    ) -> Option<std::net::SocketAddr> {
        match self {
            Stream::Plain(Either::Left(s)) if s.peer_addr().ok() == Some(peer) => {
                s.local_addr().ok()
            }
            _ => None,
        }
    }
}

fn not_plain() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "readiness I/O on a TLS stream")
}

/// Waits until `stream` has something to read (data, EOF or an error)
/// without a buffer, so a waiting connection owns none. Plain sockets only,
/// and one waiting task per socket (it takes the socket's reader slot).
///
/// Through `poll_read_ready`, the slot a `read()` waits in, as bare tokio's
/// echo does: `readable()` builds a future that links itself into the
/// socket's list of waiters and unlinks when dropped, two more lock round
/// trips per wait.
pub(crate) async fn readable(stream: &Stream) -> io::Result<()> {
    std::future::poll_fn(|cx| match stream {
        Stream::Plain(Either::Left(s)) => s.poll_read_ready(cx),
        Stream::Plain(Either::Right(s)) => s.poll_read_ready(cx),
        Stream::Tls(_) => std::task::Poll::Ready(Err(not_plain())),
    })
    .await
}

/// Reads what is there now; `WouldBlock` if nothing is. Plain sockets only.
pub(crate) fn try_read(stream: &Stream, buf: &mut [u8]) -> io::Result<usize> {
    match stream {
        Stream::Plain(Either::Left(s)) => s.try_read(buf),
        Stream::Plain(Either::Right(s)) => s.try_read(buf),
        Stream::Tls(_) => Err(not_plain()),
    }
}

/// Writes what fits now; `WouldBlock` if nothing does (or tokio has not
/// yet seen the socket writable). On a TLS stream nothing is written.
pub(crate) fn try_write(stream: &Stream, buf: &[u8]) -> io::Result<usize> {
    match stream {
        Stream::Plain(Either::Left(s)) => s.try_write(buf),
        Stream::Plain(Either::Right(s)) => s.try_write(buf),
        Stream::Tls(_) => Err(not_plain()),
    }
}

/// A TLS 1.2-framed fatal alert, sent in the clear before any handshake
/// message (which TLS allows): what a refused TLS client reads.
const fn tls_alert(description: u8) -> [u8; 7] {
    [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description]
}

/// `internal_error`: refused at a connection cap.
pub(crate) const TLS_INTERNAL_ERROR: [u8; 7] = tls_alert(80);
/// `access_denied`: a port behind a proxy (`accept_proxy`) refusing a
/// connection that did not come through it.
pub(crate) const TLS_ACCESS_DENIED: [u8; 7] = tls_alert(49);

/// A peer's last words from us before a close: reads (and drops) what it
/// has already sent, then writes `bytes`, both at once and never waiting.
/// Both go straight to the socket: tokio's `try_write` on a socket accepted
/// a moment ago says "would block" until its reactor has seen the socket
/// writable, so a refusal written with it was lost whenever the accept
/// loop beat the reactor. Reading first makes the close a FIN after the
/// words rather than a reset that could destroy them before they are read.
/// A fresh socket's send buffer holds a short line; a longer one is cut.
pub(crate) fn last_words(socket: &impl std::os::fd::AsFd, bytes: &[u8]) {
    discard_received(socket);
    let _ = socket2::SockRef::from(socket).send(bytes);
}

/// Reads and drops up to 16 KiB the peer has already sent, without
/// waiting, so that closing sends a FIN rather than a reset.
pub(crate) fn discard_received(socket: &impl std::os::fd::AsFd) {
    let socket = socket2::SockRef::from(socket);
    let mut sink = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    for _ in 0..4 {
        match socket.recv(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// [`last_words`] on an accepted stream, before any TLS handshake.
pub(crate) fn refuse(stream: &Stream, bytes: &[u8]) {
    match stream {
        Stream::Plain(Either::Left(s)) => last_words(s, bytes),
        Stream::Plain(Either::Right(s)) => last_words(s, bytes),
        Stream::Tls(_) => {}
    }
}

/// Runs the server side of a TLS handshake on a just-admitted stream,
/// within [`crate::tls::HANDSHAKE_TIMEOUT`]. A plaintext or garbage
/// client fails here, at its first bytes, and is closed.
///
/// # Errors
/// The handshake's failure, or `TimedOut`.
pub async fn handshake(stream: Stream, tls: &ServerTls) -> io::Result<Stream> {
    let Stream::Plain(plain) = stream else {
        return Ok(stream);
    };
    let after = crate::tls::HANDSHAKE_TIMEOUT;
    match tokio::time::timeout(after, tls.acceptor().accept(plain)).await {
        Ok(Ok(s)) => Ok(Stream::Tls(Box::new(s))),
        Ok(Err(e)) => Err(io::Error::new(
            e.kind(),
            format!("TLS handshake failed: {}", crate::tls::describe(&e)),
        )),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("TLS handshake not done within {after:?}"),
        )),
    }
}

/// Who is on the other end of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Inet(SocketAddr),
    /// Unix-socket peers are unnamed; there is nothing more to show.
    Unix,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Inet(a) => write!(f, "{a}"),
            Peer::Unix => f.write_str("unix"),
        }
    }
}

impl Listener {
    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> io::Result<ListenAddr> {
        match &self.socket {
            Bound::Tcp(l) => l.local_addr().map(ListenAddr::Inet),
            Bound::Unix(u) => Ok(ListenAddr::Unix(u.path.clone())),
        }
    }

    /// The listening socket itself (for [`crate::handoff`]).
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match &self.socket {
            Bound::Tcp(l) => l.as_fd(),
            Bound::Unix(u) => u.listener.as_fd(),
        }
    }

    /// Makes its connections speak TLS with `tls` (none: plain).
    pub fn with_tls(mut self, tls: Option<Arc<ServerTls>>) -> Self {
        self.tls = tls;
        self
    }

    /// Makes every connection open with a PROXY protocol header from one of
    /// `trusted` (none: connections arrive direct). [`Listener::accept`]
    /// then returns the client the header names; see
    /// [`super::proxy_header`]. A unix listener has no peer to trust, so
    /// config refuses `accept_proxy` there and this ignores it.
    pub fn with_proxy(mut self, trusted: Option<crate::settings::TrustedProxies>) -> Self {
        let at = self.local_addr().map(|a| a.to_string()).unwrap_or_default();
        self.proxy = trusted.map(|t| super::proxy_header::ProxyIntake::new(t, at));
        self
    }

    /// The certificate its connections speak TLS with, if any.
    pub fn tls(&self) -> Option<&Arc<ServerTls>> {
        self.tls.as_ref()
    }

    /// Accepts one connection, plain: TLS (if any) is [`handshake`]'s job.
    ///
    /// # Cancel safety
    /// Cancel safe, like the `accept` methods it wraps.
    pub async fn accept(&self) -> io::Result<(Stream, Peer)> {
        match &self.socket {
            Bound::Tcp(l) => {
                let (s, addr) = match &self.proxy {
                    Some(intake) => intake.accept(l, self.tls.is_some()).await?,
                    None => l.accept().await?,
                };
                // Echo-style request/response is latency-bound: no Nagle delay.
                s.set_nodelay(true)?;
                Ok((Stream::Plain(Either::Left(s)), Peer::Inet(addr)))
            }
            Bound::Unix(u) => {
                let (s, _) = u.listener.accept().await?;
                Ok((Stream::Plain(Either::Right(s)), Peer::Unix))
            }
        }
    }
}

/// Binds a TCP (or unix-socket) listener. Call inside a tokio runtime.
///
/// # Errors
/// The OS error, e.g. `AddrInUse` when the port is taken.
pub fn bind_tcp(addr: &ListenAddr) -> io::Result<Listener> {
    match addr {
        ListenAddr::Inet(addr) => {
            let socket = bind_inet(*addr)?;
            let listening = super::internal::Listening::new(socket.local_addr()?);
            Ok(Listener {
                socket: Bound::Tcp(socket),
                tls: None,
                proxy: None,
                _listening: Some(listening),
            })
        }
        ListenAddr::Unix(path) => {
            let listener = match crate::handoff::take(&crate::handoff::Key::Unix(path.clone())) {
                Some(fd) => {
                    let l = std::os::unix::net::UnixListener::from(fd);
                    l.set_nonblocking(true)?;
                    UnixListener::from_std(l)?
                }
                None => {
                    remove_stale_socket(path)?;
                    UnixListener::bind(path)?
                }
            };
            Ok(Listener {
                socket: Bound::Unix(UnixSocketListener {
                    listener,
                    path: path.clone(),
                }),
                tls: None,
                proxy: None,
                _listening: None,
            })
        }
    }
}

/// Binds a TCP listener on an IP address (the dashboard's, and the
/// services'). Call inside a tokio runtime.
///
/// # Errors
/// The OS error, e.g. `AddrInUse` when the port is taken.
pub fn bind_inet(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    // A socket kept by a reload or inherited (systemd, an upgrade) first.
    if let Some(fd) = crate::handoff::take(&crate::handoff::Key::Tcp(addr)) {
        let l = std::net::TcpListener::from(fd);
        l.set_nonblocking(true)?;
        return TcpListener::from_std(l);
    }
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// Binds a UDP socket. Call inside a tokio runtime.
///
/// # Errors
/// The OS error, or `InvalidInput` for a unix: address.
pub fn bind_udp(addr: &ListenAddr) -> io::Result<UdpSocket> {
    let ListenAddr::Inet(addr) = addr else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "UDP needs IP:PORT",
        ));
    };
    if let Some(fd) = crate::handoff::take(&crate::handoff::Key::Udp(*addr)) {
        let s = std::net::UdpSocket::from(fd);
        s.set_nonblocking(true)?;
        return UdpSocket::from_std(s);
    }
    let socket = Socket::new(Domain::for_address(*addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    socket.bind(&(*addr).into())?;
    UdpSocket::from_std(socket.into())
}

fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::from(io::ErrorKind::AddrInUse)),
        Err(_) => std::fs::remove_file(path),
    }
}

/// A short, human reason for a bind failure: what `failed: <reason>` shows.
pub fn bind_failure(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::AddrInUse => "address in use".into(),
        io::ErrorKind::AddrNotAvailable => "address not available on this host".into(),
        io::ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need privileges)".into()
        }
        _ => e.to_string(),
    }
}

/// Raises this process's open-file limit to its hard limit, so thousands of
/// connections fit; returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Ok((soft, _)) => soft,
        Err(_) => 0,
    }
}
