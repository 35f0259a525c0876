//! Captures as a pcapng file: pure encoding, no I/O, made piece by piece
//! ([`Encoder`]) so an export never holds the whole file.
//!
//! A capture holds what the sockets read and wrote, not packets, so the
//! packets are made up around the bytes: raw IPv4 or IPv6 (by the peer's
//! family; a unix-socket peer gets 127.0.0.1 addresses) with TCP or UDP
//! headers whose checksums are right. A TCP connection opens with a
//! SYN / SYN-ACK / ACK handshake, each segment becomes one packet (split
//! where a packet would pass 64 KiB) with consistent sequence and
//! acknowledgement numbers, and a closed one ends with FINs. A direction
//! whose oldest bytes were evicted starts at the sequence number those
//! bytes would have had, so Wireshark marks "previous segment not
//! captured", and the packet carries a comment saying how many bytes are
//! missing. A UDP peer's datagrams are one packet each.
//!
//! The file is one section with one interface (link type RAW, 101) and
//! microsecond timestamps (`if_tsresol` left at its default); the client
//! is the peer, the server our side.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::{CaptureCopy, Dir};
use crate::kind::Proto;

/// Link type of raw IP packets (v4 or v6, told apart by their first nibble).
const LINKTYPE_RAW: u16 = 101;
/// The most a packet may hold: the 16-bit IP length fields.
const MAX_IP_PACKET: usize = 65_535;
const TCP_HEADER: usize = 20;
const UDP_HEADER: usize = 8;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// One packet to write: when, between whom, its TCP or UDP header's
/// fields, where its payload is (never a copy of it), and an optional
/// comment. The packet's bytes are made only as it is written.
struct Packet {
    ts_us: u64,
    src: SocketAddr,
    dst: SocketAddr,
    l4: L4,
    /// (capture, segment, start, end) of the payload, if any.
    payload: Option<(usize, usize, usize, usize)>,
    comment: Option<String>,
}

#[derive(Clone, Copy)]
enum L4 {
    Tcp { seq: u32, ack: u32, flags: u8 },
    Udp,
}

/// Encodes `captures` (each one connection or UDP peer) as one pcapng
/// file, every packet in time order.
pub fn encode(captures: &[CaptureCopy]) -> Vec<u8> {
    let mut encoder = Encoder::new(captures.to_vec());
    let mut out = Vec::with_capacity(usize::try_from(encoder.file_len()).unwrap_or(0));
    while let Some(piece) = encoder.next_piece(usize::MAX) {
        out.extend_from_slice(&piece);
    }
    out
}

/// A pcapng file made piece by piece from the captures it owns: what it
/// holds beyond them is one small record per packet and the piece being
/// made, so an export costs about what it exports, not three times that
/// (a copy, the packets, the file).
pub struct Encoder {
    captures: Vec<CaptureCopy>,
    packets: std::vec::IntoIter<Packet>,
    /// The file's length, known before a byte is made.
    len: u64,
    header_sent: bool,
}

impl Encoder {
    pub fn new(captures: Vec<CaptureCopy>) -> Encoder {
        let mut packets: Vec<Packet> = Vec::new();
        for (n, c) in captures.iter().enumerate() {
            let flow = Flow::of(c, n);
            match c.info.proto {
                Proto::Tcp => flow.tcp(c, n, &mut packets),
                Proto::Udp => flow.udp(c, n, &mut packets),
            }
        }
        // Stable: a connection's own packets keep their order at equal times.
        packets.sort_by_key(|p| p.ts_us);
        let mut head = Vec::new();
        section_header(&mut head);
        interface(&mut head);
        let len = head.len() as u64 + packets.iter().map(block_len).sum::<u64>();
        Encoder {
            captures,
            packets: packets.into_iter(),
            len,
            header_sent: false,
        }
    }

    /// The whole file's length in bytes.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// The next piece of the file: whole blocks, about `size` bytes (more
    /// when one packet is larger), or `None` at the end.
    pub fn next_piece(&mut self, size: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        if !self.header_sent {
            self.header_sent = true;
            section_header(&mut out);
            interface(&mut out);
        }
        while out.len() < size {
            let Some(p) = self.packets.next() else { break };
            let payload = p.payload.map_or(&[][..], |(c, s, from, to)| {
                &self.captures[c].segments[s].bytes[from..to]
            });
            let l4 = match p.l4 {
                L4::Tcp { seq, ack, flags } => tcp_segment(p.src, p.dst, seq, ack, flags, payload),
                L4::Udp => udp_datagram(p.src, p.dst, payload),
            };
            let proto = match p.l4 {
                L4::Tcp { .. } => 6,
                L4::Udp => 17,
            };
            let data = ip_packet(p.src, p.dst, proto, &l4);
            enhanced_packet(&mut out, p.ts_us, &data, p.comment.as_deref());
        }
        (!out.is_empty()).then_some(out)
    }
}

impl Iterator for Encoder {
    type Item = Vec<u8>;

    /// Pieces of about [`PIECE`] bytes.
    fn next(&mut self) -> Option<Vec<u8>> {
        self.next_piece(PIECE)
    }
}

/// The size of the pieces an [`Encoder`] yields as an iterator.
pub const PIECE: usize = 1 << 20;

/// The length of a packet's block, as [`enhanced_packet`] writes it.
fn block_len(p: &Packet) -> u64 {
    let ip = if p.src.is_ipv4() { 20 } else { 40 };
    let l4 = match p.l4 {
        L4::Tcp { .. } => TCP_HEADER,
        L4::Udp => UDP_HEADER,
    };
    let payload = p.payload.map_or(0, |(_, _, from, to)| to - from);
    let data = ip + l4 + payload;
    let mut body = 20 + data.div_ceil(4) * 4;
    if let Some(c) = &p.comment {
        body += 4 + c.len().div_ceil(4) * 4 + 4;
    }
    12 + body as u64
}

/// The two ends of one capture.
struct Flow {
    client: SocketAddr,
    server: SocketAddr,
    opened_us: u64,
}

impl Flow {
    fn of(c: &CaptureCopy, n: usize) -> Flow {
        // A unix-socket peer has no address: made-up loopback ones, a
        // client port per capture so each is its own stream.
        let made_up_port = 40_000 + (n % 20_000) as u16;
        let client = c
            .client
            .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, made_up_port)));
        let mut server = c.server.unwrap_or_else(|| match client {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::LOCALHOST, 9)),
            SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 9)),
        });
        // Both ends in one family: a v4 peer of a dual-stack socket comes
        // as a mapped address, and a wildcard bind names no address.
        if let (IpAddr::V6(v6), SocketAddr::V4(_)) = (server.ip(), client)
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            server.set_ip(IpAddr::V4(v4));
        }
        if server.ip().is_unspecified() || server.is_ipv4() != client.is_ipv4() {
            server.set_ip(if client.is_ipv4() {
                Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        Flow {
            client,
            server,
            opened_us: c.info.opened_at_unix_us,
        }
    }

    fn ends(&self, dir: Dir) -> (SocketAddr, SocketAddr) {
        match dir {
            Dir::In => (self.client, self.server),
            Dir::Out => (self.server, self.client),
        }
    }

    fn max_payload(&self, header: usize) -> usize {
        let ip = if self.client.is_ipv4() { 20 } else { 0 };
        MAX_IP_PACKET - ip - header
    }

    fn tcp(&self, c: &CaptureCopy, n: usize, out: &mut Vec<Packet>) {
        // Fixed initial sequence numbers: the file says nothing about the
        // real ones, and fixed ones make exports comparable.
        let isn = [0x1000_0000u32, 0x2000_0000u32];
        // Next sequence number each side sends (relative to its isn + 1),
        // starting after the gap of its evicted bytes.
        let mut next = [c.info.dropped_in, c.info.dropped_out];
        let gap = next;
        let seq_of = |d: usize, off: u64| isn[d].wrapping_add(1).wrapping_add(off as u32);
        let t0 = self.opened_us;
        let mut push = |dir: Dir, ts_us: u64, flags: u8, seq: u32, ack: u32| {
            let (src, dst) = self.ends(dir);
            out.push(Packet {
                ts_us,
                src,
                dst,
                l4: L4::Tcp { seq, ack, flags },
                payload: None,
                comment: None,
            });
        };
        push(Dir::In, t0, SYN, isn[0], 0);
        push(Dir::Out, t0, SYN | ACK, isn[1], isn[0].wrapping_add(1));
        push(
            Dir::In,
            t0,
            ACK,
            isn[0].wrapping_add(1),
            isn[1].wrapping_add(1),
        );
        let max = self.max_payload(TCP_HEADER);
        let mut first = [true, true];
        for (i, s) in c.segments.iter().enumerate() {
            let d = s.dir.index();
            let other = 1 - d;
            let mut off = s.offset;
            for (k, chunk) in s.bytes.chunks(max).enumerate() {
                let from = k * max;
                let (src, dst) = self.ends(s.dir);
                let seq = seq_of(d, off);
                let ack = seq_of(other, next[other]);
                let comment = (first[d] && k == 0 && gap[d] > 0).then(|| {
                    format!(
                        "{} earlier bytes from the {} were not captured (capture_bytes or \
                         capture_total_bytes reached)",
                        gap[d],
                        side(s.dir)
                    )
                });
                out.push(Packet {
                    ts_us: t0 + s.t_us,
                    src,
                    dst,
                    l4: L4::Tcp {
                        seq,
                        ack,
                        flags: PSH | ACK,
                    },
                    payload: Some((n, i, from, from + chunk.len())),
                    comment,
                });
                off += chunk.len() as u64;
            }
            first[d] = false;
            next[d] = next[d].max(off);
        }
        if let Some(closed) = c.closed_us {
            let ts = t0 + closed;
            let (ci, si) = (seq_of(0, next[0]), seq_of(1, next[1]));
            let mut push = |dir: Dir, flags: u8, seq: u32, ack: u32| {
                let (src, dst) = self.ends(dir);
                out.push(Packet {
                    ts_us: ts,
                    src,
                    dst,
                    l4: L4::Tcp { seq, ack, flags },
                    payload: None,
                    comment: None,
                });
            };
            push(Dir::In, FIN | ACK, ci, si);
            push(Dir::Out, FIN | ACK, si, ci.wrapping_add(1));
            push(Dir::In, ACK, ci.wrapping_add(1), si.wrapping_add(1));
        }
    }

    fn udp(&self, c: &CaptureCopy, n: usize, out: &mut Vec<Packet>) {
        let max = self.max_payload(UDP_HEADER);
        let gap = [c.info.dropped_in, c.info.dropped_out];
        let mut first = [true, true];
        for (i, s) in c.segments.iter().enumerate() {
            let d = s.dir.index();
            let (src, dst) = self.ends(s.dir);
            for (k, chunk) in s.bytes.chunks(max).enumerate() {
                let from = k * max;
                let comment = (first[d] && k == 0 && gap[d] > 0).then(|| {
                    format!(
                        "{} earlier bytes from the {} were not captured",
                        gap[d],
                        side(s.dir)
                    )
                });
                out.push(Packet {
                    ts_us: self.opened_us + s.t_us,
                    src,
                    dst,
                    l4: L4::Udp,
                    payload: Some((n, i, from, from + chunk.len())),
                    comment,
                });
            }
            first[d] = false;
        }
    }
}

fn side(dir: Dir) -> &'static str {
    match dir {
        Dir::In => "client",
        Dir::Out => "server",
    }
}

/// The one's-complement sum of `data` as 16-bit big-endian words, added
/// to `sum`.
fn sum_words(mut sum: u32, data: &[u8]) -> u32 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The sum of the TCP/UDP pseudo-header.
fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let mut sum = 0;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            sum = sum_words(sum, &s.octets());
            sum = sum_words(sum, &d.octets());
        }
        (s, d) => {
            sum = sum_words(sum, &v6(s).octets());
            sum = sum_words(sum, &v6(d).octets());
        }
    }
    sum + u32::from(proto) + len as u32
}

fn v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// A TCP header (no options, window 65535) and `payload`, checksummed.
fn tcp_segment(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut t = Vec::with_capacity(TCP_HEADER + payload.len());
    t.extend_from_slice(&src.port().to_be_bytes());
    t.extend_from_slice(&dst.port().to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&(if flags & ACK != 0 { ack } else { 0 }).to_be_bytes());
    t.push(((TCP_HEADER / 4) as u8) << 4);
    t.push(flags);
    t.extend_from_slice(&65_535u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    t.extend_from_slice(payload);
    let sum = sum_words(pseudo_header(src.ip(), dst.ip(), 6, t.len()), &t);
    t[16..18].copy_from_slice(&fold(sum).to_be_bytes());
    t
}

/// A UDP header and `payload`, checksummed.
fn udp_datagram(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let len = UDP_HEADER + payload.len();
    let mut u = Vec::with_capacity(len);
    u.extend_from_slice(&src.port().to_be_bytes());
    u.extend_from_slice(&dst.port().to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let mut sum = fold(sum_words(pseudo_header(src.ip(), dst.ip(), 17, len), &u));
    if sum == 0 {
        sum = 0xffff; // zero means "no checksum" in UDP
    }
    u[6..8].copy_from_slice(&sum.to_be_bytes());
    u
}

/// An IP packet from `src` to `dst` carrying `body` of protocol `proto`.
fn ip_packet(src: SocketAddr, dst: SocketAddr, proto: u8, body: &[u8]) -> Vec<u8> {
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = 20 + body.len();
            let mut p = Vec::with_capacity(total);
            p.extend_from_slice(&[0x45, 0]);
            p.extend_from_slice(&(total as u16).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            let sum = fold(sum_words(0, &p));
            p[10..12].copy_from_slice(&sum.to_be_bytes());
            p.extend_from_slice(body);
            p
        }
        (s, d) => {
            let mut p = Vec::with_capacity(40 + body.len());
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&(body.len() as u16).to_be_bytes());
            p.extend_from_slice(&[proto, 64]);
            p.extend_from_slice(&v6(s).octets());
            p.extend_from_slice(&v6(d).octets());
            p.extend_from_slice(body);
            p
        }
    }
}

/// Appends one block: type, total length, body (padded to 32 bits),
/// total length again.
fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(out.len() + padded - body.len(), 0);
    out.extend_from_slice(&total.to_le_bytes());
}

/// Appends an option (code, length, value padded to 32 bits).
fn option(body: &mut Vec<u8>, code: u16, value: &[u8]) {
    body.extend_from_slice(&code.to_le_bytes());
    body.extend_from_slice(&(value.len() as u16).to_le_bytes());
    body.extend_from_slice(value);
    body.resize(body.len() + value.len().div_ceil(4) * 4 - value.len(), 0);
}

fn end_of_options(body: &mut Vec<u8>) {
    body.extend_from_slice(&[0, 0, 0, 0]);
}

fn section_header(out: &mut Vec<u8>) {
    let mut body = Vec::new();
    body.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&u64::MAX.to_le_bytes()); // section length unknown
    option(&mut body, 4, b"switchboard wire inspector"); // shb_userappl
    end_of_options(&mut body);
    block(out, 0x0A0D_0D0A, &body);
}

fn interface(out: &mut Vec<u8>) {
    let mut body = Vec::new();
    body.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes()); // no snap length limit
    option(&mut body, 2, b"switchboard"); // if_name
    end_of_options(&mut body);
    block(out, 1, &body);
}

fn enhanced_packet(out: &mut Vec<u8>, ts_us: u64, data: &[u8], comment: Option<&str>) {
    let mut body = Vec::with_capacity(32 + data.len());
    body.extend_from_slice(&0u32.to_le_bytes()); // interface 0
    body.extend_from_slice(&((ts_us >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(ts_us as u32).to_le_bytes());
    let len = data.len() as u32;
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(data);
    body.resize(body.len().div_ceil(4) * 4, 0);
    if let Some(comment) = comment {
        option(&mut body, 1, comment.as_bytes()); // opt_comment
        end_of_options(&mut body);
    }
    block(out, 6, &body);
}

#[cfg(test)]
mod tests;
