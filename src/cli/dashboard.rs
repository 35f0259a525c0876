//! A dashboard's address as the commands that ask it take one (`health
//! ADDR`, the `--url` of `service` and `toxic`): a port, `HOST:PORT`, or
//! the URL the banner prints.

use std::net::Ipv6Addr;

/// Where the dashboard is, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardAddr {
    /// `HOST:PORT` to dial: a name, an IPv4 address or a bracketed IPv6
    /// one. The host is also what is sent as `Host`.
    pub addr: String,
    /// What a URL's scheme said: `Some(true)` for `https://`, `Some(false)`
    /// for `http://`; `None` for a bare port or `HOST:PORT`, where the
    /// server's own settings (`web.tls`) say.
    pub https: Option<bool>,
}

/// Parses `8080` (on 127.0.0.1), `localhost:8443`, `[::1]:8080`, or a URL
/// (`https://localhost:8443/`, whose path is ignored; without a port, 80
/// or 443 by its scheme).
///
/// # Errors
/// A message saying what was expected.
pub fn parse_dashboard(text: &str) -> Result<DashboardAddr, String> {
    let usage = || {
        format!("`{text}` is not a dashboard address: use HOST:PORT, PORT or https://HOST:PORT/")
    };
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return match port {
            0 => Err(usage()),
            _ => Ok(DashboardAddr {
                addr: format!("127.0.0.1:{port}"),
                https: None,
            }),
        };
    }
    let (rest, https) = match text.split_once("://") {
        Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
            "http" => (rest, Some(false)),
            "https" => (rest, Some(true)),
            _ => return Err(usage()),
        },
        None => (text, None),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // The host: a bracketed IPv6 address, or a name or IPv4 address (no
    // colon, no userinfo); then `:PORT`, which only a URL may leave out.
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (ip, after) = v6.split_once(']').ok_or_else(usage)?;
            ip.parse::<Ipv6Addr>().map_err(|_| usage())?;
            (&authority[..ip.len() + 2], after)
        }
        None => match authority.find(':') {
            Some(i) => authority.split_at(i),
            None => (authority, ""),
        },
    };
    let name_ok = host.starts_with('[')
        || (!host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    let port = match (port.strip_prefix(':'), https) {
        (Some(p), _) => p.parse::<u16>().ok().filter(|&p| p != 0),
        (None, Some(true)) if port.is_empty() => Some(443),
        (None, Some(false)) if port.is_empty() => Some(80),
        (None, _) => None,
    };
    match (name_ok, port) {
        (true, Some(port)) => Ok(DashboardAddr {
            addr: format!("{host}:{port}"),
            https,
        }),
        _ => Err(usage()),
    }
}
