//! `switchboard replay` end to end: captures written by Wireshark's
//! `text2pcap` (and joined by `mergecap`), not by our own code, replayed
//! by the real binary against the real echo and udp-echo services over
//! loopback. Without text2pcap these tests fail: scripts/test.sh installs
//! it (Debian package `tshark`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Served, guard};
use switchboard::kind::ServiceKind::{Echo, UdpEcho};

/// One packet of a text2pcap input: `client` for the client's side.
struct Pkt<'a> {
    client: bool,
    at_ms: u64,
    data: &'a [u8],
}

fn pkt(client: bool, at_ms: u64, data: &[u8]) -> Pkt<'_> {
    Pkt {
        client,
        at_ms,
        data,
    }
}

/// Runs a Wireshark tool, failing the test (not skipping it) when it is
/// missing.
fn wireshark_tool(tool: &str, args: &[&std::ffi::OsStr]) {
    let out = std::process::Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {tool} ({e}): install Debian's tshark package \
                 (scripts/test.sh does), which brings text2pcap and mergecap"
            )
        });
    assert!(
        out.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `packets` as a capture with text2pcap: TCP (`-T`) or UDP (`-u`)
/// headers from 10.0.0.1:`port` (the client) to 10.0.0.2:7, or IPv6 with
/// `v6`; `pcap` for the classic format instead of pcapng.
fn capture(
    dir: &Path,
    name: &str,
    udp: bool,
    port: u16,
    v6: bool,
    pcap: bool,
    packets: &[Pkt<'_>],
) -> PathBuf {
    let mut hexdump = String::new();
    for p in packets {
        // With -D, text2pcap writes an `I` (inbound) packet from the first
        // address and port of -4/-6 and -T/-u, an `O` one from the second.
        let dir = if p.client { 'I' } else { 'O' };
        let (s, ms) = (p.at_ms / 1000, p.at_ms % 1000);
        hexdump.push_str(&format!("{dir} 10:00:{s:02}.{ms:03}000\n000000"));
        for b in p.data {
            hexdump.push_str(&format!(" {b:02x}"));
        }
        hexdump.push('\n');
    }
    let input = dir.join(format!("{name}.txt"));
    std::fs::write(&input, hexdump).unwrap();
    let output = dir.join(name);
    let ports = format!("{port},7");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "-q".as_ref(),
        "-D".as_ref(),
        "-t".as_ref(),
        "%H:%M:%S.%f".as_ref(),
    ];
    args.extend::<[&std::ffi::OsStr; 2]>(if v6 {
        ["-6".as_ref(), "2001:db8::1,2001:db8::2".as_ref()]
    } else {
        ["-4".as_ref(), "10.0.0.1,10.0.0.2".as_ref()]
    });
    args.push(if udp { "-u" } else { "-T" }.as_ref());
    args.push(ports.as_ref());
    if pcap {
        args.extend::<[&std::ffi::OsStr; 2]>(["-F".as_ref(), "pcap".as_ref()]);
    }
    args.push(input.as_os_str());
    args.push(output.as_os_str());
    wireshark_tool("text2pcap", &args);
    output
}

/// hello/world from the client, with the server's recorded side as given.
fn hello_world<'a>(server: [&'a [u8]; 2]) -> Vec<Pkt<'a>> {
    vec![
        pkt(true, 0, b"hello"),
        pkt(false, 1, server[0]),
        pkt(true, 300, b"world"),
        pkt(false, 301, server[1]),
    ]
}

/// Runs `switchboard replay ARGS` to its end, with the hang guard.
async fn replay(args: &[&std::ffi::OsStr]) -> (Output, Duration) {
    let started = Instant::now();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("replay")
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = guard("switchboard replay", child).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "a panic: {stderr}");
    (out, started.elapsed())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)))
}

fn texts(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_owned())
        .collect()
}

async fn served(dir: &Path) -> Served {
    Served::start(&dir.join("data"), &[Echo, UdpEcho], &[]).await
}

#[tokio::test]
async fn tcp_replay_against_echo_shows_the_new_replies_and_the_diff() {
    let dir = tempfile::tempdir().unwrap();
    let server = served(dir.path()).await;
    let file = capture(
        dir.path(),
        "lower.pcapng",
        false,
        40000,
        false,
        false,
        &hello_world([b"hello", b"world"]),
    );
    let addr = server.addr("echo");

    let (out, _) = replay(&[file.as_ref(), addr.as_ref()]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("recorded: TCP 10.0.0.1:40000 -> 10.0.0.2:7"),
        "{stdout}"
    );
    assert!(
        stdout.contains("differ from the recording at byte 0"),
        "{stdout}"
    );
    assert!(stdout.contains("|helloworld|"), "{stdout}");
    assert!(stdout.contains("|HELLOWORLD|"), "{stdout}");

    let (out, _) = replay(&[file.as_ref(), addr.as_ref(), "--json".as_ref()]).await;
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["client"], "10.0.0.1:40000");
    assert_eq!(report["proto"], "tcp");
    // The client's two segments went as two writes, in order.
    assert_eq!(texts(&report["sent"]), ["hello", "world"]);
    assert_eq!(texts(&report["recorded"]), ["hello", "world"]);
    assert_eq!(texts(&report["replies"]).concat(), "HELLOWORLD");
    assert_eq!(report["diff"]["equal"], false);
    assert_eq!(report["diff"]["first_difference"]["offset"], 0);
    assert_eq!(report["diff"]["recorded_bytes"], 10);
    assert_eq!(report["diff"]["replied_bytes"], 10);
}

#[tokio::test]
async fn replies_equal_to_the_recording_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let server = served(dir.path()).await;
    let addr = server.addr("echo");
    // pcapng over IPv4, and classic pcap over IPv6: either replays to echo.
    for (name, v6, pcap) in [("same.pcapng", false, false), ("same.pcap", true, true)] {
        let file = capture(
            dir.path(),
            name,
            false,
            40000,
            v6,
            pcap,
            &hello_world([b"HELLO", b"WORLD"]),
        );
        let (out, _) = replay(&[file.as_ref(), addr.as_ref()]).await;
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {stdout}{}",
            text(&out.stderr)
        );
        assert!(
            stdout.contains("the replies equal the recording, byte for byte"),
            "{name}: {stdout}"
        );
    }
}

#[tokio::test]
async fn udp_replay_against_udp_echo_compares_datagram_by_datagram() {
    let dir = tempfile::tempdir().unwrap();
    let server = served(dir.path()).await;
    let addr = server.addr("udp-echo");
    let same = capture(
        dir.path(),
        "udp-same.pcapng",
        true,
        40000,
        false,
        false,
        &hello_world([b"HELLO", b"WORLD"]),
    );
    let (out, _) = replay(&[same.as_ref(), addr.as_ref(), "--json".as_ref()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(report["proto"], "udp");
    assert_eq!(report["ended"], "answered");
    // UDP keeps boundaries: one reply datagram per datagram sent.
    assert_eq!(texts(&report["replies"]), ["HELLO", "WORLD"]);

    let differs = capture(
        dir.path(),
        "udp-lower.pcapng",
        true,
        40000,
        false,
        false,
        &hello_world([b"HELLO", b"world"]),
    );
    let (out, _) = replay(&[differs.as_ref(), addr.as_ref()]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("at datagram 1, byte 0"), "{stdout}");
}

#[tokio::test]
async fn timing_keeps_the_recorded_gap_between_client_segments() {
    let dir = tempfile::tempdir().unwrap();
    let server = served(dir.path()).await;
    let file = capture(
        dir.path(),
        "gap.pcapng",
        false,
        40000,
        false,
        false,
        &[
            pkt(true, 0, b"first"),
            pkt(false, 1, b"FIRST"),
            pkt(true, 700, b"second"),
            pkt(false, 701, b"SECOND"),
        ],
    );
    let addr = server.addr("echo");
    let (out, elapsed) = replay(&[
        file.as_ref(),
        addr.as_ref(),
        "--timing".as_ref(),
        "--json".as_ref(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(report["timing"], true);
    let sent = report["sent"].as_array().unwrap();
    let gap = sent[1]["t_us"].as_u64().unwrap() - sent[0]["t_us"].as_u64().unwrap();
    common::assert_deadline(
        "the gap kept by --timing (recorded 700 ms)",
        Duration::from_micros(gap),
        Duration::from_millis(700),
    );
    assert!(elapsed >= Duration::from_millis(700));
    // Sent apart, echoed apart: two replies, each its own read.
    assert_eq!(texts(&report["replies"]), ["FIRST", "SECOND"]);
}

#[tokio::test]
async fn a_server_that_never_answers_is_bounded_by_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let file = capture(
        dir.path(),
        "silent.pcapng",
        false,
        40000,
        false,
        false,
        &hello_world([b"HELLO", b"WORLD"]),
    );
    // Connections complete in the backlog and are never read or answered.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (out, elapsed) = replay(&[
        file.as_ref(),
        addr.as_ref(),
        "--timeout".as_ref(),
        "2s".as_ref(),
        // Longer than the timeout: only the timeout ends this replay.
        "--idle".as_ref(),
        "30s".as_ref(),
    ])
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("stopped at --timeout"), "{stdout}");
    assert!(stdout.contains("replied 0 bytes"), "{stdout}");
    // The process's start is inside `elapsed`: within the slack.
    common::assert_deadline("replay's --timeout", elapsed, Duration::from_secs(2));
    drop(listener);
}

/// A port behind a proxy turns a direct replay away with one line: the
/// replay says so and could not replay (2), rather than reporting the line
/// as the server's reply, different from the recording at byte 0 (1).
#[tokio::test]
async fn a_replay_turned_away_by_the_port_says_why_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start_with_args(
        &dir.path().join("data"),
        &[Echo],
        &[],
        &["--set", "services.echo.accept_proxy=true"],
    )
    .await;
    let file = capture(
        dir.path(),
        "direct.pcapng",
        false,
        40000,
        false,
        false,
        &hello_world([b"HELLO", b"WORLD"]),
    );
    let addr = server.addr("echo");
    let (out, _) = replay(&[file.as_ref(), addr.as_ref()]).await;
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{addr} turned the connection away: this port takes connections through a trusted \
             proxy only"
        )),
        "{stderr}{}",
        text(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
}

/// The offset of the pcapng block after the first `skip` blocks of a
/// little-endian file (what text2pcap writes here).
fn block_offset(file: &[u8], skip: usize) -> usize {
    let mut at = 0;
    for _ in 0..skip {
        let len = u32::from_le_bytes(file[at + 4..at + 8].try_into().unwrap());
        at += len as usize;
    }
    at
}

#[tokio::test]
async fn malformed_captures_are_clear_errors_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let good = capture(
        dir.path(),
        "good.pcapng",
        false,
        40000,
        false,
        false,
        &hello_world([b"HELLO", b"WORLD"]),
    );
    let bytes = std::fs::read(&good).unwrap();
    assert_eq!(
        &bytes[8..12],
        [0x4d, 0x3c, 0x2b, 0x1a],
        "a little-endian file"
    );
    let mut huge = bytes.clone();
    // The interface block (after the section header) claims ~4 GiB.
    let idb = block_offset(&bytes, 1);
    huge[idb + 4..idb + 8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let mut wrong_trailer = bytes.clone();
    let epb = block_offset(&bytes, 2);
    let len = u32::from_le_bytes(bytes[epb + 4..epb + 8].try_into().unwrap()) as usize;
    wrong_trailer[epb + len - 4] ^= 0x40;

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "the file is empty"),
        (
            "text",
            b"hello, I am not a capture\n".to_vec(),
            "not a pcap or pcapng file",
        ),
        (
            "truncated",
            bytes[..bytes.len() - 10].to_vec(),
            "truncated at byte",
        ),
        ("huge", huge, "needs 4294967280 bytes"),
        ("trailer", wrong_trailer, "at the start but"),
    ];
    // Nothing is sent anywhere: the file is refused first.
    for (name, contents, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        let (out, _) = replay(&[path.as_ref(), "127.0.0.1:9".as_ref()]).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(out.stdout.is_empty(), "{name}");
    }

    // A FIFO nobody writes to, and a folder: refused at once, not waited on.
    let fifo = dir.path().join("fifo.pcap");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    for path in [fifo.as_path(), dir.path()] {
        let (out, took) = replay(&[path.as_ref(), "127.0.0.1:9".as_ref()]).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("not a regular file"), "{stderr}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    let missing = dir.path().join("missing.pcapng");
    let (out, _) = replay(&[missing.as_ref(), "127.0.0.1:9".as_ref()]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "switchboard: cannot read {}: No such file or directory (os error 2)",
            missing.display()
        )
    );

    let (out, _) = replay(&[
        good.as_ref(),
        "127.0.0.1:9".as_ref(),
        "--max-bytes".as_ref(),
        "100".as_ref(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("more than the 100-byte limit"));
}

#[tokio::test]
async fn two_streams_are_listed_and_one_is_chosen_with_stream() {
    let dir = tempfile::tempdir().unwrap();
    let server = served(dir.path()).await;
    let first = capture(
        dir.path(),
        "a.pcapng",
        false,
        40000,
        false,
        false,
        &hello_world([b"HELLO", b"WORLD"]),
    );
    let second = capture(
        dir.path(),
        "b.pcapng",
        false,
        40001,
        false,
        false,
        &[pkt(true, 500, b"other"), pkt(false, 501, b"another")],
    );
    let both = dir.path().join("both.pcapng");
    wireshark_tool(
        "mergecap",
        &[
            "-w".as_ref(),
            both.as_os_str(),
            first.as_os_str(),
            second.as_os_str(),
        ],
    );
    let addr = server.addr("echo");
    let (out, _) = replay(&[both.as_ref(), addr.as_ref()]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("holds 2 streams"), "{stderr}");
    assert!(stderr.contains("--stream N"), "{stderr}");
    assert!(stderr.contains("10.0.0.1:40000 -> 10.0.0.2:7"), "{stderr}");
    assert!(stderr.contains("10.0.0.1:40001 -> 10.0.0.2:7"), "{stderr}");

    let (out, _) = replay(&[
        both.as_ref(),
        addr.as_ref(),
        "--stream".as_ref(),
        "1".as_ref(),
        "--json".as_ref(),
    ])
    .await;
    // "other" comes back "OTHER", not the recorded "another".
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(report["client"], "10.0.0.1:40001");
    assert_eq!(texts(&report["replies"]).concat(), "OTHER");
    // Shorter than the recorded "another": the wait ends after --idle.
    assert_eq!(report["ended"], "idle");

    let (out, _) = replay(&[
        both.as_ref(),
        addr.as_ref(),
        "--stream".as_ref(),
        "5".as_ref(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("there is no stream 5"));
}

/// The engine as a library (what the dashboard calls): a conversation
/// built in code, replayed over a unix socket to echo. The client's FIN is
/// replayed too, so echo closes once it has answered.
#[tokio::test]
async fn the_engine_replays_a_conversation_to_a_unix_socket() {
    use switchboard::config::ListenAddr;
    use switchboard::replay::{Conversation, Dir, Ended, Limits, Proto, Segment, run};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let listen = ListenAddr::Unix(path.clone());
    let h = common::Harness::start_with(|c| c.service_mut(Echo).listen = listen).await;
    let seg = |dir, t_us, bytes: &[u8]| Segment {
        dir,
        t_us,
        bytes: bytes.to_vec(),
    };
    let conv = Conversation {
        proto: Proto::Tcp,
        client: "10.0.0.1:40000".parse().unwrap(),
        server: "10.0.0.2:7".parse().unwrap(),
        started_us: 0,
        segments: vec![
            seg(Dir::Client, 0, b"one "),
            seg(Dir::Server, 10, b"ONE "),
            seg(Dir::Client, 20, b"two"),
            seg(Dir::Server, 30, b"TWO"),
        ],
        client_fin_us: Some(40),
    };
    let limits = Limits {
        timeout: common::GUARD,
        ..Limits::default()
    };
    let outcome = guard("the replay", run(&conv, &h.target(Echo), &limits))
        .await
        .unwrap();
    assert_eq!(outcome.ended, Ended::ServerClosed);
    assert!(outcome.equal(), "{:?}", outcome.diff);
    let sent: Vec<&[u8]> = outcome.sent.iter().map(|c| c.bytes.as_slice()).collect();
    assert_eq!(sent, [&b"one "[..], b"two"]);
    assert_eq!(outcome.target, format!("unix:{}", path.display()));
}
