//! The exec/files message header decoder (`wire::message::decode_header`),
//! driven as `MessageConn` drives it: decode, read more only when it says
//! `None`, skip each header's body. However the stream is cut into reads,
//! the headers and the final verdict must equal a whole-stream oracle's, an
//! incomplete or refused header must leave the buffer untouched, and every
//! header must survive encode then decode.
#![no_main]

use bytes::{Buf, BytesMut};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchboard::wire::message::{
    Header, MAX_HEADER_LEN, PREFIX_LEN, decode_header, encode_header, header_len,
};
use switchboard_fuzz::{Chunked, Reads};

/// How a stream ended.
#[derive(Debug, PartialEq)]
enum End {
    /// Between messages.
    Clean,
    /// Inside a header.
    Truncated,
    /// Inside a body the last header announced.
    BodyTruncated,
    Refused(String),
}

/// Decodes `reads` one at a time as `MessageConn::read_header` does.
fn feed(reads: Vec<&[u8]>, max: usize) -> (Vec<Header>, End) {
    let mut stream = Reads::new(reads);
    let mut buf = BytesMut::new();
    let mut headers = Vec::new();
    loop {
        let before = buf.clone();
        match decode_header(&mut buf, max) {
            Ok(Some(header)) => {
                // The body is the caller's: buffered bytes first, then reads.
                let mut body = header.size;
                let buffered = body.min(buf.len() as u64);
                buf.advance(buffered as usize);
                body -= buffered;
                headers.push(header);
                while body > 0 {
                    let room = usize::try_from(body).unwrap_or(usize::MAX);
                    let Some(got) = stream.read(room) else {
                        return (headers, End::BodyTruncated);
                    };
                    body -= got.len() as u64;
                }
            }
            Ok(None) => {
                assert_eq!(buf, before, "an incomplete header consumed bytes");
                // MessageConn::fill never buffers past one maximal header.
                let room = (PREFIX_LEN + MAX_HEADER_LEN).saturating_sub(buf.len());
                match stream.read(room) {
                    Some(got) => buf.extend_from_slice(got),
                    None if buf.is_empty() => return (headers, End::Clean),
                    None => return (headers, End::Truncated),
                }
            }
            Err(e) => {
                assert_eq!(buf, before, "a refused header consumed bytes");
                return (headers, End::Refused(e.to_string()));
            }
        }
    }
}

/// The same stream read as a whole, by the format's definition.
fn oracle(mut rest: &[u8], max: usize) -> (Vec<Header>, End) {
    let mut headers = Vec::new();
    loop {
        if rest.is_empty() {
            return (headers, End::Clean);
        }
        if rest.len() < PREFIX_LEN {
            return (headers, End::Truncated);
        }
        let prefix: [u8; PREFIX_LEN] = rest[..PREFIX_LEN].try_into().expect("4 bytes");
        let len = match header_len(prefix, max) {
            Ok(len) => len,
            Err(e) => return (headers, End::Refused(e.to_string())),
        };
        let Some(json) = rest.get(PREFIX_LEN..PREFIX_LEN + len) else {
            return (headers, End::Truncated);
        };
        let header = match Header::parse(json) {
            Ok(h) => h,
            Err(e) => return (headers, End::Refused(e.to_string())),
        };
        rest = &rest[PREFIX_LEN + len..];
        let size = header.size;
        headers.push(header);
        match usize::try_from(size).ok().filter(|&s| s <= rest.len()) {
            Some(s) => rest = &rest[s..],
            None => return (headers, End::BodyTruncated),
        }
    }
}

/// Floats may not print and parse back bit for bit (serde_json's business).
fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}

fuzz_target!(|input: Chunked<'_>| {
    // The real cap, and a small one so refusals by size are reached too.
    for max in [MAX_HEADER_LEN, 24] {
        let want = oracle(input.data, max);
        assert_eq!(feed(vec![input.data], max), want, "whole feed, cap {max}");
        assert_eq!(feed(input.reads(), max), want, "split feed, cap {max}");
        for header in &want.0 {
            if has_float(&serde_json::Value::Object(header.fields.clone())) {
                continue;
            }
            let Ok(bytes) = encode_header(&header.fields) else {
                continue;
            };
            let again = decode_header(&mut BytesMut::from(&bytes[..]), MAX_HEADER_LEN)
                .expect("an encoded header decodes")
                .expect("an encoded header is complete");
            assert_eq!(&again, header, "encode then decode changed the header");
        }
    }
});
