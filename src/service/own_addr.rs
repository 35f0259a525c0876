//! Is this address one of our own? The one home of the checks that keep
//! our UDP services from answering each other (or themselves) forever and
//! a proxy from forwarding to itself.
//!
//! Not here: which addresses are ours (the instance's socket, or
//! [`super::OwnPorts`] for every UDP instance), or what to do about it.

use std::net::{IpAddr, SocketAddr};

/// Whether a datagram from `src` may come from a socket bound at `own`:
/// the same port, and the same IP address or `own` bound to every address
/// (then any local address could be it, and we do not know which are).
pub fn may_be_from(src: SocketAddr, own: SocketAddr) -> bool {
    src.port() == own.port() && (own.ip().is_unspecified() || own.ip() == src.ip())
}

/// Whether a datagram or connection sent to `to` reaches a socket bound at
/// `at`: the same address, a loopback (or unspecified) address when `at`
/// is bound to every address, or the unspecified address (which Linux
/// delivers locally) when `at` is on loopback.
pub fn reaches(to: SocketAddr, at: SocketAddr) -> bool {
    let local = |ip: IpAddr| ip.is_loopback() || ip.is_unspecified();
    to.port() == at.port()
        && (to.ip() == at.ip()
            || (at.ip().is_unspecified() && local(to.ip()))
            || (to.ip().is_unspecified() && at.ip().is_loopback()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn from_our_port_on_our_address_or_any_when_we_bind_all() {
        assert!(may_be_from(a("127.0.0.1:9"), a("127.0.0.1:9")));
        assert!(may_be_from(a("192.0.2.1:9"), a("0.0.0.0:9")));
        assert!(!may_be_from(a("192.0.2.1:9"), a("127.0.0.1:9")));
        assert!(!may_be_from(a("127.0.0.1:10"), a("127.0.0.1:9")));
    }

    #[test]
    fn sending_reaches_the_same_address_or_local_ones_of_a_wildcard() {
        assert!(reaches(a("127.0.0.1:9"), a("127.0.0.1:9")));
        assert!(reaches(a("127.0.0.1:9"), a("0.0.0.0:9")));
        assert!(reaches(a("[::1]:9"), a("[::]:9")));
        assert!(reaches(a("0.0.0.0:9"), a("127.0.0.1:9")));
        assert!(!reaches(a("192.0.2.1:9"), a("0.0.0.0:9")));
        assert!(!reaches(a("127.0.0.1:10"), a("127.0.0.1:9")));
    }
}
