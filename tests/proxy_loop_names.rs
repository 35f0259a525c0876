//! A udp-proxy whose upstream is a host name (not `localhost`, which the
//! supervisor's check reads as the loopbacks) that resolves to another
//! udp-proxy of this process: the name is resolved at the proxy's start
//! (within 5 s) and the proxy refuses to run, naming the loop, instead of
//! bouncing a datagram between the two until the new-peer limits stop it.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{Harness, guard};
use switchboard::supervisor::ServiceState;

/// A name other than `localhost` that resolves to a loopback address here:
/// the machine's host name or a common alias.
async fn loopback_name() -> Option<(String, IpAddr)> {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    for name in [hostname.trim(), "localhost.localdomain", "ip6-localhost"] {
        if name.is_empty() || name.eq_ignore_ascii_case("localhost") {
            continue;
        }
        if let Ok(Ok(mut addrs)) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((name, 9u16)),
        )
        .await
            && let Some(a) = addrs.find(|a| a.ip().is_loopback())
        {
            return Some((name.to_owned(), a.ip()));
        }
    }
    None
}

fn proxy(name: &str, listen: &str, upstream: &str) -> switchboard::config::ServiceConfig {
    let text = format!(
        "[services.{name}]\nkind = \"udp-proxy\"\nlisten = \"{listen}\"\nupstream = \"{upstream}\"\n"
    );
    common::resolve_file(&text)
        .unwrap()
        .service(name)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_udp_proxy_whose_upstream_name_is_another_of_ours_refuses_to_run() {
    let Some((name, ip)) = loopback_name().await else {
        if std::env::var_os("SWITCHBOARD_SKIP_LOOPBACK_NAME").is_some() {
            eprintln!("skipped: no host name resolves to a loopback address here");
            return;
        }
        panic!(
            "no host name other than localhost resolves to a loopback address here (the \
             machine's name, localhost.localdomain, ip6-localhost); add one to /etc/hosts or \
             set SWITCHBOARD_SKIP_LOOPBACK_NAME=1 to skip this test"
        );
    };
    let listen = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => format!("{v4}:0"),
        IpAddr::V6(v6) => format!("[{v6}]:0"),
    };
    let h = Harness::start().await;
    h.supervisor
        .add(proxy("ring-a", &listen(ip), "127.0.0.1:9"))
        .await
        .expect("ring-a starts");
    let port = h
        .supervisor
        .statuses()
        .into_iter()
        .find(|s| s.name.name() == "ring-a")
        .and_then(|s| s.local_addr)
        .and_then(|a| a.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()))
        .expect("ring-a's port");
    // By name: the supervisor's check cannot see it; the start can.
    let upstream = format!("{name}:{port}");
    let _ = h
        .supervisor
        .add(proxy("ring-b", &listen(ip), &upstream))
        .await;
    let why = guard("ring-b refuses to run", async {
        loop {
            if let Some(ServiceState::Failed(why)) = h
                .supervisor
                .statuses()
                .into_iter()
                .find(|s| s.name.name() == "ring-b")
                .map(|s| s.status)
            {
                return why;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        why.contains("ring-a") && why.contains("loop") && why.contains(&upstream),
        "names the other proxy and the name: {why}"
    );
    // A name leading to one of our services that does not forward (here
    // udp-echo) is a use, not a loop: it runs and forwards.
    let echo_port = h.target("udp-echo").rsplit(':').next().unwrap().to_owned();
    let echo_ip: IpAddr = h
        .target("udp-echo")
        .rsplit_once(':')
        .unwrap()
        .0
        .parse()
        .unwrap();
    if echo_ip == ip {
        h.supervisor
            .add(proxy(
                "to-echo",
                &listen(ip),
                &format!("{name}:{echo_port}"),
            ))
            .await
            .expect("starts");
        let client = tokio::net::UdpSocket::bind((ip, 0)).await.expect("bind");
        let front = h.target("to-echo");
        let mut buf = [0u8; 16];
        let reply = guard("an echo through the proxy", async {
            loop {
                client.send_to(b"named", &front).await.expect("send");
                if let Ok(Ok((n, _))) =
                    tokio::time::timeout(Duration::from_millis(500), client.recv_from(&mut buf))
                        .await
                {
                    return buf[..n].to_vec();
                }
            }
        })
        .await;
        assert_eq!(reply, b"NAMED");
    }
}
