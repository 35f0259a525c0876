//! `\n`-terminated text lines taken from a fixed buffer, as the `login`
//! service reads its answers: the splitting rule on its own, so it can be
//! unit-tested and fuzzed without a socket.
//!
//! The reader owns a buffer of fixed size and a fill count; it reads into the
//! spare part, then asks [`take_line`] for a line. A line (its `\n`
//! included) must fit in the buffer: a full buffer without a `\n` is
//! [`LineTooLong`], so a peer never makes us hold more than the buffer.
//! What follows a line stays buffered for the next call (a client may send
//! both answers at once).

/// A full buffer and still no `\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line longer than {max} bytes")]
pub struct LineTooLong {
    pub max: usize,
}

/// Takes the first complete line from `buf[..*len]`, shifting what follows
/// it to the front and lowering `*len`. The `\n` and one `\r` before it are
/// dropped; bytes that are not UTF-8 become U+FFFD. `Ok(None)`: read more
/// into `buf[*len..]`.
///
/// # Errors
/// [`LineTooLong`] when `buf` is full and holds no `\n`.
pub fn take_line(buf: &mut [u8], len: &mut usize) -> Result<Option<String>, LineTooLong> {
    let Some(end) = buf[..*len].iter().position(|&b| b == b'\n') else {
        if *len == buf.len() {
            return Err(LineTooLong { max: buf.len() });
        }
        return Ok(None);
    };
    let mut line = &buf[..end];
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    let text = String::from_utf8_lossy(line).into_owned();
    buf.copy_within(end + 1..*len, 0);
    *len -= end + 1;
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_lines_one_at_a_time_and_keeps_the_rest() {
        let mut buf = [0u8; 32];
        let input = b"alice\r\nsecret\npar";
        buf[..input.len()].copy_from_slice(input);
        let mut len = input.len();
        assert_eq!(take_line(&mut buf, &mut len), Ok(Some("alice".into())));
        assert_eq!(take_line(&mut buf, &mut len), Ok(Some("secret".into())));
        assert_eq!(take_line(&mut buf, &mut len), Ok(None));
        assert_eq!(&buf[..len], b"par", "the partial line waits for more");
    }

    #[test]
    fn a_full_buffer_without_newline_is_too_long_but_a_full_line_fits() {
        let mut buf = [b'x'; 8];
        let mut len = 8;
        assert_eq!(take_line(&mut buf, &mut len), Err(LineTooLong { max: 8 }));
        buf[7] = b'\n';
        assert_eq!(take_line(&mut buf, &mut len), Ok(Some("x".repeat(7))));
        assert_eq!(len, 0);
    }

    #[test]
    fn only_one_carriage_return_is_dropped_and_bad_utf8_is_replaced() {
        let mut buf = [0u8; 16];
        let input = b"a\r\r\n\xff\n";
        buf[..input.len()].copy_from_slice(input);
        let mut len = input.len();
        assert_eq!(take_line(&mut buf, &mut len), Ok(Some("a\r".into())));
        assert_eq!(take_line(&mut buf, &mut len), Ok(Some("\u{fffd}".into())));
    }
}

/// Property test: however the bytes arrive, the same lines come out, and
/// they are what splitting the whole input at `\n` gives.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    const CAP: usize = 16;

    /// Reads `chunks` as a reader would (at most the spare room per read),
    /// taking every line it can before reading more.
    fn read_all(chunks: &[&[u8]]) -> (Vec<String>, Result<Vec<u8>, LineTooLong>) {
        let mut buf = [0u8; CAP];
        let mut len = 0;
        let mut lines = Vec::new();
        let mut pending: Vec<&[u8]> = chunks.iter().rev().copied().collect();
        loop {
            match take_line(&mut buf, &mut len) {
                Ok(Some(line)) => lines.push(line),
                Err(e) => return (lines, Err(e)),
                Ok(None) => {
                    let Some(chunk) = pending.pop() else {
                        return (lines, Ok(buf[..len].to_vec()));
                    };
                    let n = chunk.len().min(CAP - len);
                    buf[len..len + n].copy_from_slice(&chunk[..n]);
                    len += n;
                    if n < chunk.len() {
                        pending.push(&chunk[n..]);
                    }
                }
            }
        }
    }

    /// The same, by splitting the whole input.
    fn oracle(bytes: &[u8]) -> (Vec<String>, Result<Vec<u8>, LineTooLong>) {
        let mut lines = Vec::new();
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if end >= CAP {
                return (lines, Err(LineTooLong { max: CAP }));
            }
            let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
            lines.push(String::from_utf8_lossy(line).into_owned());
            rest = &rest[end + 1..];
        }
        if rest.len() >= CAP {
            return (lines, Err(LineTooLong { max: CAP }));
        }
        (lines, Ok(rest.to_vec()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn lines_do_not_depend_on_how_the_bytes_arrive(
            bytes in prop::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(0xff), any::<u8>()], 0..80),
            cuts in prop::collection::vec(any::<usize>(), 0..10),
        ) {
            let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            at.sort_unstable();
            at.push(bytes.len());
            let mut from = 0;
            let chunks: Vec<&[u8]> = at.into_iter().map(|to| { let c = &bytes[from..to]; from = to; c }).collect();
            let want = oracle(&bytes);
            prop_assert_eq!(read_all(&[&bytes]), want.clone());
            prop_assert_eq!(read_all(&chunks), want);
        }
    }
}
