//! The yardstick for UDP: a bare tokio upper-case echo on one socket, one
//! task, no limits, no stats.
//!
//!     cargo run --release --example bare-udp -- 127.0.0.1:9111

// Bare on purpose: none of switchboard's code, its bind helper included.
#![allow(clippy::disallowed_methods)]

use tokio::net::UdpSocket;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9111".into());
    let socket = UdpSocket::bind(&addr).await?;
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        buf[..n].make_ascii_uppercase();
        let _ = socket.send_to(&buf[..n], peer).await;
    }
}
