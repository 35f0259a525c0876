//! The yardstick for exec: a bare tokio server that spawns one program per
//! request, no authentication, no limits, no audit, no process group, no
//! timeout. It speaks seeds/001's "方式二" framing (what `switchboard bench
//! exec --classic` sends): the command line in one read, split on spaces
//! (no shell), answered by a 4-byte little-endian length and the output
//! (stderr instead when there was any, as the tutorial does), in one write.
//!
//!     cargo run --release --example bare-exec -- 127.0.0.1:9113
//!
//! The program name is looked up in PATH once per name and remembered, as
//! switchboard resolves its allowlist once at start, so neither pays a PATH
//! search per request. The child gets switchboard's exec environment
//! (PATH, `LANG=C.UTF-8`, HOME), so both children do the same work (with
//! `LANG` set, a coreutils program loads the locale's files at start). It
//! runs anything on the PATH: loopback only.

// Bare on purpose: none of switchboard's code, its bind helper included.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Resolved = Arc<Mutex<HashMap<String, Option<PathBuf>>>>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9113".into());
    let listener = TcpListener::bind(&addr).await?;
    if !listener.local_addr()?.ip().is_loopback() {
        eprintln!("bare-exec runs any program on the PATH for anyone: loopback only");
        std::process::exit(2);
    }
    let resolved: Resolved = Arc::default();
    loop {
        let (mut stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let resolved = resolved.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let n = match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let reply = run(&buf[..n], &resolved).await;
                if stream.write_all(&reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Runs one command line: the reply, its length prefix included.
async fn run(line: &[u8], resolved: &Resolved) -> Vec<u8> {
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let output = match words.next().and_then(|name| lookup(name, resolved)) {
        Some(program) => tokio::process::Command::new(program)
            .args(words)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("HOME", "/tmp")
            .stdin(Stdio::null())
            .output()
            .await
            .map(|o| {
                if o.stderr.is_empty() {
                    o.stdout
                } else {
                    o.stderr
                }
            })
            .unwrap_or_else(|e| e.to_string().into_bytes()),
        None => b"no such program".to_vec(),
    };
    let len = i32::try_from(output.len()).unwrap_or(i32::MAX);
    let mut reply = Vec::with_capacity(4 + output.len());
    reply.extend_from_slice(&len.to_le_bytes());
    reply.extend_from_slice(&output);
    reply
}

/// `name`'s path in PATH, looked up the first time it is asked for.
fn lookup(name: &str, resolved: &Resolved) -> Option<PathBuf> {
    let mut known = resolved.lock().unwrap_or_else(|e| e.into_inner());
    known
        .entry(name.to_owned())
        .or_insert_with(|| {
            let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
            path.split(':')
                .map(|dir| Path::new(dir).join(name))
                .find(|p| p.is_file())
        })
        .clone()
}
