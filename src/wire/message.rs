//! The message protocol of `exec` and `files`: the tutorials' "header dict"
//! form, made exact.
//!
//! ```text
//! +----------------+---------------------------+------------------+
//! | H: u32, BE     | H bytes: UTF-8 JSON object | S bytes: body    |
//! +----------------+---------------------------+------------------+
//! ```
//!
//! `S` is the header's `"size"` field (0 when absent). `H` is checked against
//! a cap before a byte of the header is buffered, so a peer cannot make us
//! allocate on its say-so; the body is never part of a decoded frame; the
//! caller streams it (`AsyncReadExt::take(size)`).
//!
//! Example: `{"op":"list"}` with no body is
//! `00 00 00 0d 7b 22 6f 70 22 3a 22 6c 69 73 74 22 7d`.

use bytes::{Buf, BytesMut};
use serde_json::{Map, Value};

/// The largest header accepted: 64 KiB, as DESIGN.md fixes.
pub const MAX_HEADER_LEN: usize = 64 * 1024;
/// Bytes of the length prefix.
pub const PREFIX_LEN: usize = 4;

/// Why bytes are not a valid message header.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("header of {len} bytes exceeds the {max}-byte limit")]
    HeaderTooLarge { len: usize, max: usize },
    #[error("header is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("header is JSON but not an object")]
    NotAnObject,
    #[error("header field \"size\" must be a whole number of bytes, 0 or more")]
    BadSize,
}

/// A decoded header: its JSON fields and the size of the body that follows.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub fields: Map<String, Value>,
    pub size: u64,
}

impl Header {
    /// Parses the JSON part of a header (without the length prefix).
    ///
    /// # Errors
    /// Not JSON, not an object, or a `size` that is not a non-negative integer.
    pub fn parse(json: &[u8]) -> Result<Header, WireError> {
        let value: Value = serde_json::from_slice(json).map_err(WireError::NotJson)?;
        let Value::Object(fields) = value else {
            return Err(WireError::NotAnObject);
        };
        let size = match fields.get("size") {
            None => 0,
            Some(v) => v.as_u64().ok_or(WireError::BadSize)?,
        };
        Ok(Header { fields, size })
    }

    /// A string field, if present and a string.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }
}

/// Checks a length prefix against `max` before anything is allocated for it.
///
/// # Errors
/// [`WireError::HeaderTooLarge`].
pub fn header_len(prefix: [u8; PREFIX_LEN], max: usize) -> Result<usize, WireError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(WireError::HeaderTooLarge { len, max });
    }
    Ok(len)
}

/// Decodes one header from the front of `src`: `Ok(None)` until it is all
/// there (the body is not waited for: it is the caller's to stream).
///
/// # Errors
/// As [`header_len`] and [`Header::parse`]; the buffer is then left as is.
pub fn decode_header(src: &mut BytesMut, max: usize) -> Result<Option<Header>, WireError> {
    if src.len() < PREFIX_LEN {
        return Ok(None);
    }
    let prefix: [u8; PREFIX_LEN] = src[..PREFIX_LEN].try_into().expect("4 bytes");
    let len = header_len(prefix, max)?;
    if src.len() < PREFIX_LEN + len {
        src.reserve(PREFIX_LEN + len - src.len());
        return Ok(None);
    }
    let header = Header::parse(&src[PREFIX_LEN..PREFIX_LEN + len])?;
    src.advance(PREFIX_LEN + len);
    Ok(Some(header))
}

/// Encodes a header: the length prefix and the JSON object. The body, if
/// any, follows it on the wire, and `fields["size"]` must give its length.
///
/// # Errors
/// [`WireError::HeaderTooLarge`] if the JSON exceeds [`MAX_HEADER_LEN`].
pub fn encode_header(fields: &Map<String, Value>) -> Result<Vec<u8>, WireError> {
    let json = serde_json::to_vec(fields).expect("a JSON map always serializes");
    if json.len() > MAX_HEADER_LEN {
        return Err(WireError::HeaderTooLarge {
            len: json.len(),
            max: MAX_HEADER_LEN,
        });
    }
    let mut out = Vec::with_capacity(PREFIX_LEN + json.len());
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    Ok(out)
}

/// Builds a header map from a `json!({...})` object literal.
///
/// # Panics
/// If `value` is not an object: callers pass literals.
pub fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("a message header must be a JSON object, got {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frame(value: Value) -> Vec<u8> {
        encode_header(&fields(value)).unwrap()
    }

    #[test]
    fn the_documented_example_is_exact() {
        let bytes = frame(json!({"op": "list"}));
        assert_eq!(
            bytes,
            [
                0, 0, 0, 0x0d, b'{', b'"', b'o', b'p', b'"', b':', b'"', b'l', b'i', b's', b't',
                b'"', b'}'
            ]
        );
    }

    #[test]
    fn round_trips_with_size() {
        let mut buf = BytesMut::from(&frame(json!({"op": "put", "name": "a.jpg", "size": 5}))[..]);
        buf.extend_from_slice(b"hello");
        let h = decode_header(&mut buf, MAX_HEADER_LEN).unwrap().unwrap();
        assert_eq!(h.size, 5);
        assert_eq!(h.str("name"), Some("a.jpg"));
        assert_eq!(&buf[..], b"hello", "the body is left for the caller");
    }

    #[test]
    fn every_prefix_is_incomplete_not_an_error() {
        let bytes = frame(json!({"op": "run", "argv": ["ls", "-l"]}));
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert!(
                decode_header(&mut buf, MAX_HEADER_LEN).unwrap().is_none(),
                "cut at {cut}"
            );
            assert_eq!(buf.len(), cut, "nothing consumed at {cut}");
        }
        let mut buf = BytesMut::from(&bytes[..]);
        assert!(decode_header(&mut buf, MAX_HEADER_LEN).unwrap().is_some());
    }

    #[test]
    fn two_headers_in_one_buffer() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&frame(json!({"n": 1})));
        buf.extend_from_slice(&frame(json!({"n": 2})));
        let a = decode_header(&mut buf, MAX_HEADER_LEN).unwrap().unwrap();
        let b = decode_header(&mut buf, MAX_HEADER_LEN).unwrap().unwrap();
        assert_eq!(
            (a.fields["n"].as_u64(), b.fields["n"].as_u64()),
            (Some(1), Some(2))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn an_oversized_length_is_refused_before_buffering() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        let cap_before = buf.capacity();
        let err = decode_header(&mut buf, MAX_HEADER_LEN).unwrap_err();
        assert!(matches!(
            err,
            WireError::HeaderTooLarge {
                len: 0xffff_ffff,
                max: MAX_HEADER_LEN
            }
        ));
        assert_eq!(
            buf.capacity(),
            cap_before,
            "nothing reserved on the peer's say-so"
        );
        assert!(header_len([0, 1, 0, 0], MAX_HEADER_LEN).is_ok());
        assert!(header_len([0, 1, 0, 1], MAX_HEADER_LEN).is_err());
    }

    #[test]
    fn malformed_headers_are_errors() {
        let raw = |json: &[u8]| {
            let mut v = (json.len() as u32).to_be_bytes().to_vec();
            v.extend_from_slice(json);
            decode_header(&mut BytesMut::from(&v[..]), MAX_HEADER_LEN)
        };
        assert!(matches!(raw(b"not json"), Err(WireError::NotJson(_))));
        assert!(matches!(raw(b"[1,2]"), Err(WireError::NotAnObject)));
        assert!(matches!(raw(b"\"str\""), Err(WireError::NotAnObject)));
        assert!(matches!(raw(b"{\"size\":-1}"), Err(WireError::BadSize)));
        assert!(matches!(raw(b"{\"size\":1.5}"), Err(WireError::BadSize)));
        assert!(matches!(raw(b"{\"size\":\"9\"}"), Err(WireError::BadSize)));
        assert!(matches!(raw(b"\xff\xfe"), Err(WireError::NotJson(_))));
        assert!(matches!(raw(b""), Err(WireError::NotJson(_))));
        assert_eq!(raw(b"{}").unwrap().unwrap().size, 0);
    }

    #[test]
    fn encoding_refuses_a_header_over_the_cap() {
        let big = "x".repeat(MAX_HEADER_LEN);
        assert!(matches!(
            encode_header(&fields(json!({ "line": big }))),
            Err(WireError::HeaderTooLarge { .. })
        ));
    }
}
