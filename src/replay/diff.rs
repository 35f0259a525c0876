//! The recorded server side against the new replies: equal, or where they
//! first part, with an excerpt of both around that byte.
//!
//! A TCP stream is compared as one byte string (segment boundaries are the
//! network's, not the server's); UDP datagram by datagram, since each is a
//! message of its own.

use serde::Serialize;

/// Bytes shown before the first difference.
const BEFORE: usize = 16;
/// Bytes shown from the first difference on.
const AFTER: usize = 32;

/// The comparison's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub equal: bool,
    pub recorded_bytes: u64,
    pub replied_bytes: u64,
    /// UDP: datagrams recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_datagrams: Option<usize>,
    /// UDP: datagrams replied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replied_datagrams: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_difference: Option<Difference>,
}

/// Where the two sides first differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// UDP: the datagram (from 0) that differs or is missing on one side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datagram: Option<usize>,
    /// The byte offset (within the datagram, for UDP).
    pub offset: u64,
    pub recorded: Excerpt,
    pub replied: Excerpt,
}

/// A window of bytes around the difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Excerpt {
    /// Offset of the excerpt's first byte.
    pub start: u64,
    pub hex: String,
    /// Printable ASCII as is, anything else as `.`.
    pub text: String,
}

fn excerpt(bytes: &[u8], at: usize) -> Excerpt {
    let start = at.saturating_sub(BEFORE).min(bytes.len());
    let end = at.saturating_add(AFTER).min(bytes.len());
    let window = &bytes[start..end];
    Excerpt {
        start: start as u64,
        hex: window
            .iter()
            .map(|b| crate::wire::hex(&[*b]))
            .collect::<Vec<_>>()
            .join(" "),
        text: printable(window),
    }
}

/// `bytes` with everything but printable ASCII shown as `.`.
pub fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect()
}

/// `n` and its noun, plural unless one.
pub fn counted(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

fn first_mismatch(a: &[u8], b: &[u8]) -> Option<usize> {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => Some(i),
        None if a.len() != b.len() => Some(a.len().min(b.len())),
        None => None,
    }
}

/// Compares a TCP stream's recorded server bytes with the new ones.
pub fn stream(recorded: &[u8], replied: &[u8]) -> Diff {
    let first_difference = first_mismatch(recorded, replied).map(|at| Difference {
        datagram: None,
        offset: at as u64,
        recorded: excerpt(recorded, at),
        replied: excerpt(replied, at),
    });
    Diff {
        equal: first_difference.is_none(),
        recorded_bytes: recorded.len() as u64,
        replied_bytes: replied.len() as u64,
        recorded_datagrams: None,
        replied_datagrams: None,
        first_difference,
    }
}

/// Compares recorded server datagrams with the new ones, in order.
pub fn datagrams(recorded: &[&[u8]], replied: &[&[u8]]) -> Diff {
    let count = recorded.len().max(replied.len());
    let first_difference = (0..count).find_map(|i| {
        let (r, n) = (
            recorded.get(i).copied().unwrap_or_default(),
            replied.get(i).copied().unwrap_or_default(),
        );
        let missing = i >= recorded.len() || i >= replied.len();
        let at = first_mismatch(r, n).or(missing.then_some(0))?;
        Some(Difference {
            datagram: Some(i),
            offset: at as u64,
            recorded: excerpt(r, at),
            replied: excerpt(n, at),
        })
    });
    Diff {
        equal: first_difference.is_none(),
        recorded_bytes: recorded.iter().map(|d| d.len() as u64).sum(),
        replied_bytes: replied.iter().map(|d| d.len() as u64).sum(),
        recorded_datagrams: Some(recorded.len()),
        replied_datagrams: Some(replied.len()),
        first_difference,
    }
}

impl Diff {
    /// The comparison for a person: a verdict line, then both excerpts with
    /// a caret under the first differing byte.
    pub fn render(&self) -> String {
        let sizes = match (self.recorded_datagrams, self.replied_datagrams) {
            (Some(r), Some(n)) => format!(
                "recorded {}, {}; replied {}, {}",
                counted(r as u64, "datagram"),
                counted(self.recorded_bytes, "byte"),
                counted(n as u64, "datagram"),
                counted(self.replied_bytes, "byte"),
            ),
            _ => format!(
                "recorded {}, replied {}",
                counted(self.recorded_bytes, "byte"),
                counted(self.replied_bytes, "byte")
            ),
        };
        let Some(d) = &self.first_difference else {
            return format!("the replies equal the recording, byte for byte ({sizes})\n");
        };
        let place = match d.datagram {
            Some(i) => format!("datagram {i}, byte {}", d.offset),
            None => format!("byte {}", d.offset),
        };
        let mut out = format!("the replies differ from the recording at {place} ({sizes})\n");
        let label_width = 2 + "recorded".len() + 2;
        for (name, e) in [("recorded", &d.recorded), ("replied", &d.replied)] {
            let shown = if e.hex.is_empty() {
                "(nothing)".to_owned()
            } else {
                format!("{}  |{}|", e.hex, e.text)
            };
            out.push_str(&format!("  {name:<8}  @{:<6} {shown}\n", e.start));
        }
        let column = (d.offset - d.recorded.start) as usize * 3;
        out.push_str(&format!("{}^^\n", " ".repeat(label_width + 1 + 7 + column)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_streams_say_so() {
        let d = stream(b"HELLO", b"HELLO");
        assert!(d.equal);
        assert_eq!(d.first_difference, None);
        assert!(d.render().contains("equal the recording"), "{}", d.render());
    }

    #[test]
    fn the_first_difference_is_found_with_an_excerpt() {
        let recorded = b"0123456789abcdefghijklmnopqrstuvwxyz hello";
        let replied = b"0123456789abcdefghijklmnopqrstuvwxyz HELLO";
        let d = stream(recorded, replied);
        let first = d.first_difference.clone().unwrap();
        assert_eq!(first.offset, 37);
        assert_eq!(first.recorded.start, 21);
        assert_eq!(first.recorded.text, "lmnopqrstuvwxyz hello");
        assert_eq!(first.replied.text, "lmnopqrstuvwxyz HELLO");
        let text = d.render();
        assert!(text.contains("at byte 37"), "{text}");
        // The caret sits under the first differing byte's hex.
        let lines: Vec<&str> = text.lines().collect();
        let caret = lines[3].find('^').unwrap();
        assert_eq!(&lines[1][caret..caret + 2], "68", "{text}");
        assert_eq!(&lines[2][caret..caret + 2], "48", "{text}");
    }

    #[test]
    fn a_shorter_reply_differs_where_it_ends() {
        let d = stream(b"abcdef", b"abc");
        let first = d.first_difference.unwrap();
        assert_eq!(first.offset, 3);
        assert_eq!(first.replied.hex, "61 62 63");
        assert_eq!((d.recorded_bytes, d.replied_bytes), (6, 3));
        let none = stream(b"abc", b"");
        assert!(none.render().contains("(nothing)"), "{}", none.render());
    }

    #[test]
    fn datagrams_are_compared_one_by_one() {
        assert!(datagrams(&[b"A", b"B"], &[b"A", b"B"]).equal);
        let d = datagrams(&[b"A", b"B"], &[b"A", b"b"]);
        assert_eq!(d.first_difference.unwrap().datagram, Some(1));
        // Same bytes, different boundaries: not equal for UDP.
        let d = datagrams(&[b"AB"], &[b"A", b"B"]);
        assert!(!d.equal);
        let d = datagrams(&[b"A", b""], &[b"A"]);
        let first = d.first_difference.clone().unwrap();
        assert_eq!((first.datagram, first.offset), (Some(1), 0));
        assert!(d.render().contains("datagram 1"), "{}", d.render());
    }
}
