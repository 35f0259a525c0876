//! A proxy may not forward to itself or to another proxy of this process:
//! every loop of proxies has a last member to start, and that one's
//! upstream is a proxy already running here, so refusing it breaks every
//! loop inside one process before a byte moves. It is checked each time a
//! proxy starts (config at start, the Services API, a restart), and the
//! error names `upstream`.
//!
//! Deliberately narrow: a proxy in front of one of our *other* services
//! (an echo, a login) is a use, not a loop, and stays allowed. A host
//! name other than `localhost` is not looked up here (a lookup can take
//! seconds and this runs under the instance's lock): a udp-proxy resolves
//! its name at its start and refuses one leading to another of ours
//! (`OwnPorts::forwarder_at`); loops across processes end at the
//! udp-proxy's new-peer limits (`service::new_peers`).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::Supervisor;
use crate::config::ServiceConfig;
use crate::kind::{ServiceId, ServiceKind};
use crate::service::ServiceError;
use crate::service::upstream::Upstream;
use crate::settings::ListenAddr;
use crate::sync::lock;

/// Whether `kind` forwards what it receives (and so can loop).
fn forwards(kind: ServiceKind) -> bool {
    matches!(kind, ServiceKind::TcpProxy | ServiceKind::UdpProxy)
}

fn upstream_of(config: &ServiceConfig) -> Option<&Upstream> {
    use crate::service::{tcp_proxy, udp_proxy};
    let s = &config.settings;
    s.get::<tcp_proxy::Settings>()
        .map(|t| &t.upstream)
        .or_else(|| s.get::<udp_proxy::Settings>().map(|u| &u.upstream))
}

/// The addresses `upstream` names without a lookup (`localhost` is both
/// loopbacks); empty for another host name.
fn addresses(upstream: &Upstream) -> Vec<SocketAddr> {
    match upstream {
        Upstream::Inet(a) => vec![*a],
        Upstream::Host { host, port } if host.eq_ignore_ascii_case("localhost") => vec![
            (Ipv4Addr::LOCALHOST, *port).into(),
            (Ipv6Addr::LOCALHOST, *port).into(),
        ],
        Upstream::Host { .. } | Upstream::Unix(_) => Vec::new(),
    }
}

/// Whether `upstream` is the listener `at`.
pub(crate) fn is_listener(upstream: &Upstream, at: &ListenAddr) -> bool {
    match (upstream, at) {
        (Upstream::Unix(path), ListenAddr::Unix(bound)) => path == bound,
        (_, ListenAddr::Inet(bound)) => addresses(upstream)
            .into_iter()
            .any(|a| crate::service::own_addr::reaches(a, *bound)),
        _ => false,
    }
}

impl Supervisor {
    /// The config file's `stdio_allow`: what a stdio instance added from
    /// the dashboard may run (checked with the other dashboard rules in
    /// `config::dashboard`; kept here for instances added while running).
    pub fn stdio_allow(&self) -> &[String] {
        &self.inner.stdio_allow
    }

    /// Refuses to start proxy `id` (with `config`) when its upstream is its
    /// own listen address or a running proxy of this process.
    pub(super) fn check_loop(
        &self,
        id: &ServiceId,
        config: &ServiceConfig,
    ) -> Result<(), ServiceError> {
        let Some(upstream) = upstream_of(config) else {
            return Ok(());
        };
        let refuse = |other: &ServiceId| ServiceError::Loop {
            service: id.clone(),
            upstream: upstream.to_string(),
            other: other.clone(),
        };
        if is_listener(upstream, &config.listen) {
            return Err(refuse(id));
        }
        for slot in self.slots() {
            if slot.id == *id || !forwards(slot.id.kind()) || slot.id.proto() != id.proto() {
                continue;
            }
            let local = lock(&slot.state).local.clone();
            if local.is_some_and(|at| is_listener(upstream, &at)) {
                return Err(refuse(&slot.id));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_reaches_a_listener_by_address_wildcard_or_name() {
        let at = |s: &str| ListenAddr::Inet(s.parse().unwrap());
        let up = |s: &str| s.parse::<Upstream>().unwrap();
        assert!(is_listener(&up("127.0.0.1:7000"), &at("127.0.0.1:7000")));
        assert!(is_listener(&up("127.0.0.1:7000"), &at("0.0.0.0:7000")));
        assert!(is_listener(&up("localhost:7000"), &at("[::1]:7000")));
        assert!(is_listener(&up("0.0.0.0:7000"), &at("127.0.0.1:7000")));
        assert!(!is_listener(&up("127.0.0.2:7000"), &at("127.0.0.1:7000")));
        assert!(!is_listener(&up("127.0.0.1:7001"), &at("127.0.0.1:7000")));
        assert!(!is_listener(&up("example.com:7000"), &at("0.0.0.0:7000")));
        assert!(is_listener(
            &up("unix:/run/a.sock"),
            &ListenAddr::Unix("/run/a.sock".into())
        ));
    }
}
