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
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The largest header accepted: 64 KiB, as docs/PROTOCOL.md fixes.
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

/// Why a well-formed header is not a request of the service it reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("missing \"op\"")]
    MissingOp,
    #[error("unknown op `{op}` (use {known})")]
    UnknownOp { op: String, known: String },
    /// A field missing or of the wrong type, as the request type words it.
    #[error("{0}")]
    BadField(String),
}

/// One service's requests: a serde enum tagged by `"op"` (the
/// `wire::exec` and `wire::files` types).
pub trait Request: DeserializeOwned {
    /// Every op, in the order the unknown-op error lists them.
    const OPS: &'static [&'static str];
}

/// Deserializes a field, or fails with `why` (`"argv" must be a list of
/// strings`) instead of serde's wording, which does not name the field.
///
/// # Errors
/// `why`, whatever went wrong.
pub(crate) fn field_or<'de, D, T>(d: D, why: &'static str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map_err(|_| D::Error::custom(why))
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

    /// The header as a request of one service: `"op"` is checked first,
    /// so a missing or unknown op gets its own clear error.
    ///
    /// # Errors
    /// [`RequestError`].
    pub fn request<R: Request>(&self) -> Result<R, RequestError> {
        let Some(Value::String(op)) = self.fields.get("op") else {
            return Err(RequestError::MissingOp);
        };
        if !R::OPS.contains(&op.as_str()) {
            return Err(RequestError::UnknownOp {
                op: op.clone(),
                known: or_list(R::OPS),
            });
        }
        R::deserialize(&self.fields).map_err(|e| RequestError::BadField(e.to_string()))
    }

    /// The header as a typed message (a reply); fields it does not know,
    /// `size` among them, are ignored.
    ///
    /// # Errors
    /// A field missing or of the wrong type.
    pub fn message<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.fields)
    }
}

/// `put, get or list`.
fn or_list(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
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

/// Encodes a typed message as a header. `size` is set from `body_len`
/// alone (`None`: no `size` field), whatever `msg` holds, so that `size`
/// always announces exactly the body bytes that follow.
///
/// # Errors
/// [`WireError::HeaderTooLarge`]; [`WireError::NotAnObject`] for a type
/// that does not serialize to a JSON object.
pub fn encode<M: Serialize + ?Sized>(msg: &M, body_len: Option<u64>) -> Result<Vec<u8>, WireError> {
    let Value::Object(mut fields) = serde_json::to_value(msg).map_err(WireError::NotJson)? else {
        return Err(WireError::NotAnObject);
    };
    match body_len {
        Some(n) => fields.insert("size".into(), n.into()),
        None => fields.remove("size"),
    };
    encode_header(&fields)
}

/// What the unit tests of the typed messages (`wire::exec`,
/// `wire::files`) build their cases from.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{Header, encode};
    use serde::Serialize;
    use serde_json::Value;

    /// A header as a service reads it, from JSON.
    pub fn header(value: Value) -> Header {
        Header::parse(value.to_string().as_bytes()).unwrap()
    }

    /// The header `msg` encodes to, as JSON to compare with the text of
    /// docs/PROTOCOL.md (key order aside: keys go out sorted).
    pub fn json_of(msg: &impl Serialize, body_len: Option<u64>) -> Value {
        serde_json::from_slice(&encode(msg, body_len).unwrap()[4..]).unwrap()
    }

    /// A message as docs/PROTOCOL.md writes it.
    pub fn doc(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

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
        assert_eq!(h.fields["name"], "a.jpg");
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
    fn size_on_the_wire_is_the_body_length_alone() {
        // A message that carries a `size` of its own cannot announce a body.
        let msg = json!({"type": "stdout", "size": 99});
        let decoded = |bytes: Vec<u8>| {
            let h = decode_header(&mut BytesMut::from(&bytes[..]), MAX_HEADER_LEN).unwrap();
            h.unwrap()
        };
        let h = decoded(encode(&msg, Some(3)).unwrap());
        assert_eq!((h.size, &h.fields["size"]), (3, &json!(3)));
        let h = decoded(encode(&msg, None).unwrap());
        assert_eq!((h.size, h.fields.get("size")), (0, None));
        assert!(matches!(encode(&[1, 2], None), Err(WireError::NotAnObject)));
    }

    #[test]
    fn ops_are_listed_as_a_sentence() {
        assert_eq!(or_list(&["run", "shell"]), "run or shell");
        assert_eq!(or_list(&["put", "get", "list"]), "put, get or list");
        assert_eq!(or_list(&["only"]), "only");
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

/// Property tests: any header round-trips, and however a stream of
/// headers is cut into reads, the decoder yields the same headers.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// JSON without floats: a float may not survive a parse and print
    /// bit for bit, which is serde_json's business, not this codec's.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A header's fields, `size` included (it must be a `u64` to decode).
    fn header_fields() -> impl Strategy<Value = Map<String, Value>> {
        (
            prop::collection::btree_map("[a-z_]{1,8}", json_value(), 0..5),
            any::<u64>(),
        )
            .prop_map(|(fields, size)| {
                let mut map: Map<String, Value> = fields.into_iter().collect();
                map.insert("size".into(), size.into());
                map
            })
    }

    /// Decodes every header in `chunks` fed one read at a time, as
    /// `MessageConn` does: decode, and read more only on `None`. Returns the
    /// headers, and the error that stopped it (or how many bytes were left).
    fn feed(chunks: &[&[u8]], max: usize) -> (Vec<Header>, Result<usize, String>) {
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut next = chunks.iter();
        loop {
            let before = buf.len();
            match decode_header(&mut buf, max) {
                Ok(Some(h)) => got.push(h),
                Ok(None) => {
                    assert_eq!(buf.len(), before, "an incomplete header consumes nothing");
                    match next.next() {
                        Some(chunk) => buf.extend_from_slice(chunk),
                        None => return (got, Ok(buf.len())),
                    }
                }
                Err(e) => {
                    assert_eq!(buf.len(), before, "a bad header is left in the buffer");
                    return (got, Err(e.to_string()));
                }
            }
        }
    }

    fn cut<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        at.sort_unstable();
        at.push(bytes.len());
        let mut from = 0;
        at.into_iter()
            .map(|to| {
                let piece = &bytes[from..to];
                from = to;
                piece
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_header_round_trips(fields in header_fields()) {
            let bytes = encode_header(&fields).unwrap();
            let mut buf = BytesMut::from(&bytes[..]);
            let h = decode_header(&mut buf, MAX_HEADER_LEN).unwrap().unwrap();
            prop_assert_eq!(h.size, fields["size"].as_u64().unwrap());
            prop_assert_eq!(h.fields, fields);
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn a_stream_split_anywhere_decodes_as_a_whole(
            headers in prop::collection::vec(header_fields(), 1..4),
            tail in prop::collection::vec(any::<u8>(), 0..12),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut bytes = Vec::new();
            for fields in &headers {
                bytes.extend(encode_header(fields).unwrap());
            }
            // Whatever follows (a partial or garbage frame) must give the
            // same verdict too.
            bytes.extend(&tail);
            let whole = feed(&[&bytes], MAX_HEADER_LEN);
            let split = feed(&cut(&bytes, &cuts), MAX_HEADER_LEN);
            prop_assert_eq!(&split, &whole);
            prop_assert!(whole.0.len() >= headers.len());
            for (h, fields) in whole.0.iter().zip(&headers) {
                prop_assert_eq!(&h.fields, fields);
            }
        }

        #[test]
        fn garbage_split_anywhere_decodes_as_a_whole(
            // Small length prefixes, each followed by JSON-ish bytes that
            // may or may not be a header, or as long as it says.
            frames in prop::collection::vec((0u32..24, r#"[{}\[\]":,0-9a-z -]{0,24}"#), 0..4),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            max in 0usize..32,
        ) {
            let mut bytes = Vec::new();
            for (len, text) in &frames {
                bytes.extend(len.to_be_bytes());
                bytes.extend(text.as_bytes());
            }
            let whole = feed(&[&bytes], max);
            prop_assert_eq!(feed(&cut(&bytes, &cuts), max), whole);
        }
    }
}
