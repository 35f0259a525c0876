//! The limits every TCP kind and every UDP kind reads: connections, idle
//! time, peers and rates.

use super::*;

/// An instance's limits: those of its protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limits {
    Tcp(TcpLimits),
    Udp(UdpLimits),
}

/// Limits a TCP peer can run into; every TCP kind has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpLimits {
    /// Open connections at once; more are refused with a message.
    pub max_connections: usize,
    /// Open connections at once from one IP address.
    pub max_connections_per_peer: usize,
    /// A connection with no byte either way for this long is closed,
    /// including one whose peer stopped reading our replies.
    pub idle_timeout: Duration,
    /// When `max_connections` are open, the connection idle longest is
    /// closed to admit a new one, if it has been idle at least this long;
    /// only when none has is the newcomer refused. Squatters cannot lock
    /// others out for a whole idle timeout.
    pub evict_idle: Duration,
    /// `accept_proxy`: every connection must open with a PROXY protocol
    /// header (v1 or v2) from one of these peers, and is then the client
    /// the header names (caps, logs, audit, captures). `None`: direct.
    pub accept_proxy: Option<super::TrustedProxies>,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: 1024,
            max_connections_per_peer: 64,
            idle_timeout: Duration::from_secs(120),
            evict_idle: Duration::from_secs(10),
            accept_proxy: None,
        }
    }
}

impl TcpLimits {
    /// `max_connections`, `max_connections_per_peer`, `idle_timeout_ms`, `evict_idle_ms`,
    /// `accept_proxy` and `trusted_proxies`.
    ///
    /// # Errors
    /// A value out of bounds.
    pub fn read(s: &Section<'_>) -> Result<Self, ConfigError> {
        let d = TcpLimits::default();
        Ok(TcpLimits {
            max_connections: s.usize("max_connections", d.max_connections, 1, 1_000_000)?,
            max_connections_per_peer: s.usize(
                "max_connections_per_peer",
                d.max_connections_per_peer,
                1,
                1_000_000,
            )?,
            idle_timeout: s.ms("idle_timeout_ms", d.idle_timeout, 100, 86_400_000)?,
            evict_idle: s.ms("evict_idle_ms", d.evict_idle, 0, 86_400_000)?,
            accept_proxy: super::read_accept_proxy(s)?,
        })
    }
}

/// Limits a UDP source can run into; every UDP kind has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpLimits {
    /// Distinct peers tracked at once; datagrams from new peers beyond this
    /// are dropped until old ones expire.
    pub max_peers: usize,
    /// Datagrams per second answered for one source address.
    pub peer_rate: u32,
    /// How many datagrams one source may send at once above the rate.
    pub peer_burst: u32,
    /// A peer is shown (and tracked) for this long after its last datagram.
    pub peer_ttl: Duration,
}

impl Default for UdpLimits {
    fn default() -> Self {
        UdpLimits {
            max_peers: 4096,
            peer_rate: 5000,
            peer_burst: 1000,
            peer_ttl: Duration::from_secs(30),
        }
    }
}

impl UdpLimits {
    /// `max_peers`, `peer_rate`, `peer_burst`, `peer_ttl_ms`.
    ///
    /// # Errors
    /// A value out of bounds.
    pub fn read(s: &Section<'_>) -> Result<Self, ConfigError> {
        let d = UdpLimits::default();
        Ok(UdpLimits {
            max_peers: s.usize("max_peers", d.max_peers, 1, 1_000_000)?,
            peer_rate: s.u32("peer_rate", d.peer_rate, 1, 10_000_000)?,
            peer_burst: s.u32("peer_burst", d.peer_burst, 1, 10_000_000)?,
            peer_ttl: s.ms("peer_ttl_ms", d.peer_ttl, 100, 86_400_000)?,
        })
    }
}
