//! Listening sockets that outlive the instance (or the process) that bound
//! them: what lets a reload restart an instance on the very socket it had,
//! an upgrade hand every socket to the next process, and systemd hand us
//! sockets it bound (socket activation).
//!
//! Three places hold sockets:
//! - the *live* registry: a duplicate of every listening socket a running
//!   instance (or the dashboard) owns, dropped with it, so a reload or an
//!   upgrade can find them;
//! - the *spare* pool: sockets inherited at start (systemd, or the process
//!   we are upgrading from), taken by the first bind of their address;
//! - the *next* socket of this thread: a reload's socket for the bind it
//!   is about to do, matched even when the instance asked for port 0.
//!
//! Binding ([`crate::service::listen`]) asks [`take`] first and binds a new
//! socket only when nothing matches. This module never opens or binds a
//! socket itself and never reads the environment (see
//! [`crate::activation`]). The registries are process-wide on purpose: a
//! socket is a process's resource, and an address is bound once per process.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::kind::Proto;
use crate::settings::ListenAddr;
use crate::sync::lock;

/// What a listening socket is: its protocol and the address it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Tcp(SocketAddr),
    Udp(SocketAddr),
    Unix(PathBuf),
}

impl Key {
    /// The key of a socket of `proto` bound (or to be bound) at `addr`.
    pub fn of(proto: Proto, addr: &ListenAddr) -> Key {
        match (proto, addr) {
            (Proto::Udp, ListenAddr::Inet(a)) => Key::Udp(*a),
            (_, ListenAddr::Inet(a)) => Key::Tcp(*a),
            (_, ListenAddr::Unix(p)) => Key::Unix(p.clone()),
        }
    }

    /// Whether a socket with this key serves a bind of `wanted`: the same
    /// address, or (port 0 wanted) any port on the same IP.
    fn serves(&self, wanted: &Key, any_port: bool) -> bool {
        let inet = |have: &SocketAddr, want: &SocketAddr| {
            have == want || (any_port && want.port() == 0 && have.ip() == want.ip())
        };
        match (self, wanted) {
            (Key::Tcp(h), Key::Tcp(w)) | (Key::Udp(h), Key::Udp(w)) => inet(h, w),
            (Key::Unix(h), Key::Unix(w)) => h == w,
            _ => false,
        }
    }

    /// The key of an inherited socket, read from the socket itself: a
    /// listening stream socket or a datagram socket, else `None`.
    pub fn read(fd: BorrowedFd<'_>) -> Option<Key> {
        let sock = socket2::SockRef::from(&fd);
        let local = sock.local_addr().ok()?;
        let ty = sock.r#type().ok()?;
        if ty == socket2::Type::DGRAM {
            return local.as_socket().map(Key::Udp);
        }
        if ty != socket2::Type::STREAM || !sock.is_listener().unwrap_or(false) {
            return None;
        }
        match local.as_socket() {
            Some(a) => Some(Key::Tcp(a)),
            None => local.as_pathname().map(|p| Key::Unix(p.to_owned())),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Tcp(a) => write!(f, "tcp {a}"),
            Key::Udp(a) => write!(f, "udp {a}"),
            Key::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A listening socket and the name it goes by (an instance's, or `web`).
pub struct Named {
    pub name: String,
    pub key: Key,
    pub fd: OwnedFd,
}

static SPARE: Mutex<Vec<Named>> = Mutex::new(Vec::new());

struct LiveEntry {
    id: u64,
    sock: Named,
}

static LIVE: Mutex<Vec<LiveEntry>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Set once this process handed its sockets to another: its unix
/// listeners then leave their files to the new process.
static HANDED_OFF: AtomicBool = AtomicBool::new(false);

thread_local! {
    static NEXT: RefCell<Option<Named>> = const { RefCell::new(None) };
}

/// Adds inherited sockets to the spare pool.
pub fn add_spare(socks: impl IntoIterator<Item = Named>) {
    lock(&SPARE).extend(socks);
}

/// The spare sockets' names and keys (what was inherited and not yet used).
pub fn spare_keys() -> Vec<(String, Key)> {
    lock(&SPARE)
        .iter()
        .map(|s| (s.name.clone(), s.key.clone()))
        .collect()
}

/// Drops every spare socket nobody took (an inherited socket whose
/// instance is gone would otherwise take connections nobody accepts).
pub fn drop_spares() -> Vec<Named> {
    std::mem::take(&mut *lock(&SPARE))
}

/// The socket to use instead of binding `wanted`, if one is waiting: this
/// thread's next socket first, then the spare pool (exact address only).
pub fn take(wanted: &Key) -> Option<OwnedFd> {
    let next = NEXT.with(|n| {
        let mut n = n.borrow_mut();
        match n.as_ref() {
            Some(s) if s.key.serves(wanted, true) => n.take().map(|s| s.fd),
            _ => None,
        }
    });
    if next.is_some() {
        return next;
    }
    let mut spare = lock(&SPARE);
    let at = spare.iter().position(|s| s.key.serves(wanted, false))?;
    Some(spare.swap_remove(at).fd)
}

/// Runs `f` (which binds synchronously) with `sock` as this thread's next
/// socket; whatever `f` did not take is closed after.
pub fn with_next<R>(sock: Option<Named>, f: impl FnOnce() -> R) -> R {
    NEXT.with(|n| *n.borrow_mut() = sock);
    let out = f();
    NEXT.with(|n| n.borrow_mut().take());
    out
}

/// A listening socket's place in the live registry; dropping it removes
/// (and closes) the registry's duplicate.
#[must_use = "the socket leaves the registry when this is dropped"]
pub struct LiveGuard {
    id: u64,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        lock(&LIVE).retain(|e| e.id != self.id);
    }
}

/// Records a duplicate of a listening socket while `LiveGuard` lives.
///
/// # Errors
/// The descriptor cannot be duplicated (out of descriptors).
pub fn register(name: &str, key: Key, fd: BorrowedFd<'_>) -> std::io::Result<LiveGuard> {
    let fd = fd.try_clone_to_owned()?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let sock = Named {
        name: name.to_owned(),
        key,
        fd,
    };
    lock(&LIVE).push(LiveEntry { id, sock });
    Ok(LiveGuard { id })
}

/// A duplicate of the newest live socket named `name` with key `key`.
pub fn live(name: &str, key: &Key) -> Option<Named> {
    let live = lock(&LIVE);
    let e = live
        .iter()
        .rev()
        .find(|e| e.sock.name == name && &e.sock.key == key)?;
    let fd = e.sock.fd.as_fd().try_clone_to_owned().ok()?;
    Some(Named {
        name: e.sock.name.clone(),
        key: e.sock.key.clone(),
        fd,
    })
}

/// Duplicates of every live socket, one per name and key (the newest).
///
/// # Errors
/// A descriptor cannot be duplicated.
pub fn live_all() -> std::io::Result<Vec<Named>> {
    let live = lock(&LIVE);
    let mut out: Vec<Named> = Vec::new();
    for e in live.iter().rev() {
        if out
            .iter()
            .any(|o| o.name == e.sock.name && o.key == e.sock.key)
        {
            continue;
        }
        out.push(Named {
            name: e.sock.name.clone(),
            key: e.sock.key.clone(),
            fd: e.sock.fd.as_fd().try_clone_to_owned()?,
        });
    }
    out.reverse();
    Ok(out)
}

/// Marks this process as having handed its sockets on (an upgrade).
pub fn set_handed_off(on: bool) {
    HANDED_OFF.store(on, Ordering::SeqCst);
}

static DRAINING: std::sync::OnceLock<tokio_util::sync::CancellationToken> =
    std::sync::OnceLock::new();

/// Cancelled once this process stops taking new connections for good (an
/// upgrade handed its sockets on): every accept loop ends, and the open
/// connections go on until they finish.
pub fn draining() -> &'static tokio_util::sync::CancellationToken {
    DRAINING.get_or_init(tokio_util::sync::CancellationToken::new)
}

/// Whether this process handed its sockets on.
pub fn handed_off() -> bool {
    HANDED_OFF.load(Ordering::SeqCst)
}

/// Whether a unix listener being dropped must leave its socket file: the
/// socket lives on in another instance (a reload) or process (an upgrade).
pub fn keep_unix_file(path: &Path) -> bool {
    let key = Key::Unix(path.to_owned());
    HANDED_OFF.load(Ordering::SeqCst)
        || lock(&LIVE).iter().filter(|e| e.sock.key == key).count() >= 2
        || NEXT.with(|n| n.borrow().as_ref().is_some_and(|s| s.key == key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_matches_only_the_next_socket() {
        let have = Key::Tcp("127.0.0.1:4000".parse().expect("addr"));
        let any = Key::Tcp("127.0.0.1:0".parse().expect("addr"));
        assert!(have.serves(&any, true));
        assert!(!have.serves(&any, false));
        assert!(!have.serves(&Key::Udp("127.0.0.1:4000".parse().expect("addr")), true));
    }

    #[test]
    fn a_spare_socket_is_taken_once_by_its_exact_address() -> std::io::Result<()> {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        let key = Key::read(l.as_fd()).expect("a listening TCP socket");
        assert_eq!(key, Key::Tcp(l.local_addr()?));
        add_spare([Named {
            name: "t".into(),
            key: key.clone(),
            fd: OwnedFd::from(l),
        }]);
        assert!(take(&Key::Tcp("127.0.0.1:0".parse().expect("addr"))).is_none());
        assert!(take(&key).is_some());
        assert!(take(&key).is_none());
        Ok(())
    }

    #[test]
    fn a_connected_socket_is_not_a_listener() -> std::io::Result<()> {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        let c = std::net::TcpStream::connect(l.local_addr()?)?;
        assert!(Key::read(c.as_fd()).is_none());
        Ok(())
    }
}
