//! The TCP echo service over real loopback sockets: behaviour, stats, bounds
//! and hostile peers.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{GUARD, Harness, guard};
use switchboard::client::{ClientError, EchoClient};
use switchboard::config::ListenAddr;
use switchboard::kind::ServiceKind::Echo;
use switchboard::stats::EventKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

#[tokio::test]
async fn replies_ascii_upper_cased_and_leaves_other_bytes_alone() {
    let h = Harness::start().await;
    let mut c = EchoClient::connect(&h.target(Echo), GUARD).await.unwrap();
    let reply = c
        .round_trip("hello wörld \x00\u{7f} 123".as_bytes())
        .await
        .unwrap();
    assert_eq!(reply, "HELLO WöRLD \x00\u{7f} 123".as_bytes());
    let binary: Vec<u8> = (0..=255).collect();
    let mut want = binary.clone();
    want.make_ascii_uppercase();
    assert_eq!(c.round_trip(&binary).await.unwrap(), want);
}

#[tokio::test]
async fn serves_many_clients_at_once() {
    let h = Harness::start().await;
    let target = h.target(Echo);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = EchoClient::connect(&target, GUARD).await.unwrap();
            for j in 0..20 {
                let msg = format!("client {i} message {j}");
                assert_eq!(
                    c.round_trip(msg.as_bytes()).await.unwrap(),
                    msg.to_uppercase().as_bytes()
                );
            }
        }));
    }
    for t in tasks {
        guard("clients", t).await.unwrap();
    }
    assert_eq!(h.stats.totals(Echo).accepted, 50);
}

#[tokio::test]
async fn bytes_counted_match_bytes_sent_both_ways_and_close_removes_the_connection() {
    let h = Harness::start().await;
    let mut events = h.stats.subscribe();
    let mut c = EchoClient::connect(&h.target(Echo), GUARD).await.unwrap();
    let mut sent = 0;
    for msg in ["one", "two two", &"x".repeat(100_000)] {
        c.round_trip(msg.as_bytes()).await.unwrap();
        sent += msg.len() as u64;
    }
    let snap = h
        .wait_for("the connection listed", |s| {
            s.connections_of(Echo).count() == 1
        })
        .await;
    let conn = snap.connections_of(Echo).next().unwrap();
    assert_eq!(
        conn.bytes_in, sent,
        "bytes in are counted before the reply is sent"
    );
    assert!(conn.peer.starts_with("127.0.0.1:"));
    drop(c);
    let closed = guard("closed event", async {
        loop {
            if let EventKind::Closed {
                bytes_in,
                bytes_out,
                ..
            } = events.recv().await.unwrap().kind
            {
                return (bytes_in, bytes_out);
            }
        }
    })
    .await;
    assert_eq!(closed, (sent, sent));
    let snap = h
        .wait_for("the connection gone", |s| {
            s.connections_of(Echo).count() == 0
        })
        .await;
    let t = snap.totals(Echo);
    assert_eq!((t.bytes_in, t.bytes_out, t.active), (sent, sent, 0));
}

#[tokio::test]
async fn a_half_closed_connection_still_gets_everything_echoed() {
    let h = Harness::start().await;
    let mut s = TcpStream::connect(h.addr(Echo)).await.unwrap();
    s.write_all(b"abc").await.unwrap();
    s.write_all(b"def").await.unwrap();
    s.shutdown().await.unwrap();
    let mut reply = Vec::new();
    guard("echo then EOF", s.read_to_end(&mut reply))
        .await
        .unwrap();
    assert_eq!(reply, b"ABCDEF");
}

#[tokio::test]
async fn a_peer_that_never_reads_is_dropped_without_harming_others() {
    let h = Harness::start_with(|c| {
        c.service_mut(Echo).tcp_mut().idle_timeout = Duration::from_millis(300)
    })
    .await;
    let mut events = h.stats.subscribe();
    let mut hostile = TcpStream::connect(h.addr(Echo)).await.unwrap();
    let writer = tokio::spawn(async move {
        // A 4 MiB burst, then more, never reading a byte of the replies. On
        // loopback the kernel buffers alone can hold a few MiB, so keep
        // writing until the server's writes stall and it gives up on us.
        let burst = vec![b'a'; 4 << 20];
        let mut result = Ok(());
        for _ in 0..16 {
            result = hostile.write_all(&burst).await;
            if result.is_err() {
                break;
            }
        }
        (result, hostile)
    });
    // Meanwhile, another client is served normally.
    let mut c = EchoClient::connect(&h.target(Echo), GUARD).await.unwrap();
    assert_eq!(c.round_trip(b"still here").await.unwrap(), b"STILL HERE");
    // The stalled connection is closed by the server: it read more than it
    // could send back.
    let (bytes_in, bytes_out) = guard("the stalled connection closed", async {
        loop {
            if let EventKind::Closed {
                bytes_in,
                bytes_out,
                ..
            } = events.recv().await.unwrap().kind
                && bytes_in > bytes_out
            {
                return (bytes_in, bytes_out);
            }
        }
    })
    .await;
    assert!(bytes_out < bytes_in, "{bytes_in} {bytes_out}");
    assert!(h.stats.totals(Echo).errors >= 1);
    let mut fresh = EchoClient::connect(&h.target(Echo), GUARD).await.unwrap();
    assert_eq!(fresh.round_trip(b"and now").await.unwrap(), b"AND NOW");
    // The hostile writer is cut off rather than left hanging.
    let (result, mut hostile) = guard("writer ends", writer).await.unwrap();
    assert!(result.is_err(), "the server closed the stalled connection");
    let mut sink = Vec::new();
    let _ = guard("hostile sees the close", hostile.read_to_end(&mut sink)).await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_at_the_idle_timeout() {
    let idle = Duration::from_secs(1);
    let h = Harness::start_with(|c| c.service_mut(Echo).tcp_mut().idle_timeout = idle).await;
    let mut s = TcpStream::connect(h.addr(Echo)).await.unwrap();
    s.write_all(b"hi").await.unwrap();
    let mut buf = [0u8; 2];
    s.read_exact(&mut buf).await.unwrap();
    let since = std::time::Instant::now();
    let (rest, closed) = common::read_until_closed(&mut s).await;
    assert!(rest.is_empty(), "{rest:?}");
    common::assert_closed_at_timeout("a quiet echo connection", since, closed, idle);
    h.wait_for("idle connection gone", |s| {
        s.connections_of(Echo).count() == 0
    })
    .await;
}

#[tokio::test]
async fn connections_over_the_service_cap_are_refused_with_a_message() {
    let h = Harness::start_with(|c| c.service_mut(Echo).tcp_mut().max_connections = 2).await;
    let mut a = EchoClient::connect(&h.target(Echo), GUARD).await.unwrap();
    let mut b = EchoClient::connect(&h.target(Echo), GUARD).await.unwrap();
    a.round_trip(b"a").await.unwrap();
    b.round_trip(b"b").await.unwrap();
    let mut third = TcpStream::connect(h.addr(Echo)).await.unwrap();
    let mut msg = String::new();
    guard("refusal", third.read_to_string(&mut msg))
        .await
        .unwrap();
    assert_eq!(
        msg,
        "switchboard: echo is at its limit of 2 connections, try again later\n"
    );
    assert_eq!(h.stats.totals(Echo).refused, 1);
    // Freeing a slot lets the next one in.
    drop(a);
    h.wait_for("one connection left", |s| s.totals(Echo).active == 1)
        .await;
    let mut c = EchoClient::connect(&h.target(Echo), GUARD).await.unwrap();
    assert_eq!(c.round_trip(b"in").await.unwrap(), b"IN");
}

async fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_refused_for_that_address_only() {
    let h =
        Harness::start_with(|c| c.service_mut(Echo).tcp_mut().max_connections_per_peer = 1).await;
    let mut first = connect_from([127, 0, 0, 1], h.addr(Echo)).await;
    first.write_all(b"x").await.unwrap();
    let mut one = [0u8; 1];
    first.read_exact(&mut one).await.unwrap();
    let mut second = connect_from([127, 0, 0, 1], h.addr(Echo)).await;
    let mut msg = String::new();
    guard("refusal", second.read_to_string(&mut msg))
        .await
        .unwrap();
    assert_eq!(
        msg,
        "switchboard: too many connections from 127.0.0.1, limit 1\n"
    );
    // Another loopback address is another peer.
    let mut other = connect_from([127, 0, 0, 2], h.addr(Echo)).await;
    other.write_all(b"y").await.unwrap();
    other.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"Y");
}

#[tokio::test]
async fn listens_on_ipv6() {
    if let Err(e) = std::net::TcpListener::bind("[::1]:0")
        && common::skip_allowed("IPV6", &format!("cannot bind the IPv6 loopback [::1]: {e}"))
    {
        return;
    }
    let h = Harness::start_with(|c| c.service_mut(Echo).listen = "[::1]:0".parse().unwrap()).await;
    let target = h.target(Echo);
    assert!(target.starts_with("[::1]:"), "{target}");
    let mut c = EchoClient::connect(&target, GUARD).await.unwrap();
    assert_eq!(c.round_trip(b"six").await.unwrap(), b"SIX");
    let snap = h
        .wait_for("v6 peer listed", |s| s.connections_of(Echo).count() == 1)
        .await;
    assert!(snap.connections[0].peer.starts_with("[::1]:"));
}

#[tokio::test]
async fn listens_on_a_unix_socket_and_removes_it_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let listen = ListenAddr::Unix(path.clone());
    let h = Harness::start_with(|c| c.service_mut(Echo).listen = listen).await;
    let target = h.target(Echo);
    assert_eq!(target, format!("unix:{}", path.display()));
    let mut c = EchoClient::connect(&target, GUARD).await.unwrap();
    assert_eq!(c.round_trip(b"local").await.unwrap(), b"LOCAL");
    let snap = h
        .wait_for("unix peer listed", |s| s.connections_of(Echo).count() == 1)
        .await;
    assert_eq!(snap.connections[0].peer, "unix");
    drop(c);
    h.supervisor.stop(Echo).await.unwrap();
    assert!(!path.exists(), "socket file removed on stop");
    // A stale file left by a crash does not stop the next start.
    std::os::unix::net::UnixListener::bind(&path)
        .map(drop)
        .unwrap();
    assert!(path.exists());
    h.supervisor.start(Echo).await.unwrap();
    let mut c = EchoClient::connect(&target, GUARD).await.unwrap();
    assert_eq!(c.round_trip(b"again").await.unwrap(), b"AGAIN");
}

#[tokio::test]
async fn the_client_says_clearly_when_nothing_listens() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = EchoClient::connect(&format!("127.0.0.1:{port}"), GUARD)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::Refused { .. }));
    assert_eq!(
        err.to_string(),
        format!("connection refused by 127.0.0.1:{port} — is `switchboard serve` running?")
    );
    assert!(matches!(
        EchoClient::connect("not an address", GUARD).await,
        Err(ClientError::BadAddress(_))
    ));
}

/// An echo connection waiting for its next request leaves the runtime that
/// serves it no timer (its idle timeout is the stats' sweep's, on the
/// `clock` thread): a worker parked in `epoll_wait` waits with no deadline
/// (timeout -1). A pending timer, even one due in minutes, gives every
/// park a deadline, which made a lone connection's round trip cost 5-10 %
/// more CPU (bench/NOTES.md). Read from the real binary's
/// `/proc/PID/task/TID/syscall` (the syscall a thread is blocked in, and
/// its arguments).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[tokio::test]
async fn a_waiting_echo_connection_leaves_its_runtime_no_timer() {
    let dir = tempfile::tempdir().unwrap();
    let served = common::Served::start(&dir.path().join("data"), &[Echo], &[]).await;
    let pid = served.child.id().unwrap();
    let mut c = EchoClient::connect(&served.addr(Echo), GUARD)
        .await
        .unwrap();
    assert_eq!(c.round_trip(b"idle now").await.unwrap(), b"IDLE NOW");
    let mut seen = Vec::new();
    let parked_for_good = async {
        loop {
            for timeout in epoll_wait_timeouts(pid) {
                if timeout == -1 {
                    return;
                }
                if seen.len() < 10 && !seen.contains(&timeout) {
                    seen.push(timeout);
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(GUARD, parked_for_good)
        .await
        .unwrap_or_else(|_| {
            panic!("the workers' epoll_wait always had a deadline (ms, some): {seen:?}")
        });
    assert_eq!(c.round_trip(b"still open").await.unwrap(), b"STILL OPEN");
}

/// The timeouts of the runtime workers of `pid` blocked in an epoll wait now.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn epoll_wait_timeouts(pid: u32) -> Vec<i64> {
    // epoll_wait, epoll_pwait (timeout the 4th argument); aarch64 has only the latter.
    let waits: &[&str] = if cfg!(target_arch = "x86_64") {
        &["232", "281"]
    } else {
        &["22"]
    };
    let mut timeouts = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != "tokio-rt-worker" {
            continue;
        }
        let syscall = std::fs::read_to_string(task.path().join("syscall")).unwrap_or_default();
        let fields: Vec<&str> = syscall.split_whitespace().collect();
        if fields.len() > 4 && waits.contains(&fields[0]) {
            let raw = u64::from_str_radix(fields[4].trim_start_matches("0x"), 16).unwrap();
            // An int argument in a 64-bit register: -1 is 0xffffffff or all ones.
            timeouts.push(i64::from(raw as u32 as i32));
        }
    }
    timeouts
}
