//! Unit tests of the pcapng encoder: block framing, checksums, sequence
//! numbers across a gap, IPv6, and the 64 KiB split.

use super::*;
use crate::capture::{CaptureInfo, SegmentCopy};
use crate::kind::ServiceKind;

fn capture(client: &str, server: &str, proto: Proto, segments: Vec<SegmentCopy>) -> CaptureCopy {
    let total = |d: Dir| {
        segments
            .iter()
            .filter(|s| s.dir == d)
            .map(|s| s.offset + s.bytes.len() as u64)
            .max()
            .unwrap_or(0)
    };
    let first = |d: Dir| segments.iter().find(|s| s.dir == d).map_or(0, |s| s.offset);
    CaptureCopy {
        info: CaptureInfo {
            id: 7,
            service: ServiceKind::Echo.into(),
            proto,
            peer: client.to_owned(),
            opened_at_unix_us: 1_700_000_000_000_000,
            open: false,
            bytes_held: 0,
            bytes_in: total(Dir::In),
            bytes_out: total(Dir::Out),
            dropped_in: first(Dir::In),
            dropped_out: first(Dir::Out),
        },
        client: client.parse().ok(),
        server: server.parse().ok(),
        closed_us: Some(5_000),
        segments,
        more: false,
    }
}

fn seg(seq: u64, dir: Dir, offset: u64, bytes: &[u8]) -> SegmentCopy {
    SegmentCopy {
        seq,
        dir,
        t_us: seq * 100,
        offset,
        gap_before: 0,
        bytes: bytes.to_vec(),
    }
}

/// The packets of a file (after checking every block's framing), with
/// each one's comment.
fn packets(file: &[u8]) -> Vec<(Vec<u8>, Option<String>)> {
    let u32_at = |i: usize| u32::from_le_bytes(file[i..i + 4].try_into().expect("4 bytes"));
    assert_eq!(u32_at(0), 0x0A0D_0D0A, "a section header first");
    assert_eq!(u32_at(8), 0x1A2B_3C4D);
    let mut out = Vec::new();
    let mut at = 0;
    let mut kinds = Vec::new();
    while at < file.len() {
        let kind = u32_at(at);
        let len = u32_at(at + 4) as usize;
        assert_eq!(len % 4, 0);
        assert_eq!(u32_at(at + len - 4) as usize, len, "trailing length");
        kinds.push(kind);
        if kind == 6 {
            let caplen = u32_at(at + 20) as usize;
            let data = file[at + 28..at + 28 + caplen].to_vec();
            let opts = at + 28 + caplen.div_ceil(4) * 4;
            let comment = (opts < at + len - 4).then(|| {
                let code = u16::from_le_bytes([file[opts], file[opts + 1]]);
                assert_eq!(code, 1);
                let n = u16::from_le_bytes([file[opts + 2], file[opts + 3]]) as usize;
                String::from_utf8(file[opts + 4..opts + 4 + n].to_vec()).expect("utf-8")
            });
            out.push((data, comment));
        }
        at += len;
    }
    assert_eq!(at, file.len());
    assert_eq!(&kinds[..2], &[0x0A0D_0D0A, 1]);
    out
}

/// Checks the IP and transport checksums; returns (src port, dst port,
/// seq, ack, flags, payload) for TCP or (src, dst, 0, 0, 0, payload) for UDP.
fn check(p: &[u8]) -> (u16, u16, u32, u32, u8, Vec<u8>) {
    let (src, dst, proto, body) = if p[0] >> 4 == 4 {
        assert_eq!(fold(sum_words(0, &p[..20])), 0, "IPv4 header checksum");
        assert_eq!(u16::from_be_bytes([p[2], p[3]]) as usize, p.len());
        let s: [u8; 4] = p[12..16].try_into().expect("4");
        let d: [u8; 4] = p[16..20].try_into().expect("4");
        (IpAddr::from(s), IpAddr::from(d), p[9], &p[20..])
    } else {
        assert_eq!(p[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([p[4], p[5]]) as usize, p.len() - 40);
        let s: [u8; 16] = p[8..24].try_into().expect("16");
        let d: [u8; 16] = p[24..40].try_into().expect("16");
        (IpAddr::from(s), IpAddr::from(d), p[6], &p[40..])
    };
    let sum = sum_words(pseudo_header(src, dst, proto, body.len()), body);
    assert_eq!(fold(sum), 0, "transport checksum");
    let port = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
    let word = |i: usize| u32::from_be_bytes(body[i..i + 4].try_into().expect("4"));
    if proto == 6 {
        (
            port(0),
            port(2),
            word(4),
            word(8),
            body[13],
            body[20..].to_vec(),
        )
    } else {
        assert_eq!(proto, 17);
        (port(0), port(2), 0, 0, 0, body[8..].to_vec())
    }
}

#[test]
fn a_tcp_exchange_has_a_handshake_consistent_numbers_and_fins() {
    let c = capture(
        "127.0.0.1:40001",
        "127.0.0.1:9000",
        Proto::Tcp,
        vec![
            seg(1, Dir::In, 0, b"hello"),
            seg(2, Dir::Out, 0, b"HELLO"),
            seg(3, Dir::In, 5, b"!"),
        ],
    );
    let pk: Vec<_> = packets(&encode(&[c]))
        .into_iter()
        .map(|(p, _)| check(&p))
        .collect();
    assert_eq!(pk.len(), 3 + 3 + 3);
    let [c0, s0] = [0x1000_0000u32, 0x2000_0000u32];
    assert_eq!((pk[0].0, pk[0].1, pk[0].2, pk[0].4), (40001, 9000, c0, SYN));
    assert_eq!((pk[1].2, pk[1].3, pk[1].4), (s0, c0 + 1, SYN | ACK));
    assert_eq!((pk[2].2, pk[2].3, pk[2].4), (c0 + 1, s0 + 1, ACK));
    assert_eq!(
        (pk[3].2, pk[3].3, &pk[3].5[..]),
        (c0 + 1, s0 + 1, &b"hello"[..])
    );
    assert_eq!((pk[4].0, pk[4].2, pk[4].3), (9000, s0 + 1, c0 + 6));
    assert_eq!(
        (pk[5].2, pk[5].3, &pk[5].5[..]),
        (c0 + 6, s0 + 6, &b"!"[..])
    );
    assert_eq!((pk[6].2, pk[6].4), (c0 + 7, FIN | ACK));
    assert_eq!((pk[7].2, pk[7].3, pk[7].4), (s0 + 6, c0 + 8, FIN | ACK));
    assert_eq!((pk[8].2, pk[8].3, pk[8].4), (c0 + 8, s0 + 7, ACK));
}

#[test]
fn a_gap_advances_the_sequence_and_says_so() {
    let c = capture(
        "127.0.0.1:40001",
        "127.0.0.1:9000",
        Proto::Tcp,
        vec![seg(9, Dir::In, 300, b"tail"), seg(10, Dir::Out, 0, b"TAIL")],
    );
    let pk = packets(&encode(&[c]));
    let (data, comment) = &pk[3];
    let (_, _, seq, _, _, payload) = check(data);
    assert_eq!(seq, 0x1000_0000 + 1 + 300);
    assert_eq!(payload, b"tail");
    assert!(
        comment.as_deref().is_some_and(|c| c.contains("300")),
        "{comment:?}"
    );
    assert!(pk[4].1.is_none());
}

#[test]
fn ipv6_and_udp_and_a_unix_peer() {
    let v6 = capture(
        "[::1]:40002",
        "[::1]:9001",
        Proto::Udp,
        vec![seg(1, Dir::In, 0, b"ping"), seg(2, Dir::Out, 0, b"PING")],
    );
    let pk = packets(&encode(&[v6]));
    assert_eq!(pk.len(), 2, "no handshake for UDP");
    assert_eq!(pk[0].0[0] >> 4, 6);
    assert_eq!(check(&pk[0].0), (40002, 9001, 0, 0, 0, b"ping".to_vec()));
    assert_eq!(check(&pk[1].0), (9001, 40002, 0, 0, 0, b"PING".to_vec()));
    // A unix-socket peer: made-up IPv4 loopback ends.
    let unix = capture("unix", "", Proto::Tcp, vec![seg(1, Dir::In, 0, b"x")]);
    let pk = packets(&encode(&[unix]));
    assert_eq!(pk[0].0[0] >> 4, 4);
    assert_eq!(&pk[0].0[12..16], &[127, 0, 0, 1]);
    check(&pk[3].0);
}

#[test]
fn a_large_segment_is_split_below_64_kib() {
    let big = vec![b'z'; 150_000];
    let c = capture(
        "127.0.0.1:40001",
        "127.0.0.1:9000",
        Proto::Tcp,
        vec![seg(1, Dir::In, 0, &big)],
    );
    let pk = packets(&encode(&[c]));
    let data: Vec<_> = pk[3..pk.len() - 3].iter().map(|(p, _)| check(p)).collect();
    assert_eq!(data.len(), 3);
    assert!(data.iter().all(|d| d.5.len() <= 65_535 - 40));
    assert_eq!(data.iter().map(|d| d.5.len()).sum::<usize>(), big.len());
    assert_eq!(data[1].2, data[0].2 + data[0].5.len() as u32);
}

#[test]
fn the_encoder_announces_its_length_and_its_pieces_make_the_file() {
    let big = vec![b'z'; 150_000];
    let mut c = capture(
        "[::1]:40001",
        "[::1]:9000",
        Proto::Tcp,
        vec![seg(1, Dir::In, 0, &big), seg(2, Dir::Out, 0, b"ok")],
    );
    c.info.dropped_in = 5;
    let u = capture(
        "127.0.0.1:5",
        "127.0.0.1:6",
        Proto::Udp,
        vec![seg(1, Dir::In, 0, b"abc")],
    );
    let whole = encode(&[c.clone(), u.clone()]);
    let mut encoder = Encoder::new(vec![c, u]);
    assert_eq!(encoder.file_len(), whole.len() as u64);
    let mut pieces = Vec::new();
    while let Some(p) = encoder.next_piece(1000) {
        pieces.push(p);
    }
    assert!(pieces.len() > 2, "made in pieces");
    assert_eq!(pieces.concat(), whole);
}
