//! `files-classic`: the tutorial's `struct.pack('128sq', name, size)`
//! header (136 bytes: a NUL-padded name, a little-endian `i64` size), then
//! `size` bytes of file, any number of times. The size is only compared
//! with the bytes held.

use super::{Item, Items, Kind, body};
use crate::capture::Dir;
use crate::wire::classic::{self, HEADER_LEN};

/// Every upload from `at` on; returns where decoding stopped.
pub(super) fn read_all(bytes: &[u8], mut at: usize, items: &mut Items) -> usize {
    while at < bytes.len() && !items.is_full() {
        let Some(raw) = bytes.get(at..at + HEADER_LEN) else {
            let held = bytes.len() - at;
            let mut item = Item::new(
                Kind::ClassicHeader,
                "128sq header (cut short)",
                at,
                HEADER_LEN as u64,
            )
            .note(format!(
                "the capture holds {held} of the header's {HEADER_LEN} bytes"
            ));
            item.body = Some(body(bytes, at, held as u64));
            items.push(Dir::In, item);
            return bytes.len();
        };
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(raw);
        let decoded = classic::decode(&header);
        let name = String::from_utf8_lossy(&decoded.name).into_owned();
        let body_at = at + HEADER_LEN;
        let Ok(size) = u64::try_from(decoded.size) else {
            let item = Item::new(Kind::ClassicHeader, "128sq header", at, HEADER_LEN as u64)
                .field("name", name)
                .field("size", decoded.size.to_string())
                .note("a negative size: the service refuses it and closes the connection");
            items.push(Dir::In, item);
            return body_at;
        };
        let mut item = Item::new(
            Kind::ClassicHeader,
            "128sq header + file",
            at,
            (HEADER_LEN as u64).saturating_add(size),
        )
        .field("name", name)
        .field("size", size.to_string())
        .field(
            "name field",
            format!("{} of 128 bytes, NUL-padded", decoded.name.len()),
        );
        let b = body(bytes, body_at, size);
        let next = body_at + usize::try_from(b.held).unwrap_or(usize::MAX);
        item.body = Some(b);
        items.push(Dir::In, item);
        at = next.min(bytes.len());
    }
    at
}
