//! `tcp-proxy` and `udp-proxy` over real loopback sockets: in front of the
//! echo services and of small test upstreams (a hashing echo, half-closers,
//! a silent one, a PROXY-header reader), plus their config mistakes.
//!
//! Every proxy probes its upstream now and then with a connect and a close,
//! so the test upstreams treat a connection that ends before its first byte
//! as a probe and ignore it.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Harness, Served, guard};
use sha2::{Digest, Sha256};
use switchboard::config::Config;
use switchboard::service::listen::bind_inet;
use switchboard::stats::EventKind;
use switchboard::wire::proxy_protocol::{self, Addresses, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// Resolves `text` (one or more `[services.*]` tables) as a config file.
fn resolve(text: &str) -> Result<Config, String> {
    common::resolve_file(text)
}

/// Adds and starts instance `name`, declared by `text`, on a running harness.
async fn add(h: &Harness, name: &str, text: &str) {
    let config = resolve(text).expect("the instance's config resolves");
    let service = config
        .service(name)
        .expect("the instance is declared")
        .clone();
    h.supervisor
        .add(service)
        .await
        .expect("the instance starts");
}

/// Adds a tcp-proxy `name` in front of `upstream`, with `extra` keys.
async fn add_tcp_proxy(h: &Harness, name: &str, upstream: &str, extra: &str) -> String {
    let text = format!(
        "[services.{name}]\nkind = \"tcp-proxy\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{upstream}\"\n{extra}\n"
    );
    add(h, name, &text).await;
    h.target(name)
}

/// A listener on an ephemeral loopback port, bound the way services bind.
fn listen_loopback() -> TcpListener {
    bind_inet(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap()
}

/// A loopback port that nothing listens on (bound, then closed).
fn closed_port() -> SocketAddr {
    let l = listen_loopback();
    l.local_addr().unwrap()
}

/// Waits (with the hang guard) for an event matching `pred`.
async fn wait_event(
    h: &Harness,
    what: &str,
    mut pred: impl FnMut(&EventKind) -> bool,
) -> EventKind {
    let mut changed = h.stats.changed();
    guard(what, async {
        loop {
            if let Some(e) = h.stats.recent_events().into_iter().find(|e| pred(&e.kind)) {
                return e.kind;
            }
            changed.changed().await.expect("the stats outlive the test");
        }
    })
    .await
}

/// Accepts connections on `listener` forever, each served by `serve` on a
/// task of its own, with the connection's first byte already read (probes,
/// which close before sending anything, are skipped).
fn spawn_upstream<F, Fut>(listener: TcpListener, serve: F)
where
    F: Fn(TcpStream, u8) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let serve = std::sync::Arc::new(serve);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let serve = std::sync::Arc::clone(&serve);
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                if matches!(s.read(&mut first).await, Ok(1)) {
                    serve(s, first[0]).await;
                }
            });
        }
    });
}

#[tokio::test]
async fn tcp_proxy_round_trips_through_echo_and_counts_bytes_live() {
    let h = Harness::start().await;
    let front = add_tcp_proxy(&h, "front", &h.target("echo"), "").await;
    let mut c = TcpStream::connect(&front).await.unwrap();
    c.write_all(b"hello").await.unwrap();
    let mut reply = [0u8; 5];
    guard("the echo's reply", c.read_exact(&mut reply))
        .await
        .unwrap();
    assert_eq!(&reply, b"HELLO");
    // Counted while the connection is open, on the proxy's own entry.
    let snap = h
        .wait_for("the proxy and the echo count both ways", |s| {
            s.connections_of("front")
                .any(|c| c.bytes_in == 5 && c.bytes_out == 5)
                // The upstream side is the echo's own connection (besides,
                // now and then, the health probe's, which carries no byte).
                && s.connections_of("echo").any(|c| c.bytes_in == 5)
        })
        .await;
    assert_eq!(snap.totals("front").bytes_in, 5);
    assert_eq!(snap.totals("front").bytes_out, 5);
    drop(c);
    h.wait_for("the proxy connection closes", |s| {
        s.connections_of("front").count() == 0 && s.connections_of("echo").count() == 0
    })
    .await;
}

#[tokio::test]
async fn tcp_proxy_forwards_to_a_unix_socket_upstream() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("up.sock");
    let upstream = tokio::net::UnixListener::bind(&path).unwrap();
    // Answers one line per connection that sends one (probes send none).
    tokio::spawn(async move {
        while let Ok((mut s, _)) = upstream.accept().await {
            tokio::spawn(async move {
                let mut line = Vec::new();
                if s.read_to_end(&mut line).await.is_ok() && !line.is_empty() {
                    line.make_ascii_uppercase();
                    let _ = s.write_all(&line).await;
                }
            });
        }
    });
    let upstream = format!("unix:{}", path.display());
    let front = add_tcp_proxy(&h, "to-unix", &upstream, "").await;
    let mut c = TcpStream::connect(&front).await.unwrap();
    c.write_all(b"over a unix socket").await.unwrap();
    c.shutdown().await.unwrap();
    let (got, _) = common::read_until_closed(&mut c).await;
    assert_eq!(got, b"OVER A UNIX SOCKET");
}

/// Fills `chunk` with the next pseudo-random bytes (xorshift from `seed`).
fn pattern_chunk(seed: &mut u64, chunk: &mut [u8]) {
    for word in chunk.chunks_mut(8) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        word.copy_from_slice(&seed.to_le_bytes()[..word.len()]);
    }
}

#[tokio::test]
async fn sixty_four_mib_pass_both_ways_unchanged() {
    const TOTAL: usize = 64 << 20;
    let h = Harness::start().await;
    let upstream = listen_loopback();
    let up_addr = upstream.local_addr().unwrap();
    // The upstream echoes everything back as it hashes it, then reports.
    let (report, mut reports) = mpsc::unbounded_channel();
    spawn_upstream(upstream, move |mut s, first| {
        let report = report.clone();
        async move {
            let mut hash = Sha256::new();
            hash.update([first]);
            let mut n = 1;
            s.write_all(&[first]).await.unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let got = s.read(&mut buf).await.unwrap();
                if got == 0 {
                    break;
                }
                hash.update(&buf[..got]);
                n += got;
                s.write_all(&buf[..got]).await.unwrap();
            }
            s.shutdown().await.unwrap();
            let _ = report.send((n, hash.finalize().to_vec()));
        }
    });
    let front = add_tcp_proxy(&h, "bulk", &up_addr.to_string(), "").await;
    let c = TcpStream::connect(&front).await.unwrap();
    let (mut rd, mut wr) = c.into_split();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let mut hash = Sha256::new();
        let (mut seed, mut chunk) = (0x9e37_79b9_7f4a_7c15_u64, vec![0u8; 256 * 1024]);
        for _ in 0..TOTAL / chunk.len() {
            pattern_chunk(&mut seed, &mut chunk);
            hash.update(&chunk);
            wr.write_all(&chunk).await.unwrap();
        }
        wr.shutdown().await.unwrap();
        hash.finalize().to_vec()
    });
    let reader = tokio::spawn(async move {
        let (mut hash, mut n, mut buf) = (Sha256::new(), 0, vec![0u8; 256 * 1024]);
        loop {
            let got = rd.read(&mut buf).await.unwrap();
            if got == 0 {
                break;
            }
            hash.update(&buf[..got]);
            n += got;
        }
        (n, hash.finalize().to_vec())
    });
    let sent = guard("the transfer", writer).await.unwrap();
    let (received, back) = guard("the echo back", reader).await.unwrap();
    let (up_n, up_hash) = guard("the upstream's report", reports.recv())
        .await
        .unwrap();
    eprintln!(
        "64 MiB each way through tcp-proxy in {:?}",
        started.elapsed()
    );
    assert_eq!((up_n, received), (TOTAL, TOTAL));
    assert_eq!(up_hash, sent, "the upstream got what was sent");
    assert_eq!(back, sent, "the client got it back unchanged");
    let snap = h
        .wait_for("all counted", |s| {
            s.totals("bulk").bytes_out == TOTAL as u64
        })
        .await;
    assert_eq!(snap.totals("bulk").bytes_in, TOTAL as u64);
}

#[tokio::test]
async fn a_client_half_close_reaches_the_upstream_and_its_answer_still_comes_back() {
    let h = Harness::start().await;
    let upstream = listen_loopback();
    let up_addr = upstream.local_addr().unwrap();
    // Reads to EOF, then answers: only works if the client's EOF arrives.
    spawn_upstream(upstream, |mut s, _first| async move {
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.unwrap();
        let answer = format!("got {} bytes", rest.len() + 1);
        s.write_all(answer.as_bytes()).await.unwrap();
    });
    let front = add_tcp_proxy(&h, "half", &up_addr.to_string(), "").await;
    let mut c = TcpStream::connect(&front).await.unwrap();
    c.write_all(b"abc").await.unwrap();
    c.shutdown().await.unwrap();
    let (answer, _) = common::read_until_closed(&mut c).await;
    assert_eq!(answer, b"got 3 bytes");
}

#[tokio::test]
async fn an_upstream_half_close_reaches_the_client_and_the_client_can_still_send() {
    let h = Harness::start().await;
    let upstream = listen_loopback();
    let up_addr = upstream.local_addr().unwrap();
    let (report, mut reports) = mpsc::unbounded_channel();
    // Greets, ends its writes, and goes on reading what the client sends.
    spawn_upstream(upstream, move |mut s, first| {
        let report = report.clone();
        async move {
            s.write_all(b"bye").await.unwrap();
            s.shutdown().await.unwrap();
            let mut rest = vec![first];
            s.read_to_end(&mut rest).await.unwrap();
            let _ = report.send(rest);
        }
    });
    let front = add_tcp_proxy(&h, "half2", &up_addr.to_string(), "").await;
    let mut c = TcpStream::connect(&front).await.unwrap();
    // The first byte makes the upstream start (a probe sends none).
    c.write_all(b">").await.unwrap();
    let mut greeting = Vec::new();
    guard("the upstream's EOF", c.read_to_end(&mut greeting))
        .await
        .unwrap();
    assert_eq!(greeting, b"bye");
    // Our direction still works after theirs ended.
    c.write_all(b"still here").await.unwrap();
    c.shutdown().await.unwrap();
    let got = guard("the upstream's report", reports.recv())
        .await
        .unwrap();
    assert_eq!(got, b">still here");
}

#[tokio::test]
async fn a_refusing_upstream_closes_the_client_at_once_and_says_why() {
    let h = Harness::start().await;
    let dead = closed_port();
    let front = add_tcp_proxy(&h, "refused", &dead.to_string(), "").await;
    let mut c = TcpStream::connect(&front).await.unwrap();
    let (got, _) = common::read_until_closed(&mut c).await;
    assert!(got.is_empty(), "a proxy writes nothing of its own: {got:?}");
    let event = wait_event(
        &h,
        "a refused event",
        |e| matches!(e, EventKind::Refused { service, .. } if service.name() == "refused"),
    )
    .await;
    let EventKind::Refused { reason, .. } = event else {
        unreachable!()
    };
    assert_eq!(reason, format!("upstream {dead}: connection refused"));
    assert!(h.stats.totals("refused").refused >= 1);
}

#[tokio::test]
async fn an_upstream_down_at_start_is_reported_then_used_once_it_is_up() {
    let h = Harness::start().await;
    let dead = closed_port();
    let front = add_tcp_proxy(&h, "later", &dead.to_string(), "").await;
    // The probe notices with no client at all.
    let down = format!("upstream {dead} down: connection refused");
    wait_event(&h, "the upstream reported down", |e| {
        matches!(e, EventKind::ServiceState { service, state } if service.name() == "later" && *state == down)
    })
    .await;
    // The upstream comes up on that port: the next client gets through.
    let upstream = bind_inet(dead).unwrap();
    spawn_upstream(upstream, |mut s, first| async move {
        let _ = s.write_all(&[first.to_ascii_uppercase()]).await;
    });
    let mut c = TcpStream::connect(&front).await.unwrap();
    c.write_all(b"x").await.unwrap();
    let (got, _) = common::read_until_closed(&mut c).await;
    assert_eq!(got, b"X");
    let up = format!("upstream {dead} up");
    wait_event(&h, "the upstream reported up", |e| {
        matches!(e, EventKind::ServiceState { service, state } if service.name() == "later" && *state == up)
    })
    .await;
}

#[tokio::test]
async fn a_silent_upstream_is_closed_at_the_idle_timeout() {
    let h = Harness::start().await;
    let upstream = listen_loopback();
    let up_addr = upstream.local_addr().unwrap();
    // Accepts and holds every connection, never reading or writing.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = upstream.accept().await {
            held.push(s);
        }
    });
    let idle = Duration::from_millis(1000);
    let front = add_tcp_proxy(&h, "silent", &up_addr.to_string(), "idle_timeout_ms = 1000").await;
    let mut c = TcpStream::connect(&front).await.unwrap();
    c.write_all(b"anyone?").await.unwrap();
    let since = Instant::now();
    let (got, closed) = common::read_until_closed(&mut c).await;
    assert!(got.is_empty());
    common::assert_closed_at_timeout("a silent upstream", since, closed, idle);
    h.wait_for("the connection is gone and counted as an error", |s| {
        s.connections_of("silent").count() == 0 && s.totals("silent").errors == 1
    })
    .await;
}

/// An upstream that reads a PROXY header and reports it with what follows.
fn header_reader(listener: TcpListener) -> mpsc::UnboundedReceiver<(Addresses, Version, Vec<u8>)> {
    let (report, reports) = mpsc::unbounded_channel();
    spawn_upstream(listener, move |mut s, first| {
        let report = report.clone();
        async move {
            let mut buf = vec![first];
            let (header, used) = loop {
                if let Some(found) = proxy_protocol::decode(&buf).expect("a valid header") {
                    break found;
                }
                let mut more = [0u8; 64];
                let n = s.read(&mut more).await.unwrap();
                assert!(n > 0, "EOF inside the header");
                buf.extend_from_slice(&more[..n]);
            };
            let mut rest = buf.split_off(used);
            s.read_to_end(&mut rest).await.unwrap();
            let _ = report.send((header.addresses, header.version, rest));
        }
    });
    reports
}

#[tokio::test]
async fn proxy_headers_name_the_real_client_in_both_versions() {
    let h = Harness::start().await;
    for (name, key, version) in [("pp1", "v1", Version::V1), ("pp2", "v2", Version::V2)] {
        let upstream = listen_loopback();
        let up_addr = upstream.local_addr().unwrap();
        let mut reports = header_reader(upstream);
        let extra = format!("proxy_protocol = \"{key}\"");
        let front = add_tcp_proxy(&h, name, &up_addr.to_string(), &extra).await;
        let mut c = TcpStream::connect(&front).await.unwrap();
        let client = c.local_addr().unwrap();
        c.write_all(b"payload").await.unwrap();
        c.shutdown().await.unwrap();
        // The upstream probe's connections announce no client: skipped.
        let (addresses, got_version, rest) = guard("the upstream's report", async {
            loop {
                let report = reports.recv().await.unwrap();
                if report.0 != Addresses::Unknown {
                    return report;
                }
            }
        })
        .await;
        assert_eq!(got_version, version);
        assert_eq!(
            addresses,
            Addresses::Tcp {
                src: client,
                dst: front.parse().unwrap()
            },
            "{key}"
        );
        assert_eq!(rest, b"payload", "{key}: the payload follows the header");
    }
}

/// The periodic upstream probe of a proxy with `proxy_protocol` sends a
/// header too (v1 `PROXY UNKNOWN`, v2 `LOCAL`), then closes: an upstream
/// with haproxy's `accept-proxy` otherwise logs every probe as an error.
#[tokio::test]
async fn the_upstream_probe_sends_an_unknown_or_local_proxy_header() {
    let h = Harness::start().await;
    for (name, key, exact) in [
        ("probe1", "v1", b"PROXY UNKNOWN\r\n".to_vec()),
        (
            "probe2",
            "v2",
            [&proxy_protocol::V2_SIGNATURE[..], &[0x20, 0x00, 0, 0]].concat(),
        ),
    ] {
        let upstream = listen_loopback();
        let up_addr = upstream.local_addr().unwrap();
        let extra = format!("proxy_protocol = \"{key}\"");
        // Bound before the proxy exists: its first probe is the first
        // connection this listener sees (no client connects here).
        add_tcp_proxy(&h, name, &up_addr.to_string(), &extra).await;
        let (mut s, _) = guard("the probe connects", upstream.accept())
            .await
            .unwrap();
        let mut got = Vec::new();
        guard("the probe closes", s.read_to_end(&mut got))
            .await
            .unwrap();
        assert_eq!(got, exact, "{key}: exactly the header, then the close");
        let (header, used) = proxy_protocol::decode(&got).unwrap().unwrap();
        assert_eq!((header.addresses, used), (Addresses::Unknown, got.len()));
    }
}

#[tokio::test]
async fn udp_proxy_answers_each_client_from_its_own_mapping_which_expires() {
    let h = Harness::start().await;
    let echo = h.target("udp-echo");
    let text = format!(
        "[services.dns-front]\nkind = \"udp-proxy\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{echo}\"\npeer_ttl_ms = 300\nmax_peers = 8\n"
    );
    add(&h, "dns-front", &text).await;
    let front = h.target("dns-front");
    let mut clients = Vec::new();
    for _ in 0..3 {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.connect(&front).await.unwrap();
        clients.push(s);
    }
    // All send before any reads: each reply must find its own client.
    for (i, c) in clients.iter().enumerate() {
        c.send(format!("client {i}").as_bytes()).await.unwrap();
    }
    let mut buf = [0u8; 64];
    for (i, c) in clients.iter().enumerate() {
        let n = guard("a reply", c.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], format!("CLIENT {i}").as_bytes());
    }
    let snap = h
        .wait_for("three mappings, three upstream peers", |s| {
            s.connections_of("dns-front").count() == 3 && s.connections_of("udp-echo").count() == 3
        })
        .await;
    assert_eq!(snap.totals("dns-front").bytes_out, 3 * 8);
    // Quiet for peer_ttl: every mapping goes.
    h.wait_for("the mappings expire", |s| {
        s.connections_of("dns-front").count() == 0
    })
    .await;
    // A client heard again gets a new mapping, from a new upstream port.
    clients[0].send(b"again").await.unwrap();
    let n = guard("a reply after expiry", clients[0].recv(&mut buf))
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"AGAIN");
    h.wait_for("a fourth upstream peer", |s| {
        s.connections_of("udp-echo").count() == 4
    })
    .await;
    assert_eq!(h.stats.totals("dns-front").accepted, 4);
}

#[tokio::test]
async fn udp_proxy_stops_a_client_that_reflects_its_replies() {
    let h = Harness::start().await;
    let echo = h.target("udp-echo");
    let text = format!(
        "[services.loop-front]\nkind = \"udp-proxy\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{echo}\"\n"
    );
    add(&h, "loop-front", &text).await;
    // A client that sends every reply straight back, as another echo
    // service made to talk to us would.
    let reflector = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    reflector.connect(h.target("loop-front")).await.unwrap();
    reflector.send(b"hello").await.unwrap();
    let reflecting = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        let mut bounced = 0u32;
        loop {
            let n = reflector.recv(&mut buf).await.unwrap();
            bounced += 1;
            assert!(bounced < 100, "the loop was not broken");
            reflector.send(&buf[..n]).await.unwrap();
        }
    });
    guard("the proxy drops a reflected reply", async {
        // A dropped datagram is counted without an event: polled, as
        // tests/udp_loops.rs does.
        while h.stats.totals("loop-front").refused == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    reflecting.abort();
    // The loop ended at that drop: the client's datagram and a few
    // reflections, five bytes each.
    let forwarded = h.stats.totals("loop-front").bytes_in / 5;
    assert!((3..=10).contains(&forwarded), "{forwarded} datagrams");
}

#[test]
fn proxy_config_mistakes_are_named() {
    let base = |kind: &str, extra: &str| {
        format!("[services.p]\nkind = \"{kind}\"\nlisten = \"127.0.0.1:7000\"\n{extra}\n")
    };
    // Missing upstream.
    for kind in ["tcp-proxy", "udp-proxy"] {
        let err = resolve(&base(kind, "")).unwrap_err();
        assert!(
            err.contains("`services.p.upstream`") && err.contains("required"),
            "{err}"
        );
    }
    // Keys of another kind or protocol, and typos.
    for (kind, extra, key) in [
        (
            "tcp-proxy",
            "upstream = \"127.0.0.1:1\"\nmax_peers = 3",
            "services.p.max_peers",
        ),
        (
            "tcp-proxy",
            "upstream = \"127.0.0.1:1\"\nupstream_timeout_ms = 3",
            "services.p.upstream_timeout_ms",
        ),
        (
            "udp-proxy",
            "upstream = \"127.0.0.1:1\"\nconnect_timeout_ms = 3",
            "services.p.connect_timeout_ms",
        ),
        (
            "udp-proxy",
            "upstream = \"127.0.0.1:1\"\nproxy_protocol = \"v1\"",
            "services.p.proxy_protocol",
        ),
    ] {
        let err = resolve(&base(kind, extra)).unwrap_err();
        assert!(
            err.contains(&format!("unknown config key `{key}`")),
            "{err}"
        );
    }
    // Bad values, each naming its key.
    for (kind, extra, key) in [
        ("tcp-proxy", "upstream = \"nowhere\"", "services.p.upstream"),
        (
            "tcp-proxy",
            "upstream = \"127.0.0.1:1\"\nproxy_protocol = \"v3\"",
            "services.p.proxy_protocol",
        ),
        (
            "tcp-proxy",
            "upstream = \"127.0.0.1:1\"\nconnect_timeout_ms = 0",
            "services.p.connect_timeout_ms",
        ),
        (
            "udp-proxy",
            "upstream = \"unix:/tmp/x.sock\"",
            "services.p.upstream",
        ),
    ] {
        let err = resolve(&base(kind, extra)).unwrap_err();
        assert!(err.contains(&format!("`{key}`")), "{err}");
    }
    // Every documented form is accepted.
    for (kind, extra) in [
        (
            "tcp-proxy",
            "upstream = \"[::1]:6379\"\nconnect_timeout_ms = 250\nproxy_protocol = \"v2\"",
        ),
        (
            "tcp-proxy",
            "upstream = \"unix:/run/app.sock\"\nproxy_protocol = \"off\"",
        ),
        (
            "tcp-proxy",
            "upstream = \"localhost:6379\"\nmax_connections = 10\nidle_timeout_ms = 1000",
        ),
        (
            "udp-proxy",
            "upstream = \"127.0.0.1:53\"\nmax_peers = 10\npeer_ttl_ms = 1000",
        ),
    ] {
        let config = resolve(&base(kind, extra)).unwrap_or_else(|e| panic!("{extra}: {e}"));
        assert_eq!(config.service("p").unwrap().id.kind().name(), kind);
    }
}

#[tokio::test]
async fn curl_fetches_a_page_from_python_http_server_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let page = "<h1>through switchboard</h1>\n".repeat(2000);
    std::fs::write(dir.path().join("index.html"), &page).unwrap();
    // Python binds first, then prints its port: nothing to race.
    let mut python = tokio::process::Command::new("python3")
        .args([
            "-c",
            "import http.server, os, sys\n\
             os.chdir(sys.argv[1])\n\
             s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)\n\
             print(s.server_address[1], flush=True)\n\
             s.serve_forever()",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs (the test command installs it)");
    let mut first = String::new();
    {
        use tokio::io::AsyncBufReadExt;
        let out = python.stdout.as_mut().unwrap();
        guard(
            "python's port",
            tokio::io::BufReader::new(out).read_line(&mut first),
        )
        .await
        .unwrap();
    }
    let port: u16 = first.trim().parse().expect("a port");
    let h = Harness::start().await;
    let proxy = add_tcp_proxy(&h, "web-front", &format!("127.0.0.1:{port}"), "").await;
    let out = guard(
        "curl",
        tokio::process::Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "10"])
            .arg(format!("http://{proxy}/index.html"))
            .output(),
    )
    .await
    .expect("curl runs (the test command installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), page);
    let snap = h
        .wait_for("the proxied bytes counted", |s| {
            s.totals("web-front").bytes_out >= page.len() as u64
        })
        .await;
    assert!(snap.totals("web-front").bytes_in > 0);
}

/// One side's stream for the large transfers: a pseudo-random MiB, each
/// copy stamped with its index (so a lost, repeated or reordered MiB
/// changes the hash), cheap enough for a debug build.
struct Stream1M {
    chunk: Vec<u8>,
    next: u64,
}

impl Stream1M {
    fn new(seed: u64) -> Stream1M {
        let (mut seed, mut chunk) = (seed, vec![0u8; 1 << 20]);
        pattern_chunk(&mut seed, &mut chunk);
        Stream1M { chunk, next: 0 }
    }

    /// The next MiB.
    fn next_chunk(&mut self) -> &[u8] {
        self.chunk[..8].copy_from_slice(&self.next.to_le_bytes());
        self.next += 1;
        &self.chunk
    }
}

/// Writes `mib` MiB of `Stream1M::new(seed)` to `w`, then shuts it down;
/// the SHA-256 of what was written.
async fn send_hashed(mut w: impl AsyncWriteExt + Unpin, seed: u64, mib: usize) -> Vec<u8> {
    let (mut hash, mut stream) = (Sha256::new(), Stream1M::new(seed));
    for _ in 0..mib {
        let chunk = stream.next_chunk();
        hash.update(chunk);
        w.write_all(chunk).await.unwrap();
    }
    w.shutdown().await.unwrap();
    hash.finalize().to_vec()
}

/// Reads `r` to its end: how many bytes, and their SHA-256 (with `first`,
/// a byte already read, in front).
async fn receive_hashed(mut r: impl AsyncReadExt + Unpin, first: &[u8]) -> (usize, Vec<u8>) {
    let (mut hash, mut n, mut buf) = (Sha256::new(), first.len(), vec![0u8; 256 * 1024]);
    hash.update(first);
    loop {
        let got = r.read(&mut buf).await.unwrap();
        if got == 0 {
            return (n, hash.finalize().to_vec());
        }
        hash.update(&buf[..got]);
        n += got;
    }
}

/// The hang guard for a GiB each way: the transfer must take well under
/// this even in a debug build.
async fn guard60<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_crosses_the_proxy_each_way_with_equal_hashes_at_both_ends() {
    const MIB: usize = 1024;
    const UP_SEED: u64 = 0x2545_f491_4f6c_dd1d;
    const CLIENT_SEED: u64 = 0x9e37_79b9_7f4a_7c15;
    let h = Harness::start().await;
    let upstream = listen_loopback();
    let up_addr = upstream.local_addr().unwrap();
    // The upstream hashes what it gets while it sends its own GiB, then
    // reports both hashes.
    let (report, mut reports) = mpsc::unbounded_channel();
    spawn_upstream(upstream, move |s, first| {
        let report = report.clone();
        async move {
            let (rd, wr) = s.into_split();
            let first = [first];
            let (got, sent) =
                tokio::join!(receive_hashed(rd, &first), send_hashed(wr, UP_SEED, MIB));
            let _ = report.send((got, sent));
        }
    });
    let front = add_tcp_proxy(&h, "gib", &up_addr.to_string(), "").await;
    let (rd, wr) = TcpStream::connect(&front).await.unwrap().into_split();
    let started = Instant::now();
    let writer = tokio::spawn(send_hashed(wr, CLIENT_SEED, MIB));
    let reader = tokio::spawn(receive_hashed(rd, &[]));
    let sent = guard60("the client's GiB", writer).await.unwrap();
    let (received, back) = guard60("the upstream's GiB", reader).await.unwrap();
    let ((up_n, up_got), up_sent) = guard("the upstream's report", reports.recv())
        .await
        .unwrap();
    eprintln!(
        "1 GiB each way through tcp-proxy in {:?}",
        started.elapsed()
    );
    assert_eq!((up_n, received), (MIB << 20, MIB << 20));
    assert_eq!(up_got, sent, "the upstream got what the client sent");
    assert_eq!(back, up_sent, "the client got what the upstream sent");
    let snap = h
        .wait_for("all counted", |s| {
            s.totals("gib").bytes_out == (MIB << 20) as u64
        })
        .await;
    assert_eq!(snap.totals("gib").bytes_in, (MIB << 20) as u64);
}

/// The proxy as its own process (the real binary, built-in services off)
/// in front of `upstream`, with `extra` keys for the `px` instance.
async fn served_proxy(
    dir: &std::path::Path,
    upstream: SocketAddr,
    extra: &str,
) -> (Served, String) {
    let config = dir.join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[services.px]\nkind = \"tcp-proxy\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{upstream}\"\n{extra}\n"
        ),
    )
    .unwrap();
    let served = Served::start(
        &dir.join("data"),
        &[],
        &[("SWITCHBOARD_CONFIG", config.to_str().unwrap())],
    )
    .await;
    let addr = served.addr("px");
    (served, addr)
}

/// A process's resident memory, from /proc/PID/status.
fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// How many pipe ends a process holds, from /proc/PID/fd.
fn pipe_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("pipe:"))
        })
        .count()
}

/// A write that makes no progress for this long means the writer is
/// blocked: its peer stopped taking bytes (a detector, not a sleep).
const STALLED: Duration = Duration::from_secs(1);

/// Writes chunks of `chunk` to `w` until `total` bytes are written or a
/// write makes no progress for [`STALLED`]; how many were written, and
/// when the last write that moved bytes returned.
async fn write_until_stalled(
    w: &mut (impl AsyncWriteExt + Unpin),
    chunk: &[u8],
    total: usize,
) -> (usize, Instant) {
    let (mut written, mut last) = (0, Instant::now());
    while written < total {
        let want = chunk.len().min(total - written);
        match tokio::time::timeout(STALLED, w.write(&chunk[..want])).await {
            Ok(Ok(n)) => {
                written += n;
                last = Instant::now();
            }
            Ok(Err(e)) => panic!("the write failed before it stalled: {e}"),
            Err(_) => break,
        }
    }
    (written, last)
}

/// Most a proxy's RSS may grow while one connection is stalled with
/// 256 MiB to move: per direction the proxy holds a 16 KiB copy buffer or
/// a pipe (kernel memory, outside RSS), so anything near the size of the
/// transfer means a queue grew; 16 MiB leaves room for allocator and
/// runtime noise and is still far below it.
const RSS_GROWTH_KIB: u64 = 16 << 10;

/// Waits, with the hang guard, for `w`'s writes to fail: its peer closed
/// (the proxy, at its idle timeout). When they did.
///
/// Callers compare that with their last write that made progress, which
/// can land a little after the proxy's last read (the kernel frees buffer
/// space as it likes): they accept from three quarters of the timeout to
/// one and a half times it (slack for a busy machine), so a proxy that
/// closed at half the timeout or at double it fails.
async fn write_until_refused(w: &mut (impl AsyncWriteExt + Unpin), chunk: &[u8]) -> Instant {
    guard("the proxy closes at its idle timeout", async {
        loop {
            if w.write(chunk).await.is_err() {
                return Instant::now();
            }
        }
    })
    .await
}

/// Reads `r` until `n` bytes came.
async fn read_n(r: &mut (impl AsyncReadExt + Unpin), n: usize) {
    let (mut buf, mut got) = (vec![0u8; 256 * 1024], 0);
    while got < n {
        let more = r.read(&mut buf).await.unwrap();
        assert!(more > 0, "ended after {got} of {n} bytes");
        got += more;
    }
}

/// Connects a client to `front`, sends one byte, and accepts the proxy's
/// connection on `upstream` that carries it (skipping health probes,
/// which close without a byte).
async fn connect_through(front: &str, upstream: &TcpListener) -> (TcpStream, TcpStream) {
    let mut client = TcpStream::connect(front).await.unwrap();
    client.write_all(b"!").await.unwrap();
    guard("the proxy connects upstream", async {
        loop {
            let (mut s, _) = upstream.accept().await.unwrap();
            let mut first = [0u8; 1];
            if matches!(s.read(&mut first).await, Ok(1)) {
                return (client, s);
            }
        }
    })
    .await
}

/// The side of a proxied connection that stops reading.
#[derive(Clone, Copy, Debug)]
enum Deaf {
    Client,
    Upstream,
}

/// One side (`deaf`) never reads while the other writes up to 256 MiB to
/// it: the writer stalls with the proxy's memory bounded, while 32 MiB
/// still flow the other way; once nothing has moved for the idle timeout
/// (not half, not double) the proxy closes both sides, and the deaf side
/// then gets no more than was written.
async fn a_side_that_never_reads_stalls_the_other_with_bounded_proxy_memory(deaf: Deaf) {
    const STALLED_WAY: usize = 256 << 20;
    const OTHER_WAY: usize = 32 << 20;
    let idle = Duration::from_millis(4000);
    let dir = tempfile::tempdir().unwrap();
    let upstream = listen_loopback();
    let up_addr = upstream.local_addr().unwrap();
    let extra = format!("idle_timeout_ms = {}", idle.as_millis());
    let (served, front) = served_proxy(dir.path(), up_addr, &extra).await;
    let pid = served.child.id().unwrap();
    let before = vm_rss_kib(pid);
    let (client, up) = connect_through(&front, &upstream).await;
    let (mut talker, mut deaf_side) = match deaf {
        Deaf::Client => (up, client),
        Deaf::Upstream => (client, up),
    };
    let chunk = vec![0x5au8; 1 << 20];
    let (mut talker_rd, mut talker_wr) = talker.split();
    let ((written, stalled_at), other_done, ()) = tokio::join!(
        write_until_stalled(&mut talker_wr, &chunk, STALLED_WAY),
        async {
            read_n(&mut talker_rd, OTHER_WAY).await;
            Instant::now()
        },
        async {
            for _ in 0..OTHER_WAY / chunk.len() {
                deaf_side.write_all(&chunk).await.unwrap();
            }
        },
    );
    let held = vm_rss_kib(pid);
    eprintln!(
        "{deaf:?} never reads: the other side stalled after {} MiB; proxy RSS {before} -> {held} KiB (+{} KiB)",
        written >> 20,
        held.saturating_sub(before)
    );
    assert!(written < STALLED_WAY, "the writes never stalled");
    assert!(
        held < before + RSS_GROWTH_KIB,
        "the proxy's RSS grew from {before} to {held} KiB while stalled"
    );
    // The last byte moved either way: the idle clock starts there.
    let last = stalled_at.max(other_done);
    let closed = write_until_refused(&mut talker_wr, &chunk).await;
    let after = closed - last;
    assert!(
        after >= idle * 3 / 4 && after < idle * 3 / 2,
        "{deaf:?} never reads: closed {after:?} after the last byte moved, not at the {idle:?} idle timeout"
    );
    // The proxy closed the deaf side too: once it reads, what was under
    // way arrives, then the end.
    let (got, _) = common::read_until_closed(&mut deaf_side).await;
    assert!(got.len() <= written, "no more than was sent arrives");
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_stalls_the_upstream_with_bounded_proxy_memory() {
    a_side_that_never_reads_stalls_the_other_with_bounded_proxy_memory(Deaf::Client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_never_reads_stalls_the_client_with_bounded_proxy_memory() {
    a_side_that_never_reads_stalls_the_other_with_bounded_proxy_memory(Deaf::Upstream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_proxied_connections_hold_no_pipe() {
    const CONNS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let upstream = listen_loopback();
    let up_addr = upstream.local_addr().unwrap();
    let (served, front) = served_proxy(dir.path(), up_addr, "").await;
    let pid = served.child.id().unwrap();
    let baseline = pipe_fds(pid);
    let mut pairs = Vec::new();
    for _ in 0..CONNS {
        pairs.push(connect_through(&front, &upstream).await);
    }
    // Each direction moved a little and went quiet.
    for (client, up) in &mut pairs {
        up.write_all(b"?").await.unwrap();
        let mut byte = [0u8; 1];
        guard("the byte back", client.read_exact(&mut byte))
            .await
            .unwrap();
    }
    assert_eq!(pipe_fds(pid), baseline, "an idle connection holds a pipe");
    // Bulk both ways on every connection (splice's pipes), then quiet:
    // at most the per-thread pools' empty pipes stay.
    let chunk = vec![7u8; 1 << 20];
    for (client, up) in &mut pairs {
        let (mut crd, mut cwr) = client.split();
        let (mut urd, mut uwr) = up.split();
        guard("a MiB each way", async {
            tokio::join!(
                async { cwr.write_all(&chunk).await.unwrap() },
                async { uwr.write_all(&chunk).await.unwrap() },
                read_n(&mut crd, chunk.len()),
                read_n(&mut urd, chunk.len()),
            )
        })
        .await;
    }
    let after = pipe_fds(pid);
    eprintln!(
        "{CONNS} idle proxied connections after bulk: {} pipe fds over the baseline",
        after - baseline
    );
    // A worker thread per core, 8 pipes each, 2 fds per pipe.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        after <= baseline + cores * 8 * 2,
        "{} pipe fds held by {CONNS} idle connections",
        after - baseline
    );
    drop(pairs);
    drop(served);
}

/// The threads of process `pid` named `proxy-core-*` (the per-core
/// runtimes proxied connections live on), each with its time on a CPU so
/// far in ns (the first field of its `schedstat`).
fn core_threads(pid: u32) -> Vec<(String, u64)> {
    let mut cores = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("proxy-core-") {
            continue;
        }
        let schedstat = std::fs::read_to_string(task.path().join("schedstat")).unwrap();
        let on_cpu = schedstat
            .split_whitespace()
            .next()
            .expect("a thread's schedstat has its time on a CPU")
            .parse()
            .unwrap();
        cores.push((comm.trim().to_owned(), on_cpu));
    }
    cores.sort();
    cores
}

/// Proxied connections run on a runtime of one thread per core, spread
/// over them: one connection per core, each core thread then runs for the
/// round trips of its own connection.
#[tokio::test]
async fn proxied_connections_are_spread_over_a_thread_per_core() {
    const ROUND_TRIPS: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let upstream = listen_loopback();
    let up_addr = upstream.local_addr().unwrap();
    let (served, front) = served_proxy(dir.path(), up_addr, "").await;
    let pid = served.child.id().unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut pairs = Vec::new();
    for _ in 0..cores {
        pairs.push(connect_through(&front, &upstream).await);
    }
    let before = core_threads(pid);
    assert_eq!(before.len(), cores, "core threads: {before:?}");
    for (client, up) in &mut pairs {
        let mut byte = [0u8; 1];
        guard("the round trips", async {
            for _ in 0..ROUND_TRIPS {
                client.write_all(b"?").await.unwrap();
                up.read_exact(&mut byte).await.unwrap();
                up.write_all(b"!").await.unwrap();
                client.read_exact(&mut byte).await.unwrap();
            }
        })
        .await;
    }
    let after = core_threads(pid);
    for ((name, was), (_, now)) in before.iter().zip(&after) {
        // A core with no connection has no task and never runs: its time
        // stays put (under any load), where one that serves a connection
        // runs for each of its round trips.
        assert!(
            now > was,
            "{name} did not run in {ROUND_TRIPS} round trips: {before:?} -> {after:?}"
        );
    }
    drop(pairs);
    drop(served);
}

/// The oracle for the probe's header: haproxy with `accept-proxy` in front
/// of echo, logging to a UDP socket here. A proxied client's connection is
/// logged as usual; the probes (one per proxy, at its start, v1 and v2)
/// must log no "waiting for PROXY protocol header" error, which a bare
/// connect-and-close (the control, sent last) does log.
#[tokio::test]
async fn haproxy_with_accept_proxy_logs_no_error_for_the_probes() {
    let h = Harness::start().await;
    let log = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let front = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let front_addr = front.local_addr().unwrap();
    drop(front);
    let cfg = format!(
        "global\n  nbthread 1\n  log {} local0 info\n\
         defaults\n  mode tcp\n  log global\n  option tcplog\n  timeout connect 2s\n  \
         timeout client 10s\n  timeout server 10s\n\
         frontend fe\n  bind {front_addr} accept-proxy\n  default_backend be\n\
         backend be\n  server echo {}\n",
        log.local_addr().unwrap(),
        h.target("echo")
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let _haproxy = tokio::process::Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy (scripts/test.sh installs it)");
    // Ready once it accepts.
    guard("haproxy listens", async {
        while TcpStream::connect(front_addr).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // That readiness connect is closed without a header: the first error.
    let mut lines = Vec::new();
    let next = async || {
        let mut buf = vec![0u8; 4096];
        let n = guard("a haproxy log line", log.recv(&mut buf))
            .await
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    const ERROR: &str = "waiting for PROXY protocol header";
    loop {
        let line = next().await;
        let done = line.contains(ERROR);
        lines.push(line);
        if done {
            break;
        }
    }
    for (name, key) in [("hp1", "v1"), ("hp2", "v2")] {
        let extra = format!("proxy_protocol = \"{key}\"");
        let proxy = add_tcp_proxy(&h, name, &front_addr.to_string(), &extra).await;
        let mut c = TcpStream::connect(&proxy).await.unwrap();
        c.write_all(b"through haproxy").await.unwrap();
        let mut reply = [0u8; 15];
        guard("the reply", c.read_exact(&mut reply)).await.unwrap();
        assert_eq!(&reply, b"THROUGH HAPROXY");
    }
    // The control, last: a bare connect and close, known by its port.
    let control = TcpStream::connect(front_addr).await.unwrap();
    let control_addr = control.local_addr().unwrap().to_string();
    drop(control);
    let mut after = Vec::new();
    loop {
        let line = next().await;
        let done = line.contains(ERROR) && line.contains(&control_addr);
        after.push(line);
        if done {
            break;
        }
    }
    let errors: Vec<&String> = after.iter().filter(|l| l.contains(ERROR)).collect();
    assert_eq!(errors.len(), 1, "only the control's: {after:#?}");
}
