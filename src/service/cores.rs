//! A runtime of one thread per core, for the connections a `tcp-proxy`
//! forwards: each connection lives on one thread, from the handshake to
//! the close, as in haproxy or nginx.
//!
//! Why: on the shared work-stealing runtime, a proxied request of a few
//! bytes wakes the connection's task twice (the client's bytes, then the
//! upstream's answer), and the worker that ran out of tasks in between
//! parks and is woken again by the other; per 64-byte request the proxy
//! made 0.6 context switches against haproxy's 0.45, and cost 1.2–1.4x
//! its CPU. A thread that owns its connections and its own reactor waits
//! in `epoll_wait` and nowhere else (bench/NOTES.md, "thread per core").
//!
//! A connection is placed, when accepted, on the core runtime with the
//! fewest live tasks; it never moves after. The threads start with the
//! first connection that asks for one and live as long as the process:
//! as many as the shared runtime has workers.

use std::io;
use std::sync::OnceLock;

use tokio::net::TcpStream;
use tokio::runtime::Handle;

/// The per-core runtimes' handles; empty when they could not be started
/// (the connections then stay on the shared runtime).
static CORES: OnceLock<Vec<Handle>> = OnceLock::new();

/// The core runtime with the fewest live tasks, starting them on the
/// first call; `None` if they cannot run here.
pub(crate) fn least_busy() -> Option<&'static Handle> {
    CORES
        .get_or_init(start)
        .iter()
        .min_by_key(|core| core.metrics().num_alive_tasks())
}

/// As many cores as the runtime calling this has workers (its own choice:
/// `TOKIO_WORKER_THREADS`, else the cores this process may use).
fn start() -> Vec<Handle> {
    let n = Handle::try_current().map_or(1, |shared| shared.metrics().num_workers());
    let mut cores = Vec::with_capacity(n);
    for i in 0..n {
        match start_one(i) {
            Ok(core) => cores.push(core),
            Err(e) => {
                tracing::warn!("cannot start a per-core runtime ({e}); the rest share one");
                break;
            }
        }
    }
    cores
}

/// A thread running a single-threaded runtime until the process ends.
fn start_one(i: usize) -> io::Result<Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name(format!("proxy-core-{i}"))
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    Ok(handle)
}

/// A TCP connection on its way to another runtime: out of the accepting
/// runtime's reactor, not yet in the new one's.
pub(crate) struct Detached(std::net::TcpStream);

impl Detached {
    /// # Errors
    /// Deregistering from the accepting runtime's reactor failed; the
    /// connection is closed.
    pub(crate) fn new(tcp: TcpStream) -> io::Result<Detached> {
        tcp.into_std().map(Detached)
    }

    /// Registers the connection with the runtime this is called on.
    ///
    /// # Errors
    /// The reactor refused it (out of memory for its registration).
    pub(crate) fn attach(self) -> io::Result<TcpStream> {
        TcpStream::from_std(self.0)
    }
}
