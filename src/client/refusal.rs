//! A service's refusal line, met where a client expected its protocol.
//!
//! A plain TCP service that turns a connection away before serving it
//! writes one line, `switchboard: REASON\n`, and closes: at a connection
//! cap (`service/accept.rs`), on a port behind a proxy reached directly
//! (`service/proxy_header.rs`), at a program limit (`service/stdio.rs`).
//! The line is the services' contract and stays as it is. A client that
//! reads a length prefix, a challenge or a greeting there would take its
//! text for a frame (`a header of 1852138356 bytes`, the bytes `nect`), so
//! each checks what it first reads with [`check`] (or, when it read to the
//! close, [`in_reply`]) and reports [`ClientError::TurnedAway`] instead.
//!
//! What it does not do: TLS ports refuse with an alert
//! ([`super::detect::turned_away`]), and the dashboard refuses in HTTP.
//! It never trusts a length from the line: at most [`MAX_LINE`] bytes are
//! read, within the caller's timeout.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::ClientError;

pub(crate) use crate::wire::refusal::{MAX_LINE, PREFIX};

/// Whether `head`, the first bytes a service sent, starts like a refusal
/// line: it holds [`PREFIX`], or is shorter and matches it so far.
fn may_start(head: &[u8]) -> bool {
    let n = head.len().min(PREFIX.len());
    n > 0 && head[..n] == PREFIX[..n]
}

/// The refusal in `said`, all a service sent before it closed: one line
/// that starts with [`PREFIX`] and nothing after it.
pub(crate) fn in_reply(addr: &str, said: &[u8]) -> Option<ClientError> {
    let one_line = match said.iter().position(|&b| b == b'\n') {
        Some(end) => said[end + 1..].is_empty(),
        None => true,
    };
    (said.starts_with(PREFIX) && one_line).then(|| turned_away(addr, said))
}

/// Where `head` came instead of a frame or greeting: when it starts like a
/// refusal line, reads the rest from `stream` (to its newline or the close,
/// [`MAX_LINE`] bytes in all, within `within`) and returns the refusal;
/// `None`, having read nothing, when `head` cannot start one.
///
/// A `head` shorter than [`PREFIX`] that matches it so far is completed
/// from `stream` to decide, and those bytes are gone if it was no refusal:
/// call it there only where such a head is a broken frame anyway.
pub(crate) async fn check<S: AsyncRead + Unpin>(
    addr: &str,
    head: &[u8],
    stream: &mut S,
    within: Duration,
) -> Option<ClientError> {
    if !may_start(head) {
        return None;
    }
    let mut line = head[..head.len().min(MAX_LINE)].to_vec();
    let _ = tokio::time::timeout(within, async {
        let mut buf = [0u8; 256];
        while !line.contains(&b'\n') && line.len() < MAX_LINE {
            let room = (MAX_LINE - line.len()).min(buf.len());
            match stream.read(&mut buf[..room]).await {
                // A refused connection may be reset after its line: what
                // came before is still the answer.
                Ok(0) | Err(_) => break,
                Ok(n) => line.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    line.starts_with(PREFIX).then(|| turned_away(addr, &line))
}

/// The refusal that `line` (starting with [`PREFIX`]) gives.
fn turned_away(addr: &str, line: &[u8]) -> ClientError {
    let text = String::from_utf8_lossy(&line[PREFIX.len()..line.len().min(MAX_LINE)]);
    ClientError::TurnedAway {
        addr: addr.to_owned(),
        reason: text.lines().next().unwrap_or_default().trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROXY_ONLY: &[u8] =
        b"switchboard: this port takes connections through a trusted proxy only\n";

    fn reason(e: Option<ClientError>) -> Option<String> {
        match e {
            Some(ClientError::TurnedAway { reason, .. }) => Some(reason),
            other => panic!("not a refusal: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_head_is_completed_to_the_newline_and_the_prefix_dropped() {
        for split in 1..PROXY_ONLY.len() {
            let (head, rest) = PROXY_ONLY.split_at(split);
            let mut stream = rest;
            let got = check("a:1", head, &mut stream, Duration::from_secs(5)).await;
            assert_eq!(
                reason(got).as_deref(),
                Some("this port takes connections through a trusted proxy only"),
                "split at {split}"
            );
        }
    }

    #[tokio::test]
    async fn a_frame_is_left_alone_and_nothing_is_read() {
        // A header's length prefix, and a challenge's random bytes.
        for head in [&[0u8, 0, 0, 42][..], b"\x8a\x01switchboard: x\n"] {
            let mut stream: &[u8] = b"more";
            assert!(
                check("a:1", head, &mut stream, Duration::from_secs(5))
                    .await
                    .is_none()
            );
            assert_eq!(stream, b"more");
        }
        // Started like one, was not: no refusal.
        let mut stream: &[u8] = b"tch me\n";
        assert!(
            check("a:1", b"swi", &mut stream, Duration::from_secs(5))
                .await
                .is_none()
        );
    }

    #[tokio::test]
    async fn an_endless_line_is_read_only_so_far() {
        let endless = vec![b'x'; 1 << 20];
        let mut stream = endless.as_slice();
        let got = check("a:1", PREFIX, &mut stream, Duration::from_secs(5)).await;
        assert_eq!(reason(got).map(|r| r.len()), Some(MAX_LINE - PREFIX.len()));
        assert_eq!(stream.len(), endless.len() - (MAX_LINE - PREFIX.len()));
    }

    #[test]
    fn a_reply_is_a_refusal_only_when_it_is_one_such_line() {
        assert!(reason(in_reply("a:1", PROXY_ONLY)).is_some());
        assert!(in_reply("a:1", b"error: bad name\n").is_none());
        assert!(in_reply("a:1", b"switchboard: one\nand more").is_none());
        assert!(in_reply("a:1", b"").is_none());
    }
}
