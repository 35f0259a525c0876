//! The yardstick for uploads: a bare tokio receiver of the tutorial's
//! 136-byte '128sq' header (seeds/003), storing `new_<name>` in a folder.
//! No name checks, no hashing, no fsync: only what the bytes need.
//!
//!     cargo run --release --example bare-recv -- 127.0.0.1:9112 /tmp/received

// Bare on purpose: none of switchboard's code, its bind helper included.
#![allow(clippy::disallowed_methods)]

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

async fn receive(stream: TcpStream, folder: &str) -> std::io::Result<()> {
    let mut stream = BufReader::with_capacity(256 * 1024, stream);
    let mut header = [0u8; 136];
    while stream.read_exact(&mut header).await.is_ok() {
        let name = String::from_utf8_lossy(&header[..128]);
        let name = name.trim_end_matches('\0');
        let size = i64::from_le_bytes(header[128..].try_into().expect("8 bytes"));
        let path = format!("{folder}/new_{name}");
        let mut file = tokio::fs::File::create(path).await?;
        let mut body = (&mut stream).take(u64::try_from(size).unwrap_or(0));
        tokio::io::copy_buf(&mut body, &mut file).await?;
        file.flush().await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9112".into());
    let folder = args.next().unwrap_or_else(|| ".".into());
    let listener = TcpListener::bind(&addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let folder = folder.clone();
        tokio::spawn(async move {
            let _ = receive(stream, &folder).await;
        });
    }
}
