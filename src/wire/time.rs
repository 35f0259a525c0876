//! The time service's format: one datagram in (a strftime pattern), one out.
//!
//! The pattern is validated before anything is formatted, because chrono's
//! `to_string()` panics on a bad pattern such as a lone `%`. Rendering writes
//! into a capped buffer, so no pattern can make a reply larger than the cap.
//! The clock is not read here: callers pass `now`.

use std::fmt::{self, Write as _};

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, TimeZone};

/// What the tutorial's server uses for an empty datagram.
pub const DEFAULT_FORMAT: &str = "%Y-%m-%d-%X";

/// Longest pattern accepted. Generous for a human; it keeps validation and
/// rendering cheap for a peer that sends a 64 KiB datagram.
pub const MAX_FORMAT_LEN: usize = 256;

/// Why a pattern was refused. Sent to the peer as `error: <this>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeFormatError {
    #[error("format is not UTF-8")]
    NotUtf8,
    #[error("format too long ({len} bytes, max {max})")]
    TooLong { len: usize, max: usize },
    #[error("lone `%` at the end of the format")]
    LonePercent,
    #[error("unsupported specifier `{0}` (use `%%` for a literal `%`)")]
    BadSpecifier(String),
    #[error("specifier `{0}` can only be used to read a time, not to format one")]
    ParseOnly(String),
    #[error("reply would exceed {max} bytes")]
    ReplyTooLong { max: usize },
}

/// A pattern that passed validation; borrowing the datagram it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format<'a>(&'a str);

impl<'a> Format<'a> {
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// Turns a request datagram into a validated pattern (empty means the default).
///
/// # Errors
/// Any [`TimeFormatError`] but `ReplyTooLong` and `ParseOnly`, which only
/// formatting finds.
pub fn decode_request(datagram: &[u8]) -> Result<Format<'_>, TimeFormatError> {
    if datagram.is_empty() {
        return Ok(Format(DEFAULT_FORMAT));
    }
    if datagram.len() > MAX_FORMAT_LEN {
        return Err(TimeFormatError::TooLong {
            len: datagram.len(),
            max: MAX_FORMAT_LEN,
        });
    }
    let pattern = std::str::from_utf8(datagram).map_err(|_| TimeFormatError::NotUtf8)?;
    validate(pattern)?;
    Ok(Format(pattern))
}

fn validate(pattern: &str) -> Result<(), TimeFormatError> {
    let refused = |p: &str| StrftimeItems::new(p).any(|item| matches!(item, Item::Error));
    if refused(pattern) {
        // Find the first specifier chrono refuses, to name it in the error.
        for spec in specifiers(pattern) {
            if spec == "%" {
                return Err(TimeFormatError::LonePercent);
            }
            if refused(spec) {
                return Err(TimeFormatError::BadSpecifier(spec.to_owned()));
            }
        }
        // chrono refused the whole but no single specifier: report it plainly.
        return Err(TimeFormatError::BadSpecifier(pattern.to_owned()));
    }
    Ok(())
}

/// The `%` specifiers of a pattern, in order, flags included (`%-d`,
/// `%#z`); a lone `%` at the end comes out as `%`.
fn specifiers(pattern: &str) -> impl Iterator<Item = &str> {
    let mut rest = pattern;
    std::iter::from_fn(move || {
        let at = rest.find('%')?;
        let spec = &rest[at..];
        let end = spec
            .char_indices()
            .skip(1)
            .find(|&(_, c)| c.is_ascii_alphabetic() || c == '%' || !c.is_ascii())
            .map_or(spec.len(), |(i, c)| i + c.len_utf8());
        rest = &spec[end..];
        Some(&spec[..end])
    })
}

/// A `fmt::Write` that refuses to grow past `max` bytes, and remembers
/// that it did (so that a formatting error is told apart from a full buffer).
struct Capped {
    buf: String,
    max: usize,
    full: bool,
}

impl fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.buf.len() + s.len() > self.max {
            self.full = true;
            return Err(fmt::Error);
        }
        self.buf.push_str(s);
        Ok(())
    }
}

/// Formats `now` with a validated pattern, failing rather than exceeding `max_reply`.
///
/// # Errors
/// [`TimeFormatError::ReplyTooLong`] when the result would not fit;
/// [`TimeFormatError::ParseOnly`] for a specifier chrono accepts but can
/// only parse with (`%#z`, a lenient offset): formatting one fails.
pub fn render<Tz: TimeZone>(
    now: &DateTime<Tz>,
    format: Format<'_>,
    max_reply: usize,
) -> Result<String, TimeFormatError>
where
    Tz::Offset: fmt::Display,
{
    let mut out = Capped {
        buf: String::with_capacity(format.0.len().min(max_reply) + 16),
        max: max_reply,
        full: false,
    };
    if write!(out, "{}", now.format(format.0)).is_ok() {
        return Ok(out.buf);
    }
    if out.full {
        return Err(TimeFormatError::ReplyTooLong { max: max_reply });
    }
    // Not for lack of room: name the first specifier that cannot be
    // formatted on its own (the error path only, so the usual reply pays
    // nothing for it).
    let mut probe = Capped {
        buf: String::new(),
        max: max_reply,
        full: false,
    };
    let spec = specifiers(format.0)
        .find(|spec| {
            probe.buf.clear();
            write!(probe, "{}", now.format(spec)).is_err() && !probe.full
        })
        .unwrap_or(format.0);
    Err(TimeFormatError::ParseOnly(spec.to_owned()))
}

/// The whole service in one pure function: the reply datagram for a request.
pub fn reply<Tz: TimeZone>(now: &DateTime<Tz>, datagram: &[u8], max_reply: usize) -> Vec<u8>
where
    Tz::Offset: fmt::Display,
{
    match decode_request(datagram).and_then(|format| render(now, format, max_reply)) {
        Ok(text) => text.into_bytes(),
        Err(e) => format!("error: {e}").into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 9, 7, 5, 3).unwrap()
    }

    fn text(datagram: &[u8]) -> String {
        String::from_utf8(reply(&at(), datagram, 512)).unwrap()
    }

    #[test]
    fn empty_datagram_uses_the_tutorial_default() {
        assert_eq!(text(b""), "2024-03-09-07:05:03");
    }

    #[test]
    fn common_patterns_format_like_python() {
        assert_eq!(text(b"%H:%M:%S"), "07:05:03");
        assert_eq!(text(b"%Y/%m/%d %a %b %j"), "2024/03/09 Sat Mar 069");
        assert_eq!(text(b"100%% at %I %p"), "100% at 07 AM");
        assert_eq!(text(b"plain text"), "plain text");
        assert_eq!(text("时间 %H".as_bytes()), "时间 07");
    }

    #[test]
    fn lone_percent_is_an_error_not_a_panic() {
        assert_eq!(text(b"%"), "error: lone `%` at the end of the format");
        assert_eq!(text(b"%H %"), "error: lone `%` at the end of the format");
    }

    #[test]
    fn unknown_specifier_is_named() {
        assert_eq!(
            text(b"%H %Q"),
            "error: unsupported specifier `%Q` (use `%%` for a literal `%`)"
        );
        assert!(text(b"%\xc3\xa9").starts_with("error: unsupported specifier"));
    }

    #[test]
    fn non_utf8_and_oversized_formats_are_refused() {
        assert_eq!(text(b"\xff%H"), "error: format is not UTF-8");
        let long = vec![b'a'; MAX_FORMAT_LEN + 1];
        assert_eq!(text(&long), "error: format too long (257 bytes, max 256)");
    }

    #[test]
    fn parse_only_specifiers_are_named_not_called_too_long() {
        assert_eq!(
            text(b"%#z"),
            "error: specifier `%#z` can only be used to read a time, not to format one"
        );
        assert_eq!(
            text(b"%H:%M %#z"),
            "error: specifier `%#z` can only be used to read a time, not to format one"
        );
        // The formattable offsets still work.
        assert_eq!(text(b"%z %:z"), "+0000 +00:00");
    }

    #[test]
    fn reply_is_capped() {
        let pattern = "%c".repeat(100);
        let out = reply(&at(), pattern.as_bytes(), 64);
        assert_eq!(out, b"error: reply would exceed 64 bytes");
        let fits = reply(&at(), b"%Y", 4);
        assert_eq!(fits, b"2024");
    }

    #[test]
    fn every_printable_two_byte_pattern_is_safe() {
        // A cheap exhaustive check: nothing panics and everything is bounded.
        for a in 0x20u8..0x7f {
            for b in [b"%".as_slice(), &[a], &[b'%', a], &[b'%', b'-', a]] {
                let out = reply(&at(), b, 64);
                assert!(out.len() <= 64 || out.starts_with(b"error: "));
            }
        }
    }
}

/// Property tests: no datagram panics or makes an unbounded reply, and the
/// validator accepts exactly what chrono can format.
#[cfg(test)]
mod props {
    use super::*;
    use chrono::{FixedOffset, Utc};
    use proptest::prelude::*;

    /// Patterns made of specifiers (known, unknown, padded, cut short) and text.
    fn pattern() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "%[a-zA-Z%+.:#0-9_-]{0,3}",
            "[a-z :/-]{0,4}",
            Just("%".to_owned()),
            ".{0,2}",
        ];
        prop::collection::vec(piece, 0..12).prop_map(|p| p.concat())
    }

    /// Longest error reply: `error: ` and a refusal naming at most the whole pattern.
    const MAX_ERROR: usize = 80 + MAX_FORMAT_LEN;

    fn moment() -> impl Strategy<Value = DateTime<FixedOffset>> {
        (
            -62_000_000_000i64..250_000_000_000,
            0u32..2_000_000_000,
            -86_399i32..86_400,
        )
            .prop_map(|(secs, nanos, offset)| {
                let utc = DateTime::<Utc>::from_timestamp(secs, nanos % 1_000_000_000)
                    .expect("in chrono's range");
                utc.with_timezone(&FixedOffset::east_opt(offset).expect("within a day"))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_datagram_gets_a_bounded_reply(
            datagram in prop::collection::vec(any::<u8>(), 0..300),
            now in moment(),
            max in 1usize..600,
        ) {
            let out = reply(&now, &datagram, max);
            prop_assert!(out.len() <= max || (out.starts_with(b"error: ") && out.len() <= MAX_ERROR));
        }

        #[test]
        fn a_validated_pattern_formats_within_the_cap(
            p in pattern(),
            now in moment(),
            max in 1usize..600,
        ) {
            let Ok(format) = decode_request(p.as_bytes()) else {
                return Ok(());
            };
            // What chrono writes with no cap, unless its formatter fails.
            let mut full = String::new();
            let written = write!(full, "{}", now.format(format.as_str()));
            match render(&now, format, max) {
                Ok(text) => {
                    prop_assert!(text.len() <= max);
                    prop_assert_eq!(text, full);
                }
                // A specifier chrono parses but cannot format (`%#z`) is
                // named as such, whatever the cap.
                Err(TimeFormatError::ParseOnly(_)) => prop_assert!(written.is_err()),
                Err(e) => {
                    prop_assert_eq!(e, TimeFormatError::ReplyTooLong { max });
                    prop_assert!(written.is_err() || full.len() > max);
                }
            }
        }

        #[test]
        fn the_validator_accepts_exactly_what_chrono_can_format(p in pattern()) {
            prop_assume!(!p.is_empty() && p.len() <= MAX_FORMAT_LEN);
            let chrono_ok = !StrftimeItems::new(&p).any(|i| matches!(i, Item::Error));
            match decode_request(p.as_bytes()) {
                Ok(f) => prop_assert!(chrono_ok && f.as_str() == p),
                Err(TimeFormatError::LonePercent) => prop_assert!(!chrono_ok && p.contains('%')),
                Err(TimeFormatError::BadSpecifier(s)) => {
                    prop_assert!(!chrono_ok && p.contains(&s));
                }
                Err(e) => prop_assert!(false, "unexpected refusal {e}"),
            }
        }
    }
}
