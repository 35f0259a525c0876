//! Who a dashboard request is from, behind a proxy (`web.trusted_proxies`).
//!
//! Only a peer in `web.trusted_proxies` is believed, in two ways:
//! - a PROXY protocol header (v1 or v2) at the start of its connection
//!   ([`proxy_header`]), optional: a connection without one is plain HTTP;
//! - `Forwarded` (RFC 7239 `for=`) or `X-Forwarded-For` on each request
//!   ([`from_headers`]), read right to left: each hop that is a trusted
//!   proxy passes the word to the one before it, and the right-most address
//!   that is not a trusted proxy is the client. What an untrusted client
//!   writes in these headers is therefore never believed.
//!
//! A proxy sets one of the two and passes the other through as the client
//! sent it: HAProxy's `option forwardfor` appends to `X-Forwarded-For` and
//! leaves a `Forwarded` alone. So a request that carries both, naming two
//! different clients, cannot be read without knowing which one the proxy
//! wrote, and is refused ([`Conflict`]) rather than believed either way.
//!
//! The client found here is the `ConnectInfo` every handler sees: sign-in
//! failure limits, sessions, audit lines and metrics use it. It does not
//! change the connection slot table, which counts the proxy's connections
//! under its own address (see `web.max_connections_per_peer`).

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use tokio::net::TcpStream;

use crate::service::proxy_header::{self, ProxyRefusal};
use crate::settings::TrustedProxies;

/// Hops read from a forwarded header at most: a longer chain is cut there.
const MAX_HOPS: usize = 32;

/// The client a PROXY header from a trusted `peer` names, and `true` (the
/// header was read); `peer` itself and `false` when the peer is not
/// trusted or its connection starts without a header (in one segment: a
/// header split before its signature is taken for HTTP).
///
/// # Errors
/// A trusted peer's header that starts well and then breaks the rules, or
/// does not arrive whole in time: the connection is not HTTP either.
pub async fn proxy_header(
    stream: &mut TcpStream,
    peer: SocketAddr,
    trusted: &TrustedProxies,
) -> Result<(SocketAddr, bool), ProxyRefusal> {
    if !trusted.contains(peer.ip()) {
        return Ok((peer, false));
    }
    let mut head = [0u8; 12];
    let n = stream.peek(&mut head).await?;
    let head = &head[..n];
    let v1 = head.starts_with(b"PROXY ");
    let v2 = n == 12 && head == proxy_protocol_signature();
    if !(v1 || v2) {
        return Ok((peer, false));
    }
    let addresses = proxy_header::read_header(stream).await?;
    Ok((proxy_header::client_of(&addresses, peer), true))
}

/// [`proxy_header`] for a connection whose first byte is in `first`: the
/// client, with `first` now the request's own first byte (TLS or not); or
/// `None` (logged) when the connection is to be closed.
pub async fn take_proxy_header(
    stream: &mut TcpStream,
    peer: SocketAddr,
    trusted: &TrustedProxies,
    first: &mut [u8; 1],
    first_byte: std::time::Duration,
) -> Option<SocketAddr> {
    let (client, header) = match proxy_header(stream, peer, trusted).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(%peer, "dashboard connection from a trusted proxy refused: {e}");
            return None;
        }
    };
    if header {
        let peeked = tokio::time::timeout(first_byte, stream.peek(first)).await;
        if !matches!(peeked, Ok(Ok(n)) if n > 0) {
            return None;
        }
    }
    Some(client)
}

fn proxy_protocol_signature() -> &'static [u8] {
    &crate::wire::proxy_protocol::V2_SIGNATURE
}

/// The client of a request that `peer` sent with `headers`: the right-most
/// hop of `Forwarded` or `X-Forwarded-For` that is not a trusted proxy,
/// walking left only through trusted ones. `peer` when it is not trusted.
///
/// # Errors
/// [`Conflict`]: a trusted peer's request carries both headers and they
/// name different clients.
pub fn from_headers(
    peer: SocketAddr,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Result<SocketAddr, Conflict> {
    if trusted.is_empty() || !trusted.contains(peer.ip()) {
        return Ok(peer);
    }
    let forwarded = headers
        .contains_key("forwarded")
        .then(|| walk(peer, &forwarded_hops(headers), trusted));
    let x_forwarded_for = headers
        .contains_key("x-forwarded-for")
        .then(|| walk(peer, &x_forwarded_for_hops(headers), trusted));
    match (forwarded, x_forwarded_for) {
        (Some(a), Some(b)) if a.ip() != b.ip() => Err(Conflict),
        (Some(client), _) | (None, Some(client)) => Ok(client),
        (None, None) => Ok(peer),
    }
}

/// A request whose `Forwarded` and `X-Forwarded-For` name different
/// clients: one of them is the client's own, and nothing here says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the request's Forwarded and X-Forwarded-For headers name different clients: \
     the proxy in front should set one of them and remove the other"
)]
pub struct Conflict;

/// The right-most of `hops` that is not a trusted proxy, reached from
/// `peer` through trusted ones only.
fn walk(peer: SocketAddr, hops: &[Option<IpAddr>], trusted: &TrustedProxies) -> SocketAddr {
    let mut client = peer;
    for hop in hops.iter().rev().take(MAX_HOPS) {
        if !trusted.contains(client.ip()) {
            break;
        }
        match hop {
            Some(ip) => client = SocketAddr::new(*ip, 0),
            // Garbage from a trusted hop: we cannot look past it.
            None => break,
        }
    }
    client
}

/// Each `X-Forwarded-For` entry, all headers in order; `None` for one that
/// is not an address.
fn x_forwarded_for_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(|s| parse_node(s.trim()))
        .collect()
}

/// Each `Forwarded` element's `for=`; `None` for one without an address
/// (`unknown`, an obfuscated `_name`, no `for`).
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_node(v.trim().trim_matches('"')))
                    .flatten()
            })
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:80`, `2001:db8::1`, `[2001:db8::1]:80`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a.ip().to_canonical());
    }
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|ip| ip.parse::<IpAddr>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn trusted() -> TrustedProxies {
        TrustedProxies::parse(&["10.0.0.0/8", "127.0.0.1"]).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_its_own_client_whatever_it_says() {
        let peer: SocketAddr = "203.0.113.5:5000".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(from_headers(peer, &h, &trusted()).unwrap(), peer);
        assert_eq!(
            from_headers(peer, &h, &TrustedProxies::default()).unwrap(),
            peer
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        // The client spoofed 1.1.1.1; the proxies appended the truth.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1, 198.51.100.7"),
            ("x-forwarded-for", "10.1.2.3"),
        ]);
        assert_eq!(
            from_headers(peer, &h, &trusted()).unwrap().ip(),
            ip("198.51.100.7")
        );
        // Every hop trusted: the left-most one.
        let h = headers(&[("x-forwarded-for", "10.0.0.5, 10.0.0.6")]);
        assert_eq!(
            from_headers(peer, &h, &trusted()).unwrap().ip(),
            ip("10.0.0.5")
        );
        // No header: the proxy itself.
        assert_eq!(
            from_headers(peer, &HeaderMap::new(), &trusted()).unwrap(),
            peer
        );
        // Garbage right of the client: we stop at the hop that sent it.
        let h = headers(&[("x-forwarded-for", "198.51.100.7, nonsense")]);
        assert_eq!(from_headers(peer, &h, &trusted()).unwrap(), peer);
    }

    #[test]
    fn forwarded_is_read() {
        let peer: SocketAddr = "10.9.9.9:5000".parse().unwrap();
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\"",
        )]);
        assert_eq!(
            from_headers(peer, &h, &trusted()).unwrap().ip(),
            ip("2001:db8:cafe::17")
        );
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(from_headers(peer, &h, &trusted()).unwrap(), peer);
        let h = headers(&[("forwarded", "For=192.0.2.60:8080")]);
        assert_eq!(
            from_headers(peer, &h, &trusted()).unwrap().ip(),
            ip("192.0.2.60")
        );
    }

    #[test]
    fn a_header_the_proxy_passed_through_is_not_believed() {
        // HAProxy's `option forwardfor` appended the client it saw; the
        // client sent its own `Forwarded`, which HAProxy leaves alone.
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let h = headers(&[
            ("forwarded", "for=1.2.3.4"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(from_headers(peer, &h, &trusted()), Err(Conflict));
        // The other way round: the proxy wrote `Forwarded`.
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("forwarded", "for=198.51.100.7"),
        ]);
        assert_eq!(from_headers(peer, &h, &trusted()), Err(Conflict));
        // A proxy that sets both, alike, is believed.
        let h = headers(&[
            ("forwarded", "for=198.51.100.7;proto=https"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(
            from_headers(peer, &h, &trusted()).unwrap().ip(),
            ip("198.51.100.7")
        );
        // An untrusted peer's pair is never read at all.
        let direct: SocketAddr = "203.0.113.5:5000".parse().unwrap();
        assert_eq!(from_headers(direct, &h, &trusted()), Ok(direct));
    }
}
