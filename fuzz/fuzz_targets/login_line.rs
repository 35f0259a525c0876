//! The login service's line reader (`wire::line::take_line` over a buffer
//! of `MAX_LINE` bytes, as `login`'s `Lines` holds). However the bytes are
//! cut into reads, the lines and the verdict must equal what splitting the
//! whole input at `\n` gives, and no line may come from more than the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::wire::line::{LineTooLong, take_line};
use switchboard_fuzz::{Chunked, Reads};

/// `login::MAX_LINE`: the buffer the service reads into.
const MAX_LINE: usize = 256;

/// The lines, then what was left buffered at the end (or the refusal).
type Outcome = (Vec<String>, Result<Vec<u8>, LineTooLong>);

/// `Lines::read_line`, over and over: take a line, else read into the room left.
fn feed(reads: Vec<&[u8]>) -> Outcome {
    let mut stream = Reads::new(reads);
    let mut buf = [0u8; MAX_LINE];
    let mut len = 0;
    let mut lines = Vec::new();
    loop {
        match take_line(&mut buf, &mut len) {
            Ok(Some(line)) => lines.push(line),
            Err(e) => return (lines, Err(e)),
            Ok(None) => {
                let Some(got) = stream.read(MAX_LINE - len) else {
                    return (lines, Ok(buf[..len].to_vec()));
                };
                buf[len..len + got.len()].copy_from_slice(got);
                len += got.len();
            }
        }
    }
}

/// The same by definition: `\n`-separated, one `\r` dropped, a line and its
/// `\n` at most `MAX_LINE` bytes.
fn oracle(mut rest: &[u8]) -> Outcome {
    let mut lines = Vec::new();
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        if end + 1 > MAX_LINE {
            return (lines, Err(LineTooLong { max: MAX_LINE }));
        }
        let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
        lines.push(String::from_utf8_lossy(line).into_owned());
        rest = &rest[end + 1..];
    }
    if rest.len() >= MAX_LINE {
        return (lines, Err(LineTooLong { max: MAX_LINE }));
    }
    (lines, Ok(rest.to_vec()))
}

fuzz_target!(|input: Chunked<'_>| {
    let want = oracle(input.data);
    assert_eq!(feed(vec![input.data]), want, "whole feed");
    assert_eq!(feed(input.reads()), want, "split feed");
    for line in &want.0 {
        assert!(!line.contains('\n'));
    }
});
