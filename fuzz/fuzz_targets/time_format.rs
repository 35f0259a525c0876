//! The time service (`wire::time`): one datagram in, one reply out, at any
//! moment chrono can represent, in any UTC offset, with any reply cap.
//! A datagram arrives whole, so there is no split to compare; instead the
//! validator must accept exactly what chrono can format, a validated format
//! must render as chrono renders it (or be refused for the cap, never cut),
//! and no reply may exceed its bound.
#![no_main]

use std::fmt::Write as _;

use arbitrary::Arbitrary;
use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, FixedOffset};
use libfuzzer_sys::fuzz_target;
use switchboard::wire::time::{MAX_FORMAT_LEN, TimeFormatError, decode_request, render, reply};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    secs: i64,
    nanos: u32,
    offset: i32,
    max_reply: u16,
    datagram: &'a [u8],
}

/// `error: ` and a refusal that names at most the whole pattern.
const MAX_ERROR: usize = 80 + MAX_FORMAT_LEN;

fuzz_target!(|input: Input<'_>| {
    let Some(utc) = DateTime::from_timestamp(input.secs, input.nanos % 1_000_000_000) else {
        return;
    };
    let Some(offset) = FixedOffset::east_opt(input.offset % 86_400) else {
        return;
    };
    let now = utc.with_timezone(&offset);
    let max = usize::from(input.max_reply);

    let out = reply(&now, input.datagram, max);
    assert!(
        out.len() <= max || (out.starts_with(b"error: ") && out.len() <= MAX_ERROR),
        "reply of {} bytes for cap {max}",
        out.len()
    );

    match decode_request(input.datagram) {
        Ok(format) => {
            let pattern = format.as_str();
            assert!(!StrftimeItems::new(pattern).any(|i| matches!(i, Item::Error)));
            let mut full = String::new();
            let written = write!(full, "{}", now.format(pattern));
            match render(&now, format, max) {
                Ok(text) => {
                    assert!(text.len() <= max);
                    assert_eq!(text, full, "capped rendering differs from chrono's");
                    assert_eq!(out, text.as_bytes());
                }
                Err(TimeFormatError::ReplyTooLong { max: said }) => {
                    assert_eq!(said, max);
                    assert!(written.is_err() || full.len() > max, "refused what fits");
                }
                Err(TimeFormatError::ParseOnly(spec)) => {
                    assert!(
                        written.is_err(),
                        "called `{spec}` parse-only, but chrono formats {pattern:?}"
                    );
                    assert!(
                        pattern.contains(spec.as_str()),
                        "`{spec}` is not in {pattern:?}"
                    );
                }
                Err(other) => panic!("formatting judged the pattern, not the reply: {other}"),
            }
        }
        Err(TimeFormatError::LonePercent | TimeFormatError::BadSpecifier(_)) => {
            let pattern = std::str::from_utf8(input.datagram).expect("checked as UTF-8 first");
            assert!(
                StrftimeItems::new(pattern).any(|i| matches!(i, Item::Error)),
                "refused a pattern chrono accepts: {pattern:?}"
            );
        }
        Err(TimeFormatError::NotUtf8) => {
            assert!(std::str::from_utf8(input.datagram).is_err());
        }
        Err(TimeFormatError::TooLong { len, max }) => {
            assert!(len == input.datagram.len() && len > max);
        }
        Err(TimeFormatError::ReplyTooLong { .. } | TimeFormatError::ParseOnly(_)) => {
            panic!("decoding never judges the reply, nor what only formatting finds")
        }
    }
});
