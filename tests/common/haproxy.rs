//! Real HAProxy in front of a test's server: TCP frontends that send a
//! PROXY header (tests/proxy_addr.rs), or an HTTP/1.1 one that keeps the
//! browser's connections alive as a deployed proxy does (tests/journey.rs).

use std::net::SocketAddr;
use std::process::Stdio;

use super::guard;

/// HAProxy in the foreground, killed when dropped: one frontend per server.
pub struct Haproxy {
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
    /// Where each server is reached through HAProxy, in their order.
    pub fronts: Vec<SocketAddr>,
}

fn free_port() -> SocketAddr {
    // HAProxy binds its own ports: a port the kernel just gave us and took
    // back is free unless something races for it within milliseconds.
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    l.local_addr().expect("bound")
}

impl Haproxy {
    /// HAProxy in `mode` (`tcp` or `http`), a frontend for each of
    /// `servers`: the rest of a `server` line, its address first
    /// (`127.0.0.1:9000 send-proxy-v2`). `None` when haproxy is missing
    /// and the skip is allowed.
    pub async fn start(mode: &str, servers: &[String]) -> Option<Haproxy> {
        let missing = std::process::Command::new("haproxy")
            .arg("-v")
            .output()
            .is_err();
        if missing
            && super::skip_allowed(
                "HAPROXY",
                "haproxy is not installed (apt-get install haproxy)",
            )
        {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = format!(
            "defaults\n  mode {mode}\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n"
        );
        let mut fronts = Vec::new();
        for (i, server) in servers.iter().enumerate() {
            let front = free_port();
            cfg.push_str(&format!(
                "frontend f{i}\n  bind {front}\n  default_backend b{i}\nbackend b{i}\n  \
                 server s{i} {server}\n"
            ));
            fronts.push(front);
        }
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, cfg).expect("write haproxy.cfg");
        let mut child = tokio::process::Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy starts");
        // Ready once every frontend accepts; an HAProxy that exited (a
        // port taken meanwhile, a config it refuses) fails at once.
        for front in &fronts {
            guard("haproxy listening", async {
                while tokio::net::TcpStream::connect(front).await.is_err() {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!("haproxy exited ({status}) before listening on {front}");
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            })
            .await;
        }
        Some(Haproxy {
            _child: child,
            _dir: dir,
            fronts,
        })
    }
}
