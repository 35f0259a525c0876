//! The HMAC handshake and the message protocol of `exec` and `files`
//! (docs/PROTOCOL.md): `u32` big-endian header length, that many bytes of
//! JSON object, then `size` body bytes. The declared lengths are checked
//! against the bytes held and against the protocol's 64 KiB header cap;
//! nothing is allocated by them.

use serde_json::Value;

use super::{Body, Item, Items, Kind, MAX_HEADER_SHOWN, Prefix, body};
use crate::capture::Dir;
use crate::wire::message::{MAX_HEADER_LEN, PREFIX_LEN};

/// The challenge (from the server) or the answer (from the client) at
/// `at`; returns where the next item starts.
pub(super) fn handshake(
    dir: Dir,
    bytes: &[u8],
    at: usize,
    answer_len: usize,
    items: &mut Items,
) -> usize {
    let (len, kind, label) = match dir {
        Dir::Out => (
            super::CHALLENGE_LEN,
            Kind::Challenge,
            "HMAC challenge (random bytes)",
        ),
        Dir::In => (
            answer_len,
            Kind::Answer,
            match answer_len {
                16 => "HMAC answer (HMAC-MD5 of the challenge)",
                _ => "HMAC answer (HMAC-SHA256 of the challenge)",
            },
        ),
    };
    let mut item = Item::new(kind, label, at, len as u64);
    item.body = Some(body(bytes, at, len as u64));
    if dir == Dir::In {
        item = item.note("a MAC under the key; the key itself never crosses the wire");
    }
    items.push(dir, item);
    at.saturating_add(len).min(bytes.len())
}

/// Every message from `at` on; returns where decoding stopped (the end,
/// or the first byte that is not a message).
pub(super) fn read_all(dir: Dir, bytes: &[u8], mut at: usize, items: &mut Items) -> usize {
    let mut first = true;
    while at < bytes.len() && !items.is_full() {
        let (item, next) = one(bytes, at, dir == Dir::Out && first);
        items.push(dir, item);
        match next {
            Some(next) => at = next,
            None => return bytes.len(),
        }
        first = false;
    }
    at
}

/// The message at `at` and where the next one starts, or an undecodable
/// item covering the rest and `None`.
fn one(bytes: &[u8], at: usize, verdict: bool) -> (Item, Option<usize>) {
    match message(bytes, at, verdict) {
        Ok((item, next)) => (item, Some(next)),
        Err(item) => (*item, None),
    }
}

fn message(bytes: &[u8], at: usize, verdict: bool) -> Result<(Item, usize), Box<Item>> {
    let rest = &bytes[at..];
    let undecodable = |why: String| {
        let mut item = Item::new(Kind::Undecodable, "not a message", at, rest.len() as u64);
        item.body = Some(body(bytes, at, rest.len() as u64));
        Box::new(item.note(why))
    };
    let Some(prefix) = rest.get(..PREFIX_LEN) else {
        let mut item = Item::new(Kind::Message, "message (cut short)", at, PREFIX_LEN as u64)
            .note("the capture ends inside the 4-byte length prefix");
        item.body = Some(body(bytes, at, rest.len() as u64));
        return Ok((item, bytes.len()));
    };
    let mut word = [0u8; PREFIX_LEN];
    word.copy_from_slice(prefix);
    let header_len = u32::from_be_bytes(word) as usize;
    let prefix = Prefix {
        hex: crate::wire::hex(prefix),
        value: i64::from(u32::from_be_bytes(word)),
        means: "header bytes, u32 big-endian",
    };
    if header_len > MAX_HEADER_LEN {
        return Err(undecodable(format!(
            "length prefix {header_len} ({}) is over the protocol's {MAX_HEADER_LEN}-byte \
             header limit: the service closes the connection here",
            prefix.hex
        )));
    }
    let header_at = at + PREFIX_LEN;
    let held = bytes.len() - header_at;
    if held < header_len {
        let mut item = Item::new(
            Kind::Message,
            "message (cut short)",
            at,
            (PREFIX_LEN + header_len) as u64,
        )
        .note(format!(
            "the capture holds {held} of the header's {header_len} bytes"
        ));
        item.prefix = Some(prefix);
        item.body = Some(body(bytes, header_at, held as u64));
        return Ok((item, bytes.len()));
    }
    let json = &bytes[header_at..header_at + header_len];
    let header: Value = match serde_json::from_slice(json) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Err(undecodable("the header is JSON but not an object".into())),
        Err(e) => return Err(undecodable(format!("the header is not JSON: {e}"))),
    };
    let size = match header.get("size") {
        None => 0,
        Some(v) => v.as_u64().ok_or_else(|| {
            undecodable("header field \"size\" is not a whole number of bytes".into())
        })?,
    };
    let body_at = header_at + header_len;
    let total = (PREFIX_LEN + header_len) as u64 + size;
    let mut item = Item::new(Kind::Message, label(&header, verdict), at, total);
    item.prefix = Some(prefix);
    if header_len <= MAX_HEADER_SHOWN {
        item.header = Some(header);
    } else {
        item = item.note(format!(
            "a {header_len}-byte header: shown in the transcript, not here"
        ));
    }
    if size > 0 {
        let b: Body = body(bytes, body_at, size);
        let next = body_at + usize::try_from(b.held).unwrap_or(usize::MAX);
        item.body = Some(b);
        return Ok((item, next.min(bytes.len())));
    }
    Ok((item, body_at))
}

/// What a header is, in a few words: `run request`, `stdout`, `refused`.
fn label(header: &Value, verdict: bool) -> String {
    let text = |key: &str| {
        header
            .get(key)
            .and_then(Value::as_str)
            .map(|s| s.chars().take(32).collect::<String>())
    };
    if let Some(op) = text("op") {
        return format!("{op} request");
    }
    if let Some(kind) = text("type") {
        return kind;
    }
    match (header.get("ok").and_then(Value::as_bool), verdict) {
        (Some(true), true) => "handshake verdict: ok".into(),
        (Some(false), true) => "handshake verdict: refused".into(),
        (Some(true), false) => "ok reply".into(),
        (Some(false), false) => "refused".into(),
        (None, _) => "message".into(),
    }
}

/// Bytes in a `struct.pack('i')` length.
const STRUCT_LEN: usize = 4;

/// The server's side of exec's `struct` framing from `at` on: each output
/// after its length, an `i32` in the server's byte order (little-endian on
/// the machines we run on); returns where decoding stopped.
pub(super) fn read_struct(bytes: &[u8], mut at: usize, items: &mut Items) -> usize {
    while at < bytes.len() && !items.is_full() {
        let Some(raw) = bytes.get(at..at + STRUCT_LEN) else {
            let mut item = Item::new(Kind::Message, "length (cut short)", at, STRUCT_LEN as u64)
                .note("the capture ends inside the 4-byte length");
            item.body = Some(body(bytes, at, (bytes.len() - at) as u64));
            items.push(Dir::Out, item);
            return bytes.len();
        };
        let mut word = [0u8; STRUCT_LEN];
        word.copy_from_slice(raw);
        let value = i32::from_le_bytes(word);
        let prefix = Prefix {
            hex: crate::wire::hex(raw),
            value: i64::from(value),
            means: "output bytes, struct.pack('i'): i32 little-endian",
        };
        let Ok(len) = u64::try_from(value) else {
            let rest = (bytes.len() - at) as u64;
            let mut item = Item::new(Kind::Undecodable, "not a length", at, rest)
                .note(format!("a negative length {value}: not the struct framing"));
            item.prefix = Some(prefix);
            item.body = Some(body(bytes, at, rest));
            items.push(Dir::Out, item);
            return bytes.len();
        };
        let mut item = Item::new(Kind::Message, "output", at, STRUCT_LEN as u64 + len);
        item.prefix = Some(prefix);
        let b = body(bytes, at + STRUCT_LEN, len);
        let next = at + STRUCT_LEN + usize::try_from(b.held).unwrap_or(usize::MAX);
        item.body = Some(b);
        items.push(Dir::Out, item);
        at = next.min(bytes.len());
    }
    at
}
