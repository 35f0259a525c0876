//! The PROXY protocol header (HAProxy's `proxy-protocol.txt`, versions 1
//! and 2): what `tcp-proxy` sends its upstream first, so the upstream learns
//! the real client's address instead of ours.
//!
//! Pure functions: [`encode`] builds a header, [`decode`] reads one from the
//! start of a buffer (`Ok(None)` while it is incomplete). `tcp-proxy`
//! sends headers; `accept_proxy` services and the dashboard read them
//! (`service::proxy_header`). TLVs of a v2 header are skipped, not
//! interpreted: we never send any, and the client's address is all we read.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The version-2 signature: `\r\n\r\n\0\r\nQUIT\n`.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The longest version-1 line, CRLF included (the spec's figure).
pub const V1_MAX_LEN: usize = 107;

/// The largest version-2 header we read: 16 fixed bytes and the spec's
/// recommended 520 of addresses and TLVs, 536 in all.
pub const V2_MAX_LEN: usize = 536;

/// Which version to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Human-readable, one line.
    V1,
    /// Binary.
    V2,
}

/// What a header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addresses {
    /// A TCP connection from `src` (the client) to `dst` (where it connected).
    Tcp { src: SocketAddr, dst: SocketAddr },
    /// The client has no IP address (a unix socket): v1 `UNKNOWN`, v2 `LOCAL`.
    Unknown,
}

/// Why bytes are not a PROXY header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("not a PROXY protocol header")]
    NotProxy,
    #[error("PROXY v1 line longer than {V1_MAX_LEN} bytes")]
    LineTooLong,
    #[error("bad PROXY v1 line: {0}")]
    BadLine(String),
    #[error("PROXY v2 header of {len} bytes exceeds the {V2_MAX_LEN}-byte limit")]
    TooLarge { len: usize },
    #[error("unknown PROXY v2 version/command byte {0:#04x}")]
    UnknownCommand(u8),
    #[error("unknown PROXY v2 address family/protocol byte {0:#04x}")]
    UnknownFamily(u8),
    #[error("PROXY v2 address block of {len} bytes is too short for its family")]
    ShortAddresses { len: usize },
}

/// `src` and `dst` in one family, as both versions need: when they differ,
/// the IPv4 one is written as IPv4-mapped IPv6.
fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    if src.is_ipv4() == dst.is_ipv4() {
        (src, dst)
    } else {
        (v6(src), v6(dst))
    }
}

/// The header announcing `addresses`, in `version`.
pub fn encode(version: Version, addresses: &Addresses) -> Vec<u8> {
    match version {
        Version::V1 => encode_v1(addresses),
        Version::V2 => encode_v2(addresses),
    }
}

fn encode_v1(addresses: &Addresses) -> Vec<u8> {
    match *addresses {
        Addresses::Unknown => b"PROXY UNKNOWN\r\n".to_vec(),
        Addresses::Tcp { src, dst } => {
            let (src, dst) = same_family(src, dst);
            let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
            format!(
                "PROXY {family} {} {} {} {}\r\n",
                src.ip(),
                dst.ip(),
                src.port(),
                dst.port()
            )
            .into_bytes()
        }
    }
}

fn encode_v2(addresses: &Addresses) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 36);
    out.extend_from_slice(&V2_SIGNATURE);
    match *addresses {
        Addresses::Unknown => {
            // LOCAL, UNSPEC, no addresses: the upstream uses the real
            // connection's (ours), as the spec says for LOCAL.
            out.extend_from_slice(&[0x20, 0x00, 0, 0]);
        }
        Addresses::Tcp { src, dst } => {
            let (src, dst) = same_family(src, dst);
            match (src.ip(), dst.ip()) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    out.extend_from_slice(&[0x21, 0x11, 0, 12]);
                    out.extend_from_slice(&s.octets());
                    out.extend_from_slice(&d.octets());
                }
                (s, d) => {
                    let v6 = |ip: IpAddr| match ip {
                        IpAddr::V6(ip) => ip,
                        IpAddr::V4(ip) => ip.to_ipv6_mapped(),
                    };
                    out.extend_from_slice(&[0x21, 0x21, 0, 36]);
                    out.extend_from_slice(&v6(s).octets());
                    out.extend_from_slice(&v6(d).octets());
                }
            }
            out.extend_from_slice(&src.port().to_be_bytes());
            out.extend_from_slice(&dst.port().to_be_bytes());
        }
    }
    out
}

/// A header read from the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: Version,
    pub addresses: Addresses,
}

/// Reads a header from the start of `buf`: `Ok(None)` while `buf` is a
/// prefix of one, else the header and how many bytes it took.
///
/// # Errors
/// The bytes cannot start a header, or break the version's rules.
pub fn decode(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyHeaderError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    match first {
        b'P' => decode_v1(buf),
        b'\r' => decode_v2(buf),
        _ => Err(ProxyHeaderError::NotProxy),
    }
}

fn decode_v1(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyHeaderError> {
    const PREFIX: &[u8] = b"PROXY ";
    let head = &buf[..buf.len().min(PREFIX.len())];
    if !PREFIX.starts_with(head) {
        return Err(ProxyHeaderError::NotProxy);
    }
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX_LEN {
            Err(ProxyHeaderError::LineTooLong)
        } else {
            Ok(None)
        };
    };
    let line = std::str::from_utf8(&buf[PREFIX.len()..end])
        .map_err(|_| ProxyHeaderError::BadLine("not ASCII".into()))?;
    let bad = |why: &str| ProxyHeaderError::BadLine(format!("{why}: `{}`", line.escape_debug()));
    let fields: Vec<&str> = line.split(' ').collect();
    let addresses = match fields.as_slice() {
        ["UNKNOWN", ..] => Addresses::Unknown,
        [family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip = |s: &str| s.parse::<IpAddr>().map_err(|_| bad("bad address"));
            // Ports are 1 to 5 digits with no sign or leading zero.
            let port = |s: &str| {
                if s.len() > 1 && s.starts_with('0') || s.starts_with('+') {
                    return Err(bad("bad port"));
                }
                s.parse::<u16>().map_err(|_| bad("bad port"))
            };
            let (src, dst) = (ip(src)?, ip(dst)?);
            let v4 = *family == "TCP4";
            if src.is_ipv4() != v4 || dst.is_ipv4() != v4 {
                return Err(bad("address of the wrong family"));
            }
            Addresses::Tcp {
                src: SocketAddr::new(src, port(sport)?),
                dst: SocketAddr::new(dst, port(dport)?),
            }
        }
        _ => return Err(bad("expected TCP4, TCP6 or UNKNOWN and four fields")),
    };
    let header = Header {
        version: Version::V1,
        addresses,
    };
    Ok(Some((header, end + 2)))
}

fn decode_v2(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyHeaderError> {
    let sig = &buf[..buf.len().min(V2_SIGNATURE.len())];
    if !V2_SIGNATURE.starts_with(sig) {
        return Err(ProxyHeaderError::NotProxy);
    }
    if buf.len() < 16 {
        return Ok(None);
    }
    let (ver_cmd, fam) = (buf[12], buf[13]);
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if 16 + len > V2_MAX_LEN {
        return Err(ProxyHeaderError::TooLarge { len: 16 + len });
    }
    let local = match ver_cmd {
        0x20 => true,
        0x21 => false,
        other => return Err(ProxyHeaderError::UnknownCommand(other)),
    };
    let need = match fam {
        0x00 => 0,
        0x11 => 12,
        0x21 => 36,
        // UDP and unix families: valid v2, but not what a TCP proxy sends.
        other => return Err(ProxyHeaderError::UnknownFamily(other)),
    };
    if len < need {
        return Err(ProxyHeaderError::ShortAddresses { len });
    }
    if buf.len() < 16 + len {
        return Ok(None);
    }
    let a = &buf[16..16 + len];
    let port = |at: usize| u16::from_be_bytes([a[at], a[at + 1]]);
    let addresses = match fam {
        // LOCAL ignores any addresses, as the spec says; so does UNSPEC.
        _ if local => Addresses::Unknown,
        0x11 => {
            let ip = |at: usize| IpAddr::from([a[at], a[at + 1], a[at + 2], a[at + 3]]);
            Addresses::Tcp {
                src: SocketAddr::new(ip(0), port(8)),
                dst: SocketAddr::new(ip(4), port(10)),
            }
        }
        0x21 => {
            let ip = |at: usize| {
                let octets: [u8; 16] = a[at..at + 16].try_into().expect("16 bytes checked above");
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            Addresses::Tcp {
                src: SocketAddr::new(ip(0), port(32)),
                dst: SocketAddr::new(ip(16), port(34)),
            }
        }
        _ => Addresses::Unknown,
    };
    let header = Header {
        version: Version::V2,
        addresses,
    };
    Ok(Some((header, 16 + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(src: &str, dst: &str) -> Addresses {
        Addresses::Tcp {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
        }
    }

    fn cases() -> Vec<Addresses> {
        vec![
            tcp("192.168.0.1:56324", "192.168.0.11:443"),
            tcp("[2001:db8::1]:1", "[::1]:65535"),
            Addresses::Unknown,
        ]
    }

    #[test]
    fn v1_matches_the_spec_example() {
        let header = encode(Version::V1, &tcp("192.168.0.1:56324", "192.168.0.11:443"));
        assert_eq!(header, b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
        assert_eq!(
            encode(Version::V1, &Addresses::Unknown),
            b"PROXY UNKNOWN\r\n"
        );
    }

    #[test]
    fn v2_is_laid_out_as_the_spec_says() {
        let h = encode(Version::V2, &tcp("10.0.0.1:1000", "10.0.0.2:80"));
        assert_eq!(&h[..12], &V2_SIGNATURE);
        assert_eq!(&h[12..16], &[0x21, 0x11, 0, 12]);
        assert_eq!(&h[16..], &[10, 0, 0, 1, 10, 0, 0, 2, 0x03, 0xe8, 0, 80]);
        let local = encode(Version::V2, &Addresses::Unknown);
        assert_eq!(&local[12..], &[0x20, 0x00, 0, 0]);
    }

    #[test]
    fn round_trips_both_versions() {
        for version in [Version::V1, Version::V2] {
            for addresses in cases() {
                let bytes = encode(version, &addresses);
                let (h, used) = decode(&bytes).unwrap().unwrap();
                assert_eq!(used, bytes.len());
                assert_eq!(h, Header { version, addresses });
            }
        }
    }

    #[test]
    fn mixed_families_become_ipv6() {
        let mixed = tcp("127.0.0.1:5000", "[::1]:7000");
        for version in [Version::V1, Version::V2] {
            let (h, _) = decode(&encode(version, &mixed)).unwrap().unwrap();
            assert_eq!(h.addresses, tcp("[::ffff:127.0.0.1]:5000", "[::1]:7000"));
        }
    }

    #[test]
    fn every_prefix_waits_for_more() {
        for version in [Version::V1, Version::V2] {
            for addresses in cases() {
                let bytes = encode(version, &addresses);
                for cut in 0..bytes.len() {
                    assert_eq!(decode(&bytes[..cut]), Ok(None), "{version:?} cut at {cut}");
                }
            }
        }
    }

    #[test]
    fn the_header_ends_where_the_payload_starts() {
        for version in [Version::V1, Version::V2] {
            let mut bytes = encode(version, &cases()[0]);
            let len = bytes.len();
            bytes.extend_from_slice(&encode(version, &cases()[1]));
            bytes.extend_from_slice(b"GET / HTTP/1.0\r\n");
            let (first, used) = decode(&bytes).unwrap().unwrap();
            assert_eq!((first.addresses, used), (cases()[0], len));
            let (second, _) = decode(&bytes[used..]).unwrap().unwrap();
            assert_eq!(second.addresses, cases()[1]);
        }
    }

    #[test]
    fn oversized_and_foreign_input_is_refused() {
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
        assert_eq!(decode(&long), Err(ProxyHeaderError::LineTooLong));
        assert_eq!(
            decode(b"GET / HTTP/1.1\r\n"),
            Err(ProxyHeaderError::NotProxy)
        );
        assert_eq!(decode(b"PRAXY"), Err(ProxyHeaderError::NotProxy));
        assert_eq!(decode(b"\r\n\r\n\0X"), Err(ProxyHeaderError::NotProxy));
        let mut big = encode(Version::V2, &Addresses::Unknown);
        big[14..16].copy_from_slice(&1000u16.to_be_bytes());
        assert!(matches!(
            decode(&big),
            Err(ProxyHeaderError::TooLarge { .. })
        ));
    }

    #[test]
    fn unknown_commands_families_and_bad_lines_are_refused() {
        let mut h = encode(Version::V2, &cases()[0]);
        h[12] = 0x31; // version 3
        assert_eq!(decode(&h), Err(ProxyHeaderError::UnknownCommand(0x31)));
        let mut h = encode(Version::V2, &cases()[0]);
        h[13] = 0x12; // TCP4 → UDP4
        assert_eq!(decode(&h), Err(ProxyHeaderError::UnknownFamily(0x12)));
        let mut h = encode(Version::V2, &cases()[0]);
        h[15] = 4; // too short for IPv4 addresses
        assert_eq!(decode(&h), Err(ProxyHeaderError::ShortAddresses { len: 4 }));
        for line in [
            "PROXY TCP4 1.2.3.4 ::1 1 2\r\n",
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
            "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            "PROXY TCP4 1.2.3.4\r\n",
        ] {
            assert!(
                matches!(decode(line.as_bytes()), Err(ProxyHeaderError::BadLine(_))),
                "{line:?}"
            );
        }
    }

    #[test]
    fn v2_tlvs_are_skipped() {
        let mut h = encode(Version::V2, &cases()[0]);
        h[15] += 3;
        h.extend_from_slice(&[0x04, 0, 0]); // a NOOP TLV
        h.extend_from_slice(b"data");
        let (header, used) = decode(&h).unwrap().unwrap();
        assert_eq!(header.addresses, cases()[0]);
        assert_eq!(&h[used..], b"data");
    }
}
