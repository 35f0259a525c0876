//! The yardstick: a bare tokio upper-case echo server, no limits, no stats,
//! no timeouts. A task per connection, a 16 KiB buffer (as switchboard's).
//!
//!     cargo run --release --example bare-echo -- 127.0.0.1:9110

// Bare on purpose: none of switchboard's code, its bind helper included.
#![allow(clippy::disallowed_methods)]

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9110".into());
    let listener = TcpListener::bind(&addr).await?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf[..n].make_ascii_uppercase();
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
    }
}
