//! Unit tests for picking a stream and reassembling it.

use super::*;
use crate::replay::tests::{ipv4_tcp, ipv4_udp, raw_capture};

const C: [u8; 4] = [10, 0, 0, 1];
const S: [u8; 4] = [10, 0, 0, 2];
const SYN: u8 = 0x02;
const SYNACK: u8 = 0x12;
const PSH_ACK: u8 = 0x18;
const ACK: u8 = 0x10;
const FIN_ACK: u8 = 0x11;

fn read(packets: &[(u64, Vec<u8>)]) -> Result<Conversation, ReadError> {
    conversation(&raw_capture(packets), &ReadOptions::default())
}

fn sides(conv: &Conversation) -> Vec<(Dir, u64, &[u8])> {
    conv.segments
        .iter()
        .map(|s| (s.dir, s.t_us, s.bytes.as_slice()))
        .collect()
}

#[test]
fn the_syn_sender_is_the_client_and_boundaries_are_kept() {
    let conv = read(&[
        (1_000, ipv4_tcp(S, 7, C, 4000, 900, SYNACK, b"")),
        (900, ipv4_tcp(C, 4000, S, 7, 99, SYN, b"")),
        (2_000, ipv4_tcp(C, 4000, S, 7, 100, PSH_ACK, b"hel")),
        (2_500, ipv4_tcp(C, 4000, S, 7, 103, PSH_ACK, b"lo")),
        (3_000, ipv4_tcp(S, 7, C, 4000, 901, PSH_ACK, b"HELLO")),
        (4_000, ipv4_tcp(C, 4000, S, 7, 105, FIN_ACK, b"")),
    ])
    .unwrap();
    // The SYN-ACK came first in the file, but the SYN's sender is the client.
    assert_eq!(conv.client, "10.0.0.1:4000".parse().unwrap());
    assert_eq!(conv.server, "10.0.0.2:7".parse().unwrap());
    assert_eq!(conv.proto, Proto::Tcp);
    assert_eq!(
        sides(&conv),
        vec![
            (Dir::Client, 1_000, &b"hel"[..]),
            (Dir::Client, 1_500, &b"lo"[..]),
            (Dir::Server, 2_000, &b"HELLO"[..]),
        ]
    );
    assert_eq!(conv.client_fin_us, Some(3_000));
}

#[test]
fn without_a_handshake_the_first_to_send_is_the_client() {
    let conv = read(&[
        (0, ipv4_tcp(S, 7, C, 4000, 50, ACK, b"")),
        (1, ipv4_tcp(C, 4000, S, 7, 10, PSH_ACK, b"ask")),
        (2, ipv4_tcp(S, 7, C, 4000, 50, PSH_ACK, b"ASK")),
    ])
    .unwrap();
    assert_eq!(conv.client, "10.0.0.1:4000".parse().unwrap());
    assert_eq!(conv.client_segments().count(), 1);
    assert_eq!(conv.server_segments().next().unwrap().bytes, b"ASK");
}

#[test]
fn retransmissions_are_dropped_and_reordering_is_undone() {
    let conv = read(&[
        (0, ipv4_tcp(C, 4000, S, 7, 0, SYN, b"")),
        (1, ipv4_tcp(C, 4000, S, 7, 1, PSH_ACK, b"aaaa")),
        // Retransmitted whole, then partly overlapping with new bytes.
        (2, ipv4_tcp(C, 4000, S, 7, 1, PSH_ACK, b"aaaa")),
        (3, ipv4_tcp(C, 4000, S, 7, 3, PSH_ACK, b"aabb")),
        // Out of order: "dd" arrives before "cc".
        (4, ipv4_tcp(C, 4000, S, 7, 9, PSH_ACK, b"dd")),
        (5, ipv4_tcp(C, 4000, S, 7, 7, PSH_ACK, b"cc")),
    ])
    .unwrap();
    let client: Vec<&[u8]> = conv.client_segments().map(|s| s.bytes.as_slice()).collect();
    assert_eq!(client, vec![&b"aaaa"[..], b"bb", b"cc", b"dd"]);
    // "dd" waited for "cc": it is not earlier than what came before it.
    let times: Vec<u64> = conv.client_segments().map(|s| s.t_us).collect();
    assert_eq!(times, vec![1, 3, 5, 5]);
}

#[test]
fn sequence_numbers_wrap() {
    let isn = u32::MAX - 2;
    let conv = read(&[
        (0, ipv4_tcp(C, 4000, S, 7, isn, SYN, b"")),
        (
            1,
            ipv4_tcp(C, 4000, S, 7, isn.wrapping_add(1), PSH_ACK, b"wrap"),
        ),
        (
            2,
            ipv4_tcp(C, 4000, S, 7, isn.wrapping_add(5), PSH_ACK, b"ped"),
        ),
        (
            3,
            ipv4_tcp(C, 4000, S, 7, isn.wrapping_add(1), PSH_ACK, b"wr"),
        ),
    ])
    .unwrap();
    let all: Vec<u8> = conv
        .client_segments()
        .flat_map(|s| s.bytes.clone())
        .collect();
    assert_eq!(all, b"wrapped");
}

#[test]
fn a_hole_the_capture_never_fills_is_an_error() {
    let err = read(&[
        (0, ipv4_tcp(C, 4000, S, 7, 0, SYN, b"")),
        (1, ipv4_tcp(C, 4000, S, 7, 1, PSH_ACK, b"abc")),
        (2, ipv4_tcp(C, 4000, S, 7, 10, PSH_ACK, b"xyz")),
    ])
    .unwrap_err();
    assert_eq!(
        err,
        ReadError::Gap {
            side: "client",
            offset: 3,
            len: 6
        }
    );
}

#[test]
fn several_streams_are_listed_and_one_can_be_chosen() {
    let packets = [
        (0, ipv4_tcp(C, 4000, S, 7, 0, PSH_ACK, b"one")),
        (1, ipv4_tcp(C, 4001, S, 7, 0, PSH_ACK, b"two")),
        (2, ipv4_udp(C, 5000, S, 9, b"three")),
    ];
    let file = raw_capture(&packets);
    let err = conversation(&file, &ReadOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, ReadError::ManyStreams { count: 3, .. }),
        "{text}"
    );
    assert!(text.contains("--stream"), "{text}");
    assert!(text.contains("10.0.0.1:4001 -> 10.0.0.2:7"), "{text}");
    assert!(text.contains("UDP 10.0.0.1:5000"), "{text}");

    let pick = |n| {
        conversation(
            &file,
            &ReadOptions {
                stream: Some(n),
                ..ReadOptions::default()
            },
        )
    };
    assert_eq!(pick(1).unwrap().segments[0].bytes, b"two");
    let udp = pick(2).unwrap();
    assert_eq!(
        (udp.proto, udp.segments[0].bytes.as_slice()),
        (Proto::Udp, &b"three"[..])
    );
    assert!(matches!(
        pick(3),
        Err(ReadError::NoSuchStream {
            wanted: 3,
            count: 3,
            ..
        })
    ));
}

#[test]
fn a_stream_without_data_does_not_count_as_a_second_one() {
    let conv = read(&[
        (0, ipv4_tcp(C, 3999, S, 7, 0, SYN, b"")),
        (1, ipv4_udp(C, 5000, S, 9, b"ping")),
        (2, ipv4_udp(S, 9, C, 5000, b"PING")),
        (3, ipv4_udp(C, 5000, S, 9, b"again")),
    ])
    .unwrap();
    assert_eq!(conv.proto, Proto::Udp);
    assert_eq!(
        sides(&conv),
        vec![
            (Dir::Client, 0, &b"ping"[..]),
            (Dir::Server, 1, &b"PING"[..]),
            (Dir::Client, 2, &b"again"[..]),
        ]
    );
}

#[test]
fn a_new_syn_on_the_same_ports_is_a_new_stream() {
    let found = streams(&raw_capture(&[
        (0, ipv4_tcp(C, 4000, S, 7, 100, SYN, b"")),
        (1, ipv4_tcp(C, 4000, S, 7, 101, PSH_ACK, b"a")),
        (2, ipv4_tcp(C, 4000, S, 7, 102, FIN_ACK, b"")),
        (3, ipv4_tcp(C, 4000, S, 7, 9000, SYN, b"")),
        // The same SYN again is a retransmission, not a third stream.
        (4, ipv4_tcp(C, 4000, S, 7, 9000, SYN, b"")),
    ]))
    .unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[1].packets, 2);
}

#[test]
fn too_many_segments_is_an_error() {
    let packets: Vec<_> = (0..10u32)
        .map(|i| (u64::from(i), ipv4_tcp(C, 4000, S, 7, i, PSH_ACK, b"x")))
        .collect();
    let err = conversation(
        &raw_capture(&packets),
        &ReadOptions {
            max_segments: 5,
            ..ReadOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(err, ReadError::TooManySegments { max: 5 });
}

#[test]
fn fragments_and_snapped_packets_are_refused() {
    let mut frag = ipv4_udp(C, 5000, S, 9, b"part");
    frag[6] = 0x20;
    let err = read(&[(0, ipv4_udp(C, 5000, S, 9, b"x")), (1, frag)]).unwrap_err();
    assert!(err.to_string().contains("fragments"), "{err}");

    let whole = ipv4_tcp(C, 4000, S, 7, 1, PSH_ACK, b"long payload");
    let err = read(&[(0, whole[..whole.len() - 4].to_vec())]).unwrap_err();
    assert_eq!(err, ReadError::Snapped { frame: 1 });
}

#[test]
fn an_empty_capture_says_so() {
    let err = read(&[]).unwrap_err();
    assert_eq!(
        err,
        ReadError::NoStream {
            detail: String::new()
        }
    );
}

#[test]
fn times_never_go_back_within_a_side() {
    // Found by fuzzing: a capture whose clock steps back.
    let conv = read(&[
        (5_000, ipv4_udp(C, 5000, S, 9, b"a")),
        (9_000, ipv4_udp(S, 9, C, 5000, b"A")),
        (7_000, ipv4_udp(C, 5000, S, 9, b"b")),
        (1_000, ipv4_udp(S, 9, C, 5000, b"B")),
    ])
    .unwrap();
    assert_eq!(
        sides(&conv),
        vec![
            (Dir::Client, 0, &b"a"[..]),
            (Dir::Client, 2_000, &b"b"[..]),
            (Dir::Server, 4_000, &b"A"[..]),
            (Dir::Server, 4_000, &b"B"[..]),
        ]
    );
}
