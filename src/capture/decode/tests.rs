//! Unit tests of the decoder: real bytes (docs/PROTOCOL.md's capture of
//! the real exec service, our own encoders, a ClientHello from rustls) cut
//! into segments as sockets cut them, and hostile input (proptest) that
//! must never panic nor name a segment that does not exist.

use super::*;
use crate::wire::{classic, message, proxy_protocol};
use proptest::prelude::*;

/// Segments as a capture copies them: `(dir, bytes)` in order, offsets
/// and seqs filled in.
fn segments(parts: &[(Dir, &[u8])]) -> Vec<SegmentCopy> {
    let mut offsets = [0u64; 2];
    parts
        .iter()
        .enumerate()
        .map(|(i, (dir, bytes))| {
            let o = &mut offsets[usize::from(*dir == Dir::Out)];
            let s = SegmentCopy {
                seq: i as u64 + 1,
                dir: *dir,
                t_us: i as u64,
                offset: *o,
                gap_before: 0,
                bytes: bytes.to_vec(),
            };
            *o += bytes.len() as u64;
            s
        })
        .collect()
}

fn unhex(s: &str) -> Vec<u8> {
    crate::wire::unhex(s).unwrap()
}

/// docs/PROTOCOL.md's `echo hi` session, captured from the real service.
fn echo_hi() -> Vec<(Dir, Vec<u8>)> {
    vec![
        (
            Dir::Out,
            unhex("43544a470f885f552a8ebd5f63e9affc273d7379e66a468f66accf68fbd78b92"),
        ),
        (
            Dir::In,
            unhex("199d50cabbb1cadd9df61135d50b14f1dfb2ec7e7ae43c8fb0de5d43e8dfdec9"),
        ),
        (Dir::Out, unhex("0000000b7b226f6b223a747275657d")),
        (
            Dir::In,
            unhex("000000217b226f70223a2272756e222c2261726776223a5b226563686f222c226869225d7d"),
        ),
        (
            Dir::Out,
            unhex("0000001a7b2273697a65223a332c2274797065223a227374646f7574227d68690a"),
        ),
        (
            Dir::Out,
            unhex("000000187b22636f6465223a302c2274797065223a2265786974227d"),
        ),
    ]
}

fn owned(parts: &[(Dir, Vec<u8>)]) -> Vec<SegmentCopy> {
    let borrowed: Vec<(Dir, &[u8])> = parts.iter().map(|(d, b)| (*d, b.as_slice())).collect();
    segments(&borrowed)
}

#[test]
fn an_exec_session_decodes_into_handshake_and_messages_in_order() {
    let d = decode(&owned(&echo_hi()), Plan::Messages);
    let got: Vec<(usize, Dir, Kind, &str, Vec<u64>)> = d
        .messages
        .iter()
        .map(|m| (m.n, m.dir, m.kind, m.label.as_str(), m.segments.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                1,
                Dir::Out,
                Kind::Challenge,
                "HMAC challenge (random bytes)",
                vec![1]
            ),
            (
                2,
                Dir::In,
                Kind::Answer,
                "HMAC answer (HMAC-SHA256 of the challenge)",
                vec![2]
            ),
            (3, Dir::Out, Kind::Message, "handshake verdict: ok", vec![3]),
            (4, Dir::In, Kind::Message, "run request", vec![4]),
            (5, Dir::Out, Kind::Message, "stdout", vec![5]),
            (6, Dir::Out, Kind::Message, "exit", vec![6]),
        ]
    );
    let run = &d.messages[3];
    assert_eq!(run.prefix.as_ref().unwrap().hex, "00000021");
    assert_eq!(run.prefix.as_ref().unwrap().value, 33);
    assert_eq!(run.header.as_ref().unwrap()["argv"][1], "hi");
    let stdout = &d.messages[4];
    assert_eq!(stdout.body.as_ref().unwrap().hex, "68690a");
    assert_eq!(stdout.len, 4 + 26 + 3);
    assert!(d.messages.iter().all(|m| m.complete));
    assert!(d.shared.is_empty());
    // The answer is shown as the MAC it is; nothing else is claimed.
    assert_eq!(
        d.messages[1].body.as_ref().unwrap().hex,
        "199d50cabbb1cadd9df61135d50b14f1dfb2ec7e7ae43c8fb0de5d43e8dfdec9"
    );
}

#[test]
fn two_messages_in_one_segment_and_one_message_over_two_are_both_shown() {
    let a = message::encode(&serde_json::json!({"op": "run", "argv": ["true"]}), None).unwrap();
    let b = message::encode(&serde_json::json!({"op": "run", "argv": ["date"]}), None).unwrap();
    let mut sticky = vec![0u8; 32];
    sticky.extend_from_slice(&a);
    sticky.extend_from_slice(&b);
    let challenge = [7u8; 32];
    let out = message::encode(&serde_json::json!({"type": "stdout", "size": 5}), Some(5)).unwrap();
    let (first, second) = out.split_at(6);
    let mut tail = second.to_vec();
    tail.extend_from_slice(b"hello");
    let parts = [
        (Dir::Out, &challenge[..]),
        (Dir::In, &sticky[..]),
        (Dir::Out, first),
        (Dir::Out, &tail[..]),
    ];
    let d = decode(&segments(&parts), Plan::Messages);
    // Segment 2 holds the answer and both requests: three items.
    assert_eq!(
        d.shared,
        [Shared {
            seq: 2,
            dir: Dir::In,
            messages: vec![2, 3, 4]
        }]
    );
    let stdout = d.messages.iter().find(|m| m.label == "stdout").unwrap();
    assert_eq!(stdout.segments, [3, 4]);
    assert_eq!(stdout.segments_total, 2);
    assert_eq!(
        stdout.body.as_ref().unwrap().hex,
        crate::wire::hex(b"hello")
    );
}

#[test]
fn files_classic_headers_decode_as_name_and_size_with_their_body() {
    let mut bytes = classic::encode(b"a.txt", 5).unwrap().to_vec();
    bytes.extend_from_slice(b"hello");
    bytes.extend_from_slice(&classic::encode(b"b.bin", 1000).unwrap());
    bytes.extend_from_slice(&[1, 2, 3]);
    let d = decode(&segments(&[(Dir::In, &bytes[..])]), Plan::Classic);
    assert_eq!(d.messages.len(), 2);
    let fields = |m: &Message| m.fields.iter().take(2).cloned().collect::<Vec<_>>();
    assert_eq!(
        fields(&d.messages[0]),
        [("name".into(), "a.txt".into()), ("size".into(), "5".into())]
    );
    assert!(d.messages[0].complete);
    assert_eq!(d.messages[1].fields[1].1, "1000");
    assert!(!d.messages[1].complete, "only 3 of its 1000 bytes are held");
    assert_eq!(d.messages[1].body.as_ref().unwrap().held, 3);
    assert_eq!(d.shared.len(), 1, "one segment, two uploads");
}

#[test]
fn proxy_headers_v1_and_v2_are_decoded_before_the_service_bytes() {
    let addresses = proxy_protocol::Addresses::Tcp {
        src: "192.0.2.7:5000".parse().unwrap(),
        dst: "127.0.0.1:9000".parse().unwrap(),
    };
    for version in [proxy_protocol::Version::V1, proxy_protocol::Version::V2] {
        let mut bytes = proxy_protocol::encode(version, &addresses);
        bytes.extend_from_slice(b"hello");
        let d = decode(&segments(&[(Dir::In, &bytes[..])]), Plan::Raw);
        assert_eq!(d.messages[0].kind, Kind::Proxy, "{version:?}");
        assert!(
            d.messages[0]
                .fields
                .contains(&("client (source)".into(), "192.0.2.7:5000".into()))
        );
        assert_eq!(d.messages[1].kind, Kind::Raw);
        assert_eq!(
            d.messages[1].body.as_ref().unwrap().hex,
            crate::wire::hex(b"hello")
        );
    }
}

/// A real ClientHello, from rustls.
fn client_hello(name: &str) -> Vec<u8> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

#[test]
fn a_client_hello_names_its_server_and_versions() {
    let hello = client_hello("inspect.example");
    let d = decode(&segments(&[(Dir::In, &hello[..])]), Plan::Messages);
    let m = &d.messages[0];
    assert_eq!(m.kind, Kind::ClientHello, "{m:?}");
    let field = |k: &str| {
        m.fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("server name (SNI)"), Some("inspect.example"));
    assert_eq!(field("supported versions"), Some("TLS 1.3, TLS 1.2"));
    assert_eq!(field("client version"), Some("TLS 1.2"));
    // Cut anywhere, it is undecodable, not a panic.
    for cut in 6..hello.len() {
        let d = decode(&segments(&[(Dir::In, &hello[..cut])]), Plan::Raw);
        assert_eq!(d.messages[0].kind, Kind::Undecodable, "cut at {cut}");
    }
}

#[test]
fn a_huge_length_prefix_is_undecodable_and_allocates_nothing() {
    let mut bytes = vec![0u8; 32];
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, b'{']);
    let d = decode(&segments(&[(Dir::In, &bytes[..])]), Plan::Messages);
    let last = d.messages.last().unwrap();
    assert_eq!(last.kind, Kind::Undecodable);
    assert!(last.note.as_ref().unwrap().contains("ffffffff"), "{last:?}");
    // A huge declared body is only compared with what is held.
    let mut bytes = vec![0u8; 32];
    bytes.extend_from_slice(
        &message::encode(&serde_json::json!({"op": "put", "size": u64::MAX}), None).unwrap(),
    );
    bytes.extend_from_slice(b"abc");
    let d = decode(&segments(&[(Dir::In, &bytes[..])]), Plan::Messages);
    let put = d.messages.last().unwrap();
    assert_eq!(put.body.as_ref().unwrap().held, 3);
    assert!(!put.complete);
}

#[test]
fn an_evicted_start_is_said_and_left_undecoded() {
    let mut parts = segments(&[(Dir::In, &b"\x00\x00\x00\x02{}"[..])]);
    parts[0].offset = 100;
    parts[0].gap_before = 100;
    let d = decode(&parts, Plan::Messages);
    assert_eq!(d.messages.len(), 1);
    assert_eq!(d.messages[0].kind, Kind::Raw);
    assert_eq!(d.messages[0].offset, 100);
    assert!(
        d.notes[0].contains("first 100 bytes from the client"),
        "{:?}",
        d.notes
    );
}

#[test]
fn many_messages_are_cut_at_the_bound_and_said_truncated() {
    let one = message::encode(&serde_json::json!({"op": "list"}), None).unwrap();
    let mut bytes = vec![0u8; 32];
    for _ in 0..MAX_MESSAGES + 10 {
        bytes.extend_from_slice(&one);
    }
    let d = decode(&segments(&[(Dir::In, &bytes[..])]), Plan::Messages);
    assert_eq!(d.messages.len(), MAX_MESSAGES);
    assert!(d.truncated);
}

#[test]
fn an_item_over_many_segments_costs_its_ends_not_its_length() {
    // A flood of one-byte reads: 200,000 segments, one raw item.
    let one = [b'x'];
    let parts: Vec<(Dir, &[u8])> = (0..200_000).map(|_| (Dir::In, &one[..])).collect();
    let segs = segments(&parts);
    let started = std::time::Instant::now();
    let d = decode(&segs, Plan::Raw);
    eprintln!(
        "200,000 one-byte segments decoded in {:?}",
        started.elapsed()
    );
    assert_eq!(d.messages.len(), 1);
    assert_eq!(d.messages[0].segments.len(), MAX_SEGMENTS_LISTED);
    assert_eq!(d.messages[0].segments_total, 200_000);
    assert!(d.shared.is_empty());
    // 400 segments of two messages each: every one shared, each named once.
    let two = [
        message::encode(&serde_json::json!({"op": "list"}), None).unwrap(),
        message::encode(&serde_json::json!({"op": "list"}), None).unwrap(),
    ]
    .concat();
    let mut parts: Vec<(Dir, &[u8])> = vec![(Dir::In, &[0u8; 32][..])];
    parts.extend((0..400).map(|_| (Dir::In, two.as_slice())));
    let d = decode(&segments(&parts), Plan::Messages);
    assert_eq!(d.shared.len(), 400);
    assert!(
        d.shared.iter().all(|s| s.messages.len() == 2),
        "{:?}",
        d.shared[0]
    );
}

fn arbitrary_parts() -> impl Strategy<Value = Vec<(bool, Vec<u8>)>> {
    let chunk = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        // Starts that reach deeper into each decoder.
        Just(b"\x16\x03\x01\x00\x30\x01\x00\x00\x2c\x03\x03".to_vec()),
        Just(b"PROXY TCP4 1.2.3.4 ".to_vec()),
        Just(proxy_protocol::V2_SIGNATURE.to_vec()),
        Just(b"\x00\x00\x00\x05{\"a\":".to_vec()),
        Just(b"\x00\x00\x00\x0c{\"size\":99}".to_vec()),
    ];
    proptest::collection::vec((any::<bool>(), chunk), 0..12)
}

proptest! {
    #[test]
    fn any_bytes_decode_without_panic_and_name_only_real_segments(
        parts in arbitrary_parts(),
        plan in 0..4usize,
    ) {
        let parts: Vec<(Dir, &[u8])> = parts
            .iter()
            .map(|(out, b)| (if *out { Dir::Out } else { Dir::In }, b.as_slice()))
            .collect();
        let segs = segments(&parts);
        let plan = [Plan::Messages, Plan::Classic, Plan::Tutorial { answer_len: 16, struct_lengths: true }, Plan::Raw][plan];
        let d = decode(&segs, plan);
        for m in &d.messages {
            for seq in &m.segments {
                let s = segs.iter().find(|s| s.seq == *seq);
                prop_assert!(s.is_some_and(|s| s.dir == m.dir), "{m:?}");
            }
            prop_assert!(m.body.as_ref().is_none_or(|b| b.hex.len() <= 2 * MAX_BODY_SHOWN));
        }
        // Every held byte belongs to some item.
        for dir in [Dir::In, Dir::Out] {
            let held: usize = segs.iter().filter(|s| s.dir == dir).map(|s| s.bytes.len()).sum();
            let covered = d.messages.iter().filter(|m| m.dir == dir).count();
            prop_assert!(held == 0 || covered > 0);
        }
    }
}

#[test]
fn exec_struct_framing_shows_each_output_after_its_length() {
    // What exec with `framing = "struct"` sends for `seq 1 3`, then `true`.
    let mut out = 6i32.to_le_bytes().to_vec();
    out.extend_from_slice(b"1\n2\n3\n");
    out.extend_from_slice(&12i32.to_le_bytes());
    out.extend_from_slice("操作成功".as_bytes());
    let challenge = [9u8; 32];
    let answer = [1u8; 16];
    let parts = [
        (Dir::Out, &challenge[..]),
        (Dir::In, &answer[..]),
        (Dir::In, &b"seq 1 3"[..]),
        (Dir::Out, &out[..]),
    ];
    let plan = Plan::Tutorial {
        answer_len: 16,
        struct_lengths: true,
    };
    let d = decode(&segments(&parts), plan);
    let got: Vec<(Kind, &str)> = d
        .messages
        .iter()
        .map(|m| (m.kind, m.label.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Kind::Challenge, "HMAC challenge (random bytes)"),
            (Kind::Answer, "HMAC answer (HMAC-MD5 of the challenge)"),
            (Kind::Raw, "7 bytes"),
            (Kind::Message, "output"),
            (Kind::Message, "output"),
        ]
    );
    assert_eq!(d.messages[3].prefix.as_ref().unwrap().value, 6);
    assert_eq!(d.messages[4].body.as_ref().unwrap().held, 12);
    assert_eq!(d.shared.len(), 1, "both outputs in one write");
    // A negative length is not this framing.
    let bad = (-1i32).to_le_bytes();
    let d = decode(
        &segments(&[(Dir::Out, &bad[..])]),
        Plan::Tutorial {
            answer_len: 0,
            struct_lengths: true,
        },
    );
    assert_eq!(d.messages[0].kind, Kind::Undecodable);
}
