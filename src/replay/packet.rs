//! One frame's link layer, IPv4/IPv6 and TCP/UDP headers, decoded to what
//! reassembly needs: endpoints, sequence number, flags and the payload.
//!
//! Pure, and lenient where captures are: checksums are not checked (a
//! capture on the sending host sees them before the NIC fills them in), and
//! Ethernet padding after the IP packet is cut off. What is not TCP or UDP
//! over IP (ARP, ICMP, an unknown link type) is [`Decoded::Other`]; IP
//! fragments are reported, not reassembled.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The link types understood (tcpdump.org/linktypes.html).
pub mod link {
    pub const NULL: u16 = 0;
    pub const ETHERNET: u16 = 1;
    pub const RAW: u16 = 101;
    pub const LOOP: u16 = 108;
    pub const LINUX_SLL: u16 = 113;
    pub const IPV4: u16 = 228;
    pub const IPV6: u16 = 229;
    pub const LINUX_SLL2: u16 = 276;
}

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        })
    }
}

/// TCP flags reassembly looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// A TCP segment or UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    pub proto: Proto,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// TCP only (0 for UDP).
    pub seq: u32,
    pub flags: Flags,
    pub payload: &'a [u8],
    /// The IP packet was longer than what was captured.
    pub cut: bool,
}

/// What a frame turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    Packet(Packet<'a>),
    /// An IP fragment between these addresses, of this IP protocol.
    Fragment {
        a: IpAddr,
        b: IpAddr,
        proto: u8,
    },
    /// Not TCP or UDP over IP, or too short to be; the link type is kept
    /// so an empty result can say which ones were not understood.
    Other {
        unknown_link: Option<u16>,
    },
}

const OTHER: Decoded<'static> = Decoded::Other { unknown_link: None };

/// Decodes a frame of `link` type.
pub fn decode(link: u16, data: &[u8]) -> Decoded<'_> {
    let ip = match link {
        link::ETHERNET => ethernet(data),
        link::RAW | link::IPV4 | link::IPV6 => Some(data),
        // The family word is in the capturing host's byte order (NULL) or
        // big-endian (LOOP); the IP version nibble says the same, safely.
        link::NULL | link::LOOP => data.get(4..),
        link::LINUX_SLL => ethertype_at(data, 14, 16),
        link::LINUX_SLL2 => ethertype_at(data, 0, 20),
        other => {
            return Decoded::Other {
                unknown_link: Some(other),
            };
        }
    };
    ip.map_or(OTHER, decode_ip)
}

/// The payload after an Ethernet header (and up to two VLAN tags), if it
/// carries IP.
fn ethernet(data: &[u8]) -> Option<&[u8]> {
    let mut at = 12;
    for _ in 0..3 {
        let kind = u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?);
        match kind {
            0x0800 | 0x86dd => return data.get(at + 2..),
            0x8100 | 0x88a8 => at += 4,
            _ => return None,
        }
    }
    None
}

/// The payload after a header of `len` bytes whose protocol word is at `at`.
fn ethertype_at(data: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    let kind = u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?);
    matches!(kind, 0x0800 | 0x86dd)
        .then(|| data.get(len..))
        .flatten()
}

fn decode_ip(ip: &[u8]) -> Decoded<'_> {
    match ip.first().map(|b| b >> 4) {
        Some(4) => ipv4(ip).unwrap_or(OTHER),
        Some(6) => ipv6(ip).unwrap_or(OTHER),
        _ => OTHER,
    }
}

fn ipv4(ip: &[u8]) -> Option<Decoded<'_>> {
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    if ihl < 20 || ip.len() < ihl {
        return None;
    }
    let total = match usize::from(u16::from_be_bytes([ip[2], ip[3]])) {
        // A sending host's capture of a segmentation-offloaded packet says
        // 0 (the NIC fills it in); Wireshark takes the captured length too.
        0 => ip.len(),
        n => n,
    };
    if total < ihl {
        return None;
    }
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    let (more, offset) = (frag & 0x2000 != 0, frag & 0x1fff);
    let proto = ip[9];
    let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
    if more || offset != 0 {
        return Some(Decoded::Fragment {
            a: src,
            b: dst,
            proto,
        });
    }
    // Shorter than `total`: cut by the snap length. Longer: link padding.
    let cut = ip.len() < total;
    let body = &ip[ihl..total.min(ip.len())];
    transport(proto, src, dst, body, cut)
}

fn ipv6(ip: &[u8]) -> Option<Decoded<'_>> {
    if ip.len() < 40 {
        return None;
    }
    let payload_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    let src = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).ok()?));
    let dst = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).ok()?));
    let cut = ip.len() < 40 + payload_len;
    // A jumbogram (length 0) is not something a replay needs.
    if payload_len == 0 {
        return None;
    }
    let mut body = &ip[40..(40 + payload_len).min(ip.len())];
    let mut next = ip[6];
    // Extension headers, a bounded number of them.
    for _ in 0..8 {
        match next {
            // Hop-by-hop, routing, destination options.
            0 | 43 | 60 => {
                let len = (usize::from(*body.get(1)?) + 1) * 8;
                next = body[0];
                body = body.get(len..)?;
            }
            // Authentication header: its length is in 4-byte units, minus 2.
            51 => {
                let len = (usize::from(*body.get(1)?) + 2) * 4;
                next = body[0];
                body = body.get(len..)?;
            }
            44 => {
                let header = body.get(..8)?;
                let frag = u16::from_be_bytes([header[2], header[3]]);
                // Offset 0 and no more fragments: an "atomic" fragment,
                // the whole packet.
                if frag & 0xfff9 != 0 {
                    return Some(Decoded::Fragment {
                        a: src,
                        b: dst,
                        proto: header[0],
                    });
                }
                next = header[0];
                body = &body[8..];
            }
            proto => return transport(proto, src, dst, body, cut),
        }
    }
    None
}

fn transport<'a>(
    proto: u8,
    src: IpAddr,
    dst: IpAddr,
    body: &'a [u8],
    cut: bool,
) -> Option<Decoded<'a>> {
    let port = |at: usize| Some(u16::from_be_bytes(body.get(at..at + 2)?.try_into().ok()?));
    let (src, dst) = (
        SocketAddr::new(src, port(0)?),
        SocketAddr::new(dst, port(2)?),
    );
    match proto {
        6 => {
            let header = body.get(..20)?;
            let offset = usize::from(header[12] >> 4) * 4;
            if offset < 20 {
                return None;
            }
            let bits = header[13];
            let flags = Flags {
                fin: bits & 0x01 != 0,
                syn: bits & 0x02 != 0,
                rst: bits & 0x04 != 0,
                ack: bits & 0x10 != 0,
            };
            Some(Decoded::Packet(Packet {
                proto: Proto::Tcp,
                src,
                dst,
                seq: u32::from_be_bytes(header[4..8].try_into().ok()?),
                flags,
                // Options cut off by the snap length leave no payload.
                payload: body.get(offset..).unwrap_or_default(),
                cut: cut || body.len() < offset,
            }))
        }
        17 => {
            let header = body.get(..8)?;
            let len = usize::from(u16::from_be_bytes([header[4], header[5]]));
            if len < 8 {
                return None;
            }
            let end = len.min(body.len());
            Some(Decoded::Packet(Packet {
                proto: Proto::Udp,
                src,
                dst,
                seq: 0,
                flags: Flags::default(),
                payload: &body[8..end],
                cut: cut || body.len() < len,
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::tests::{ipv4_tcp, ipv4_udp, ipv6_tcp};

    fn packet(d: Decoded<'_>) -> Packet<'_> {
        match d {
            Decoded::Packet(p) => p,
            other => panic!("not a packet: {other:?}"),
        }
    }

    #[test]
    fn decodes_tcp_over_every_link_type() {
        let ip = ipv4_tcp([10, 0, 0, 1], 4000, [10, 0, 0, 2], 7, 1234, 0x18, b"hi");
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x08, 0x00]);
        eth.extend_from_slice(&ip);
        let mut vlan = vec![0u8; 12];
        vlan.extend_from_slice(&[0x81, 0x00, 0, 5, 0x08, 0x00]);
        vlan.extend_from_slice(&ip);
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(&ip);
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(&ip);
        for (link, frame) in [
            (link::ETHERNET, &eth),
            (link::ETHERNET, &vlan),
            (link::RAW, &ip),
            (link::NULL, &null),
            (link::LINUX_SLL, &sll),
            (link::LINUX_SLL2, &sll2),
        ] {
            let p = packet(decode(link, frame));
            assert_eq!(p.proto, Proto::Tcp, "link {link}");
            assert_eq!(p.src, "10.0.0.1:4000".parse().unwrap());
            assert_eq!(p.dst, "10.0.0.2:7".parse().unwrap());
            assert_eq!(p.seq, 1234);
            assert!(p.flags.ack && !p.flags.syn);
            assert_eq!(p.payload, b"hi", "link {link}");
            assert!(!p.cut);
        }
    }

    #[test]
    fn ethernet_padding_is_cut_off_and_a_short_capture_is_marked() {
        let mut ip = ipv4_udp([127, 0, 0, 1], 5000, [127, 0, 0, 1], 9001, b"x");
        ip.extend_from_slice(&[0; 10]);
        let p = packet(decode(link::RAW, &ip));
        assert_eq!((p.proto, p.payload, p.cut), (Proto::Udp, &b"x"[..], false));

        let ip = ipv4_tcp([1, 1, 1, 1], 1, [2, 2, 2, 2], 2, 0, 0x10, b"abcdef");
        let p = packet(decode(link::RAW, &ip[..ip.len() - 2]));
        assert_eq!((p.payload, p.cut), (&b"abcd"[..], true));

        // Total length 0: an offloaded segment, as long as captured.
        let mut tso = ip.clone();
        tso[2..4].copy_from_slice(&[0, 0]);
        let p = packet(decode(link::RAW, &tso));
        assert_eq!((p.payload, p.cut), (&b"abcdef"[..], false));
    }

    #[test]
    fn decodes_ipv6_with_an_extension_header() {
        let ip = ipv6_tcp(b"v6 data", true);
        let p = packet(decode(link::RAW, &ip));
        assert_eq!(p.src, "[::1]:4000".parse().unwrap());
        assert_eq!(p.payload, b"v6 data");
    }

    #[test]
    fn fragments_are_reported() {
        let mut ip = ipv4_udp([10, 0, 0, 1], 1, [10, 0, 0, 2], 2, b"frag");
        ip[6] = 0x20; // more fragments
        assert!(matches!(
            decode(link::RAW, &ip),
            Decoded::Fragment { proto: 17, .. }
        ));
    }

    #[test]
    fn other_traffic_is_other() {
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06, 0, 1]);
        assert_eq!(decode(link::ETHERNET, &arp), OTHER);
        assert_eq!(
            decode(147, b"whatever"),
            Decoded::Other {
                unknown_link: Some(147)
            }
        );
        assert_eq!(decode(link::RAW, &[0x45, 0, 0]), OTHER);
    }
}
