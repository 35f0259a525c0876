//! The kinds of service: what each one does with a bound socket.
//!
//! Every kind is one module with one shape: a `Settings` type that reads its
//! own keys and implements [`Kind`], whose `run(socket, ctx)` serves a socket
//! the supervisor has already bound (so nothing connects before a service
//! listens, and a bind failure becomes that instance's `failed: <reason>`
//! without touching the others) until `ctx.cancel` fires. A kind gets
//! everything through its settings and its [`ServiceCtx`]; it knows nothing
//! about HTTP, the supervisor or other instances.
//!
//! [`Kind`] is a trait rather than one enum with a `run` match so that each
//! kind's socket type (a TCP [`listen::Listener`] or a UDP socket) and its
//! limits are checked by the compiler per kind; [`registry`] lists the kinds
//! once and matches on them without a catch-all arm, so a kind declared in
//! `kind.rs` but not wired here does not compile.
//!
//! Imports run one way: kinds use [`accept`] (the TCP accept loop and
//! admission), [`udp`] (the datagram loop) and this file's context; nothing
//! here uses the supervisor.

pub mod accept;
pub(crate) mod authed;
pub(crate) mod cores;
pub mod counted;
pub mod describe;
pub(crate) mod evict;
pub mod internal;
pub mod listen;
pub(crate) mod new_peers;
pub mod own_addr;
pub(crate) mod process;
pub mod proxy_header;
pub mod registry;

pub mod chat_hub;
pub(crate) mod exec_tutorial;
pub(crate) mod files_resume;
#[cfg(target_os = "linux")]
pub mod splice;
pub(crate) mod stop;
pub mod toxic_relay;
pub mod tutorial_auth;
pub mod udp;
pub mod upstream;

/// Declares each kind's module, from the one list in `kind.rs`.
macro_rules! kind_modules {
    ($($variant:ident => $name:literal, $proto:ident, $port:expr, $module:ident;)+) => {
        $(pub mod $module;)+
    };
}
crate::kind::for_each_kind!(kind_modules);

use std::future::Future;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::AuditLog;
use crate::kind::ServiceId;
pub use crate::settings::Limits;
use crate::settings::{ConfigError, ListenAddr, Secret, Section, TcpLimits, UdpLimits};
use crate::stats::Stats;
use crate::sync::lock;
use crate::users::Users;

pub use accept::HANDSHAKE_TIMEOUT;
pub use listen::{Peer, bind_failure};
pub use login::MAX_LINE as LOGIN_MAX_LINE;

/// One kind of service: its settings, read from its own keys, and how it
/// serves a bound socket.
pub trait Kind: Sized + Send + 'static {
    /// What the supervisor binds for it: a TCP listener or a UDP socket.
    type Socket: Bind;

    /// Reads the kind's own keys from its instance's section; the keys
    /// every instance has (`kind`, `listen`, `enabled`, TLS and the
    /// protocol's limits) are read by the caller.
    ///
    /// # Errors
    /// A bad value, naming the key and where it came from.
    fn read(section: &Section<'_>) -> Result<Self, ConfigError>;

    /// The program an instance runs, when it runs one (stdio); see
    /// [`crate::settings::KindSettings::program`].
    fn program(&self) -> Option<&str> {
        None
    }

    /// Serves `socket` until `ctx.cancel` fires.
    fn run(
        self,
        socket: Self::Socket,
        ctx: ServiceCtx<<Self::Socket as Bind>::Limits>,
    ) -> impl Future<Output = Result<(), ServiceError>> + Send;
}

/// A socket a kind serves, and the limits that come with its protocol.
pub trait Bind: Sized + Send + 'static {
    type Limits: Clone + Send + Sync + 'static;

    /// Binds `addr`; returns the socket and the address actually bound.
    ///
    /// # Errors
    /// As the operating system reports them.
    fn bind(
        addr: &ListenAddr,
        tls: Option<Arc<crate::tls::ServerTls>>,
    ) -> std::io::Result<(Self, ListenAddr)>;

    /// This protocol's half of an instance's limits.
    fn limits(limits: &Limits) -> Self::Limits;

    /// The socket itself, for the live registry ([`crate::handoff`]).
    fn fd(&self) -> std::os::fd::BorrowedFd<'_>;
}

impl Bind for listen::Listener {
    type Limits = TcpLimits;

    fn bind(
        addr: &ListenAddr,
        tls: Option<Arc<crate::tls::ServerTls>>,
    ) -> std::io::Result<(Self, ListenAddr)> {
        let l = listen::bind_tcp(addr)?.with_tls(tls);
        let local = l.local_addr()?;
        Ok((l, local))
    }

    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd()
    }

    fn limits(limits: &Limits) -> TcpLimits {
        match limits {
            Limits::Tcp(l) => l.clone(),
            // Config reads limits by the kind's protocol: not reached.
            Limits::Udp(_) => TcpLimits::default(),
        }
    }
}

impl Bind for tokio::net::UdpSocket {
    type Limits = UdpLimits;

    fn bind(
        addr: &ListenAddr,
        _tls: Option<Arc<crate::tls::ServerTls>>,
    ) -> std::io::Result<(Self, ListenAddr)> {
        let s = listen::bind_udp(addr)?;
        let local = ListenAddr::Inet(s.local_addr()?);
        Ok((s, local))
    }

    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }

    fn limits(limits: &Limits) -> UdpLimits {
        match limits {
            Limits::Udp(l) => l.clone(),
            Limits::Tcp(_) => UdpLimits::default(),
        }
    }
}

/// What the process shares with every service: accounts, the audit log, the
/// default files folder and the HMAC key.
#[derive(Clone)]
pub struct Resources {
    pub users: Users,
    pub audit: AuditLog,
    /// `<data_dir>/files`, the folder of `files` and `files-classic`
    /// instances that do not name their own.
    pub store: crate::store::Store,
    /// The HMAC key of exec and files; `None` when none is configured.
    pub key: Option<Secret>,
    /// The proxies' toxics (`tcp-proxy`, `udp-proxy`), changed live.
    pub toxics: crate::toxic::Toxics,
    /// The conversations of the chat kinds, which the dashboard answers.
    pub chats: chat_hub::ChatHub,
}

/// Why a service could not start or stopped running.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{service} cannot listen on {addr}: {reason}")]
    Bind {
        service: ServiceId,
        addr: ListenAddr,
        reason: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} needs an HMAC key (config `key` or SWITCHBOARD_KEY)")]
    NoKey(ServiceId),
    #[error("{service} cannot open its files folder {}: {source}", path.display())]
    Folder {
        service: ServiceId,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{service} did not stop within {after:?}")]
    StopTimeout { service: ServiceId, after: Duration },
    #[error("no service is named `{0}`")]
    Unknown(String),
    #[error("a service named `{0}` exists already")]
    Exists(String),
    #[error("{0}: {1}")]
    Tls(ServiceId, String),
    #[error(
        "{service} cannot forward to {upstream}: that is {other}'s own address, and proxies \
         forwarding to each other would loop"
    )]
    Loop {
        service: ServiceId,
        upstream: String,
        other: ServiceId,
    },
    #[error(
        "{service}: `{key}` needs {needs} file descriptors, {promised} of the budget {budget} are \
         already promised (the open-file limit {limit}, less what the dashboard keeps); lower \
         `{key}` or raise the limit (ulimit -n, LimitNOFILE=)"
    )]
    Budget {
        service: ServiceId,
        key: &'static str,
        needs: u64,
        promised: u64,
        budget: u64,
        limit: u64,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What a running instance gets: its identity, its own token and task
/// tracker, the stats registry, its protocol's limits and the shared
/// resources. Nothing else.
#[derive(Clone)]
pub struct ServiceCtx<L = TcpLimits> {
    pub id: ServiceId,
    /// Cancelled when this service (or the whole process) stops.
    pub cancel: CancellationToken,
    /// Cancelled when this service stops taking new connections while its
    /// open ones go on (a reload or an upgrade drains it); a child of
    /// `cancel`.
    pub accept: CancellationToken,
    /// The process's own token: cancelled once it is shutting down, which
    /// tells a shutdown from a stop of this one service.
    pub process: CancellationToken,
    /// This service's connection tasks, so a stop can wait for them.
    pub tasks: TaskTracker,
    pub stats: Stats,
    pub limits: L,
    /// Ports our UDP services are bound to: never answered by another one.
    pub own_udp_ports: OwnPorts,
    pub resources: Resources,
}

/// The context of a TCP kind.
pub type TcpCtx = ServiceCtx<TcpLimits>;
/// The context of a UDP kind.
pub type UdpCtx = ServiceCtx<UdpLimits>;

impl<L> ServiceCtx<L> {
    /// A context for running a service outside the supervisor (tests, benches).
    pub fn new(id: ServiceId, stats: Stats, limits: L, resources: Resources) -> Self {
        let cancel = CancellationToken::new();
        ServiceCtx {
            id,
            accept: cancel.child_token(),
            cancel,
            process: CancellationToken::new(),
            tasks: TaskTracker::new(),
            stats,
            limits,
            own_udp_ports: OwnPorts::default(),
            resources,
        }
    }

    /// The HMAC key, or [`ServiceError::NoKey`].
    ///
    /// # Errors
    /// No key is configured.
    pub fn key(&self) -> Result<Vec<u8>, ServiceError> {
        self.resources
            .key
            .as_ref()
            .map(|k| k.expose().to_vec())
            .ok_or_else(|| ServiceError::NoKey(self.id.clone()))
    }
}

/// The addresses our own UDP services are bound to, so that no two of them
/// can be made to answer each other forever. The per-datagram check reads
/// only atomics; the lock is taken only when a source port matches one of
/// ours, to compare the IP address too.
#[derive(Clone, Default)]
pub struct OwnPorts(Arc<OwnInner>);

/// How many UDP ports the fast check holds; more instances still work, as
/// the check then also looks in the list.
const FAST_PORTS: usize = 16;

#[derive(Default)]
struct OwnInner {
    ports: [AtomicU16; FAST_PORTS],
    addrs: Mutex<Vec<(ServiceId, std::net::SocketAddr)>>,
}

impl OwnPorts {
    /// Records (or, with `None`, forgets) where instance `id` is bound.
    pub fn set(&self, id: &ServiceId, addr: Option<std::net::SocketAddr>) {
        let mut addrs = lock(&self.0.addrs);
        addrs.retain(|(other, _)| other != id);
        if let Some(addr) = addr {
            addrs.push((id.clone(), addr));
        }
        for (i, slot) in self.0.ports.iter().enumerate() {
            let port = addrs.get(i).map_or(0, |(_, a)| a.port());
            slot.store(port, Ordering::Relaxed);
        }
    }

    /// Whether `src` is (or, for a wildcard bind, may be) one of our own
    /// UDP services.
    pub fn contains(&self, src: std::net::SocketAddr) -> bool {
        let port = src.port();
        if port == 0 {
            return false;
        }
        let fast_hit = self
            .0
            .ports
            .iter()
            .any(|p| p.load(Ordering::Relaxed) == port);
        // Beyond the fast slots, the list is the only record.
        let full = self.0.ports[FAST_PORTS - 1].load(Ordering::Relaxed) != 0;
        if !fast_hit && !full {
            return false;
        }
        lock(&self.0.addrs)
            .iter()
            .any(|(_, own)| own_addr::may_be_from(src, *own))
    }

    /// The instance other than `me` of a forwarding kind (a udp-proxy)
    /// bound where `to` leads, if any: a proxy sending there would loop.
    /// For an upstream given by name, resolved at the proxy's start (the
    /// supervisor's check sees only addresses).
    pub fn forwarder_at(&self, to: std::net::SocketAddr, me: &ServiceId) -> Option<ServiceId> {
        let local = |ip: std::net::IpAddr| ip.is_loopback() || ip.is_unspecified();
        lock(&self.0.addrs)
            .iter()
            .find(|(id, own)| {
                id != me
                    && id.kind() == crate::kind::ServiceKind::UdpProxy
                    && own.port() == to.port()
                    && (own.ip() == to.ip() || (own.ip().is_unspecified() && local(to.ip())))
            })
            .map(|(id, _)| id.clone())
    }
}
