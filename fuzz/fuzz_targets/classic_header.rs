//! The files-classic `128sq` upload stream (`wire::classic`), read as the
//! service reads it: 136 header bytes gathered over as many reads as it
//! takes, the name reduced by `safe_name`, the size checked, the body
//! skipped, the next upload. However the stream is cut, every header and
//! verdict must equal a whole-stream oracle's, and every decoded header
//! must encode back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::store::safe_name;
use switchboard::wire::classic::{ClassicHeader, HEADER_LEN, NAME_LEN, decode, encode};
use switchboard_fuzz::{Chunked, Reads};

/// Small, so bodies within it are often present in full.
const MAX_FILE: u64 = 64;

#[derive(Debug, PartialEq)]
struct Upload {
    header: ClassicHeader,
    name: Result<String, String>,
    size: Result<u64, String>,
}

#[derive(Debug, PartialEq)]
enum End {
    Clean,
    InHeader,
    InBody,
    /// The service answers `error: ...` and closes.
    Refused,
}

fn upload(header: ClassicHeader) -> Upload {
    Upload {
        name: safe_name(&header.name).map_err(|e| e.to_string()),
        size: header.checked_size(MAX_FILE).map_err(|e| e.to_string()),
        header,
    }
}

/// The service's loop over its reads.
fn feed(reads: Vec<&[u8]>) -> (Vec<Upload>, End) {
    let mut stream = Reads::new(reads);
    let mut uploads = Vec::new();
    loop {
        let mut raw = [0u8; HEADER_LEN];
        let mut got = 0;
        while got < HEADER_LEN {
            let Some(bytes) = stream.read(HEADER_LEN - got) else {
                let end = if got == 0 { End::Clean } else { End::InHeader };
                return (uploads, end);
            };
            raw[got..got + bytes.len()].copy_from_slice(bytes);
            got += bytes.len();
        }
        let up = upload(decode(&raw));
        let (Ok(_), Ok(mut body)) = (&up.name, up.size.clone()) else {
            uploads.push(up);
            return (uploads, End::Refused);
        };
        uploads.push(up);
        while body > 0 {
            let Some(bytes) = stream.read(body as usize) else {
                return (uploads, End::InBody);
            };
            body -= bytes.len() as u64;
        }
    }
}

/// The same stream taken as a whole.
fn oracle(mut rest: &[u8]) -> (Vec<Upload>, End) {
    let mut uploads = Vec::new();
    loop {
        if rest.is_empty() {
            return (uploads, End::Clean);
        }
        let Some((raw, after)) = rest.split_first_chunk::<HEADER_LEN>() else {
            return (uploads, End::InHeader);
        };
        let up = upload(decode(raw));
        let (Ok(_), Ok(body)) = (&up.name, up.size.clone()) else {
            uploads.push(up);
            return (uploads, End::Refused);
        };
        uploads.push(up);
        let body = body as usize;
        if after.len() < body {
            return (uploads, End::InBody);
        }
        rest = &after[body..];
    }
}

fuzz_target!(|input: Chunked<'_>| {
    let want = oracle(input.data);
    assert_eq!(feed(vec![input.data]), want, "whole feed");
    assert_eq!(feed(input.reads()), want, "split feed");
    for up in &want.0 {
        let h = &up.header;
        assert!(h.name.len() <= NAME_LEN && !h.name.contains(&0));
        let bytes = encode(&h.name, h.size).expect("a decoded name fits");
        assert_eq!(&decode(&bytes), h, "encode then decode changed the header");
        if let Ok(size) = up.size {
            assert!(h.size >= 0 && size == h.size as u64 && size <= MAX_FILE);
        } else {
            assert!(h.size < 0 || h.size as u64 > MAX_FILE);
        }
    }
});
