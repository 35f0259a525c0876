//! How many new clients a udp-proxy opens an upstream socket for, and how
//! fast: at most [`MAX_PER_ADDRESS`] mappings for one source address at a
//! time, and new mappings at most [`PER_SECOND`] a second (a burst of
//! [`BURST`]) for the instance's upstream.
//!
//! Why: two udp-proxies of different processes forwarding to each other
//! see each hop as a new client (each mapping is a new source port of the
//! same address), and nothing of ours marks the datagram, so one datagram
//! would open sockets on both sides until `max_peers` or the fd limit.
//! With these limits such a ring opens at most `MAX_PER_ADDRESS` sockets a
//! side and then stops, its datagram dropped (counted as refused). Real
//! clients behind one address (a NAT) share the cap: 256 at a time.
//!
//! It does not decide which clients exist (`udp::admit` does) nor own the
//! sockets (the proxy's mapping table does): it counts them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use tokio::time::Instant;

/// Mappings one source address may hold at once.
pub const MAX_PER_ADDRESS: usize = 256;
/// New mappings a second for one udp-proxy instance, and the burst.
pub const PER_SECOND: u32 = 256;
pub const BURST: u32 = 256;

/// Why a new client gets no mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{MAX_PER_ADDRESS} clients from this address already")]
    Address,
    #[error("more than {PER_SECOND} new clients a second")]
    Rate,
}

/// The counts; owned by the proxy's one task, so no lock.
pub struct NewPeers {
    per_address: HashMap<IpAddr, usize>,
    tokens: f64,
    refilled: Instant,
}

impl Default for NewPeers {
    fn default() -> Self {
        NewPeers {
            per_address: HashMap::new(),
            tokens: f64::from(BURST),
            refilled: Instant::now(),
        }
    }
}

impl NewPeers {
    /// Counts a new mapping for `ip` at `now`, or says why not.
    ///
    /// # Errors
    /// The address holds [`MAX_PER_ADDRESS`] already, or the rate is spent.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        let held = self.per_address.get(&ip).copied().unwrap_or(0);
        if held >= MAX_PER_ADDRESS {
            return Err(Refusal::Address);
        }
        let since = now.saturating_duration_since(self.refilled);
        self.refilled = now;
        self.tokens =
            (self.tokens + since.as_secs_f64() * f64::from(PER_SECOND)).min(f64::from(BURST));
        if self.tokens < 1.0 {
            return Err(Refusal::Rate);
        }
        self.tokens -= 1.0;
        *self.per_address.entry(ip).or_default() += 1;
        Ok(())
    }

    /// Recounts from the mappings left after some were closed.
    pub fn recount<'a>(&mut self, clients: impl Iterator<Item = &'a SocketAddr>) {
        self.per_address.clear();
        for c in clients {
            *self.per_address.entry(c.ip()).or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// How long the rate takes to refill one token.
    const REFILL: Duration = Duration::from_millis(1000 / PER_SECOND as u64 + 1);

    #[test]
    fn one_address_is_capped_and_the_rate_refills() {
        let mut n = NewPeers::default();
        let t0 = Instant::now();
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        for _ in 0..MAX_PER_ADDRESS {
            n.admit(a, t0).unwrap();
        }
        assert_eq!(n.admit(a, t0), Err(Refusal::Address));
        assert_eq!(n.admit(b, t0), Err(Refusal::Rate), "the burst is spent");
        n.admit(b, t0 + REFILL).unwrap();
        n.recount(std::iter::empty());
        n.admit(a, t0 + 2 * REFILL).unwrap();
    }
}
