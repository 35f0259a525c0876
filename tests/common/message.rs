//! The message protocol as any client written from docs/PROTOCOL.md speaks
//! it, with none of our codec: a generic reader that knows no service and
//! no op, and reads every message as `[u32 BE H][H bytes JSON][size bytes]`.

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::guard;

/// The most body bytes the reader takes in one message: far above what
/// the tests send, far below what a desynchronised stream would announce.
pub const MAX_BODY: u64 = 1 << 20;

/// Reads one message: the length, the header (a JSON object), then exactly
/// as many body bytes as its `size` says (0 when absent). Panics on
/// anything else, which is what a stream out of step looks like.
pub async fn read_message(raw: &mut TcpStream) -> (Value, Vec<u8>) {
    let mut len = [0u8; 4];
    guard("a header's length", raw.read_exact(&mut len))
        .await
        .expect("a message, not the end of the stream");
    let len = u32::from_be_bytes(len);
    assert!(len <= 64 * 1024, "a header of {len} bytes: out of step");
    let mut json = vec![0u8; len as usize];
    guard("a header", raw.read_exact(&mut json)).await.unwrap();
    let header: Value = serde_json::from_slice(&json)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&json)));
    assert!(header.is_object(), "not an object: {header}");
    let size = match header.get("size") {
        None => 0,
        Some(size) => size.as_u64().expect("`size` is a whole number"),
    };
    assert!(size <= MAX_BODY, "a body of {size} bytes: out of step");
    let mut body = vec![0u8; size as usize];
    guard("a body", raw.read_exact(&mut body)).await.unwrap();
    (header, body)
}

/// One message's bytes: `header` (with `size` set when there is a body)
/// and the body.
pub fn frame(header: &Value, body: &[u8]) -> Vec<u8> {
    let mut header = header.clone();
    if !body.is_empty() {
        header["size"] = body.len().into();
    }
    let json = header.to_string();
    let mut bytes = (json.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// Connects to exec or files and answers the challenge with `key`:
/// the stream and the verdict, read by the generic reader.
pub async fn handshake(addr: SocketAddr, key: &[u8]) -> (TcpStream, Value) {
    let mut raw = TcpStream::connect(addr).await.unwrap();
    let mut challenge = [0u8; 32];
    guard("the challenge", raw.read_exact(&mut challenge))
        .await
        .unwrap();
    raw.write_all(&switchboard::auth::respond(key, &challenge))
        .await
        .unwrap();
    let (verdict, body) = read_message(&mut raw).await;
    assert!(body.is_empty(), "{verdict}");
    (raw, verdict)
}
