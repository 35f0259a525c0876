//! systemd's readiness protocol (`sd_notify`): one datagram of
//! `KEY=VALUE` lines to the socket `NOTIFY_SOCKET` names. `READY=1` once
//! everything listens, `RELOADING=1` … `READY=1` around a reload,
//! `MAINPID=` when an upgrade hands the service to a new process,
//! `STOPPING=1` at shutdown. Without `NOTIFY_SOCKET` (not under a
//! `Type=notify` unit) every call does nothing.
//!
//! Twenty lines instead of a crate: the `sd-notify` crate reads the
//! variable itself each time, and below `main` nothing reads the
//! environment. `main` hands the path over once ([`init`]).

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::OnceLock;

static SOCKET: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Where to notify (`NOTIFY_SOCKET`), read by `main`; call once.
pub fn init(socket: Option<std::ffi::OsString>) {
    let _ = SOCKET.set(socket.filter(|s| !s.is_empty()).map(PathBuf::from));
}

/// Whether systemd waits for our notifications.
pub fn enabled() -> bool {
    SOCKET.get().is_some_and(Option::is_some)
}

/// Sends `state` (`KEY=VALUE` lines); a failure is logged, never fatal.
pub fn notify(state: &str) {
    let Some(Some(path)) = SOCKET.get() else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|sock| {
        let text = path.to_string_lossy();
        match text.strip_prefix('@') {
            // An abstract socket: the name after the `@`.
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
                sock.send_to_addr(state.as_bytes(), &addr)
            }
            None => sock.send_to(state.as_bytes(), path),
        }
    });
    if let Err(e) = sent {
        tracing::warn!("cannot notify systemd ({}): {e}", path.display());
    }
}

/// `RELOADING=1` with the monotonic time systemd asks for.
pub fn reloading() {
    let usec = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000
    });
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
}
