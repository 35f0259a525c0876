//! The server's own reason when it refuses a bench's connection: a capped
//! switchboard writes one line (`switchboard: too many connections from
//! 127.0.0.1, limit 64`) and closes. The benches read that line instead of
//! reporting a short read or a wrong reply, and count each reason, so a
//! report says why its errors happened.
//!
//! Only lines that start with [`PREFIX`] are taken for a refusal; anything
//! else stays the error it was.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::wire::refusal::MAX_LINE;
pub use crate::wire::refusal::PREFIX;

/// The refusal line at the start of `bytes`, if they start one (up to its
/// newline, or all of `bytes` when it has none yet).
pub fn line_in(bytes: &[u8]) -> Option<String> {
    if !bytes.starts_with(PREFIX) {
        return None;
    }
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let line = &bytes[..end.min(MAX_LINE)];
    Some(String::from_utf8_lossy(line).trim_end().to_owned())
}

/// Whether a report's error message is a server's refusal.
pub fn is_refusal(message: &str) -> bool {
    message.as_bytes().starts_with(PREFIX)
}

/// Given the first bytes of a reply (`head`), reads the rest of a refusal
/// line (to its newline or the close, [`MAX_LINE`] at most) when `head`
/// starts one. The caller's timeout bounds the wait.
pub async fn finish_line<S: AsyncRead + Unpin>(stream: &mut S, head: &[u8]) -> Option<String> {
    if !head.starts_with(PREFIX) {
        return None;
    }
    let mut line = head.to_vec();
    let mut byte = [0u8; 1];
    while !line.contains(&b'\n') && line.len() < MAX_LINE {
        match stream.read(&mut byte).await {
            Ok(1) => line.push(byte[0]),
            _ => break,
        }
    }
    line_in(&line)
}

/// Counts of each refusal reason seen in a run.
#[derive(Default)]
pub struct Refusals(Mutex<BTreeMap<String, u64>>);

/// Distinct reasons kept; each source address makes its own line.
const MAX_REASONS: usize = 64;

impl Refusals {
    /// Counts `message` if it is a refusal.
    pub fn note(&self, message: &str) {
        if !is_refusal(message) {
            return;
        }
        let mut all = crate::sync::lock(&self.0);
        if all.len() < MAX_REASONS || all.contains_key(message) {
            *all.entry(message.to_owned()).or_insert(0) += 1;
        }
    }

    /// Each reason and how often it came, most frequent first.
    pub fn snapshot(&self) -> Vec<Refusal> {
        let all = crate::sync::lock(&self.0);
        let mut out: Vec<Refusal> = all
            .iter()
            .map(|(reason, count)| Refusal {
                reason: reason.clone(),
                count: *count,
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
        out
    }
}

/// One refusal reason and how many connections got it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refusal {
    pub reason: String,
    pub count: u64,
}

/// The report's lines for `refusals`.
pub fn text(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(|r| format!("  refused   {} x {}\n", r.count, r.reason))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_lines_are_recognised_and_counted() {
        let line = b"switchboard: too many connections from 127.0.0.1, limit 64\n";
        assert_eq!(
            line_in(line).as_deref(),
            Some("switchboard: too many connections from 127.0.0.1, limit 64")
        );
        assert_eq!(line_in(b"HELLO"), None);
        let r = Refusals::default();
        r.note("switchboard: a");
        r.note("switchboard: a");
        r.note("switchboard: b");
        r.note("the server closed the connection");
        let s = r.snapshot();
        assert_eq!((s[0].reason.as_str(), s[0].count), ("switchboard: a", 2));
        assert_eq!(s.len(), 2);
    }

    #[tokio::test]
    async fn finish_line_reads_to_the_newline_only() {
        let mut rest: &[u8] = b"ections from 127.0.0.1, limit 64\nmore";
        let got = finish_line(&mut rest, b"switchboard: too many conn").await;
        assert_eq!(
            got.as_deref(),
            Some("switchboard: too many connections from 127.0.0.1, limit 64")
        );
        assert_eq!(rest, b"more");
        let mut none: &[u8] = b"";
        assert_eq!(finish_line(&mut none, b"HELLO").await, None);
    }
}
