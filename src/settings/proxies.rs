//! `trusted_proxies`: the peers whose word about the real client we
//! believe (a PROXY protocol header, `X-Forwarded-For`, `Forwarded`), as a
//! list of CIDR ranges, and `accept_proxy` of a TCP instance.
//!
//! Only the list and its membership test live here; reading a header and
//! deciding on a connection is the service's and the dashboard's job.

use std::net::IpAddr;

use super::*;

/// One CIDR range: `10.0.0.0/8`, `::1/128`, or a bare address (a host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    base: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the range. An IPv4-mapped IPv6 address (what a
    /// dual-stack socket reports for an IPv4 peer) counts as its IPv4 one.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.base, ip) {
            (IpAddr::V4(b), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(b) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(b), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(b) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not an address or a CIDR range like 10.0.0.0/8 or ::1/128");
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (s, None),
        };
        let base = ip.parse::<IpAddr>().map_err(|_| bad())?.to_canonical();
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        Ok(Cidr { base, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// The peers allowed to speak for a client. Empty: nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Loopback only (`127.0.0.0/8`, `::1/128`): a proxy on the same host,
    /// the default of `accept_proxy`.
    pub fn loopback() -> Self {
        TrustedProxies(vec![
            Cidr {
                base: IpAddr::from([127, 0, 0, 0]),
                prefix: 8,
            },
            Cidr {
                base: IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                prefix: 128,
            },
        ])
    }

    /// Whether `ip` is one of them.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses ranges, as the config gives them.
    ///
    /// # Errors
    /// The first entry that is not an address or a CIDR range.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        items
            .iter()
            .map(|s| s.as_ref().trim().parse::<Cidr>())
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    /// `field` of `s` (a list of CIDR ranges), `None` when unset.
    ///
    /// # Errors
    /// Not a list of strings, or an entry that is not a range.
    pub fn read(s: &Section<'_>, field: &str) -> Result<Option<Self>, ConfigError> {
        match s.str_list(field)? {
            None => Ok(None),
            Some(items) => TrustedProxies::parse(&items)
                .map(Some)
                .map_err(|why| s.bad(field, why)),
        }
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<String> = self.0.iter().map(Cidr::to_string).collect();
        f.write_str(&all.join(", "))
    }
}

/// `accept_proxy` and `trusted_proxies` of a TCP instance: `None` when
/// connections arrive direct (the default), else the peers that may (and
/// must) open each connection with a PROXY protocol header.
///
/// # Errors
/// A bad value; `trusted_proxies` without `accept_proxy`; an empty list;
/// a `unix:` listen address.
pub fn read_accept_proxy(s: &Section<'_>) -> Result<Option<TrustedProxies>, ConfigError> {
    let on = s.bool("accept_proxy", false)?;
    let trusted = TrustedProxies::read(s, "trusted_proxies")?;
    let unix = s.opt_str("listen")?.is_some_and(|l| l.starts_with("unix:"));
    match (on, trusted) {
        (false, None) => Ok(None),
        (true, _) if unix => Err(s.bad(
            "accept_proxy",
            "needs an IP:PORT listen address: a unix: socket has no peer address to trust",
        )),
        (false, Some(_)) => Err(s.bad("trusted_proxies", "is only read with accept_proxy = true")),
        (true, None) => Ok(Some(TrustedProxies::loopback())),
        (true, Some(t)) if t.is_empty() => Err(s.bad(
            "trusted_proxies",
            "is empty, so every connection would be refused: name the proxy's address or range",
        )),
        (true, Some(t)) => Ok(Some(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_contain_what_they_should() {
        let t = TrustedProxies::parse(&["10.0.0.0/8", "192.168.1.7", "fd00::/8"]).unwrap();
        assert!(t.contains("10.200.3.4".parse().unwrap()));
        assert!(t.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(t.contains("192.168.1.7".parse().unwrap()));
        assert!(!t.contains("192.168.1.8".parse().unwrap()));
        assert!(t.contains("fd12::1".parse().unwrap()));
        assert!(!t.contains("fe80::1".parse().unwrap()));
        assert!(!t.contains("11.0.0.1".parse().unwrap()));
        let all = TrustedProxies::parse(&["0.0.0.0/0"]).unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
    }

    #[test]
    fn bad_ranges_are_refused() {
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "host",
            "10.0.0.0/",
            "/8",
            "1.2.3.4/-1",
        ] {
            assert!(TrustedProxies::parse(&[bad]).is_err(), "{bad}");
        }
    }
}
