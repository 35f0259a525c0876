//! Sockets handed to `serve` at start, the systemd way (`LISTEN_FDS`,
//! `LISTEN_FDNAMES`, `LISTEN_PID`, descriptors from 3 on): by systemd's
//! socket activation (`switchboard.socket`), or by the process an upgrade
//! replaces ([`crate::upgrade`]).
//!
//! Each socket is named: an instance's name, or `web` for the dashboard.
//! The named instance then listens on that socket, whatever its configured
//! address (the socket's own address is what it shows, and what a reload
//! keeps). A socket with no matching instance, or of the wrong protocol,
//! is reported and closed. Turning descriptors into sockets is
//! `listenfd`'s (it checks each is a socket of the kind asked for); this
//! module never binds anything itself.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use crate::config::Config;
use crate::handoff::{Key, Named};
use crate::kind::Proto;
use crate::settings::ListenAddr;
use crate::sync::lock;

/// The name of the dashboard's socket.
pub const WEB: &str = "web";

/// The address each inherited socket gives its instance, kept for the
/// whole run: a reload reads the config again and must get the same.
static OVERRIDES: Mutex<Vec<(String, Key)>> = Mutex::new(Vec::new());

/// Takes the sockets `fds` holds (from `listenfd::ListenFd::from_env`,
/// read before any thread starts) named by `names` (`LISTEN_FDNAMES`,
/// `:`-separated), into the spare pool. Returns what to warn about.
pub fn adopt(mut fds: listenfd::ListenFd, names: Option<&str>) -> Vec<String> {
    let names: Vec<&str> = names.map(|n| n.split(':').collect()).unwrap_or_default();
    let mut warnings = Vec::new();
    let mut socks = Vec::new();
    for i in 0..fds.len() {
        let name = names
            .get(i)
            .filter(|n| !n.is_empty())
            .map_or_else(|| format!("fd{}", i + 3), |n| (*n).to_owned());
        let fd: Option<OwnedFd> = match fds.take_tcp_listener(i) {
            Ok(Some(l)) => Some(l.into()),
            _ => match fds.take_unix_listener(i) {
                Ok(Some(l)) => Some(l.into()),
                _ => match fds.take_udp_socket(i) {
                    Ok(Some(s)) => Some(s.into()),
                    _ => None,
                },
            },
        };
        let Some(fd) = fd else {
            warnings.push(format!(
                "inherited descriptor {} ({name}) is not a TCP, UDP or unix socket: ignored",
                i + 3
            ));
            continue;
        };
        match Key::read(fd.as_fd()) {
            Some(key) => socks.push(Named { name, key, fd }),
            None => warnings.push(format!(
                "inherited socket {name} is neither listening nor a datagram socket: closed"
            )),
        }
    }
    let mut overrides = lock(&OVERRIDES);
    for s in &socks {
        overrides.push((s.name.clone(), s.key.clone()));
    }
    drop(overrides);
    crate::handoff::add_spare(socks);
    warnings
}

/// Points each instance (and the dashboard) named by an inherited socket
/// at that socket's address. Returns what to warn about (a name with no
/// instance, a protocol that does not fit).
pub fn apply(config: &mut Config) -> Vec<String> {
    let mut warnings = Vec::new();
    for (name, key) in lock(&OVERRIDES).iter() {
        if name == WEB {
            match key {
                Key::Tcp(addr) => config.web.listen = *addr,
                other => warnings.push(format!("the dashboard needs a TCP socket, not {other}")),
            }
            continue;
        }
        let Some(service) = config.services.iter_mut().find(|s| s.id.name() == name) else {
            warnings.push(format!(
                "inherited socket `{name}` ({key}): no instance has that name"
            ));
            continue;
        };
        let listen = match (service.id.proto(), key) {
            (Proto::Udp, Key::Udp(a)) => ListenAddr::Inet(*a),
            (Proto::Tcp, Key::Tcp(a)) => ListenAddr::Inet(*a),
            (Proto::Tcp, Key::Unix(p)) => ListenAddr::Unix(p.clone()),
            (proto, other) => {
                warnings.push(format!(
                    "inherited socket `{name}` is {other}, but {name} speaks {proto}"
                ));
                continue;
            }
        };
        service.listen = listen;
    }
    warnings
}

/// Closes inherited sockets nothing took (their instance is disabled or
/// failed): a socket nobody accepts on would hold connections forever.
pub fn close_unused() {
    for s in crate::handoff::drop_spares() {
        tracing::warn!("inherited socket `{}` ({}) unused: closed", s.name, s.key);
    }
}
