//! A TLS ClientHello at the start of the client's bytes (RFC 8446 §4.1.2):
//! the record and client versions, the server name (SNI), the versions
//! offered (`supported_versions`) and ALPN. Read through a bounds-checked
//! reader that only ever slices what is held: every length is checked
//! against the bytes present, so a malformed or hostile hello yields an
//! `undecodable` item, never a panic or an allocation by its word. A hello
//! spread over several records is named, not reassembled.

use super::{Item, Items, Kind, body};
use crate::capture::Dir;

/// The largest record a peer may send (2^14 plus expansion), RFC 8446 §5.2.
const MAX_RECORD: usize = (1 << 14) + 256;
/// Values listed per field at most.
const MAX_LISTED: usize = 16;

/// A ClientHello at `at` (decoded or not): where the TLS bytes start being
/// encrypted records, i.e. the end of the hello's record. `None` when the
/// bytes there are not a TLS handshake record.
pub(super) fn read(bytes: &[u8], at: usize, items: &mut Items) -> Option<usize> {
    let rest = bytes.get(at..)?;
    // Content type 22 (handshake), a 3.x record version, a ClientHello.
    if rest.len() < 6 || rest[0] != 0x16 || rest[1] != 0x03 || rest[5] != 0x01 {
        return None;
    }
    let record_len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
    let end = (5 + record_len).min(rest.len());
    let mut item = Item::new(
        Kind::ClientHello,
        "TLS ClientHello",
        at,
        (5 + record_len) as u64,
    );
    item.body = Some(body(bytes, at, (5 + record_len) as u64));
    let decoded = if record_len > MAX_RECORD {
        Err(format!("a {record_len}-byte record is over TLS's limit"))
    } else if rest.len() < 5 + record_len {
        Err(format!(
            "the capture holds {} of the record's {record_len} bytes",
            rest.len() - 5
        ))
    } else {
        hello(&rest[5..5 + record_len]).map(|fields| (version(rest[1], rest[2]), fields))
    };
    match decoded {
        Ok((record_version, fields)) => {
            item = item.field("record version", record_version);
            item.fields.extend(fields);
        }
        Err(why) => {
            item.kind = Kind::Undecodable;
            item.label = "TLS ClientHello (undecodable)".into();
            item = item.note(why);
        }
    }
    items.push(Dir::In, item);
    Some(at + end)
}

/// A bounds-checked reader over a slice: every method says `None` instead
/// of reading past the end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }

    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// A protocol version's name (`TLS 1.3`), or its hex.
fn version(major: u8, minor: u8) -> String {
    match (major, minor) {
        (3, 0) => "SSL 3.0".into(),
        (3, 1) => "TLS 1.0".into(),
        (3, 2) => "TLS 1.1".into(),
        (3, 3) => "TLS 1.2".into(),
        (3, 4) => "TLS 1.3".into(),
        // RFC 8701's reserved values, sent to keep servers honest.
        (a, b) if a == b && a & 0x0f == 0x0a => "GREASE".into(),
        (a, b) => format!("0x{a:02x}{b:02x}"),
    }
}

/// The fields of a ClientHello handshake message held whole in `fragment`.
fn hello(fragment: &[u8]) -> Result<Vec<(String, String)>, String> {
    let short = || "the ClientHello is shorter than its lengths say".to_owned();
    let mut r = Reader { bytes: fragment };
    let _handshake_type = r.u8().ok_or_else(short)?;
    let len = r.u24().ok_or_else(short)?;
    let body = r.take(len).ok_or_else(|| {
        "the ClientHello continues in another record (not reassembled here)".to_owned()
    })?;
    let mut r = Reader { bytes: body };
    let client_version = r.u16().ok_or_else(short)?;
    r.take(32).ok_or_else(short)?; // random
    r.vec8().ok_or_else(short)?; // legacy session id
    let suites = r.vec16().ok_or_else(short)?;
    r.vec8().ok_or_else(short)?; // compression methods
    let [hi, lo] = client_version.to_be_bytes();
    let mut fields = vec![
        ("client version".to_owned(), version(hi, lo)),
        ("cipher suites".to_owned(), (suites.len() / 2).to_string()),
    ];
    // Extensions are optional before TLS 1.3.
    let Some(extensions) = r.vec16() else {
        return Ok(fields);
    };
    let mut r = Reader { bytes: extensions };
    while !r.bytes.is_empty() {
        let kind = r.u16().ok_or_else(short)?;
        let data = r.vec16().ok_or_else(short)?;
        match kind {
            0 => fields.push(("server name (SNI)".into(), sni(data).ok_or_else(short)?)),
            16 => fields.push(("ALPN".into(), alpn(data).ok_or_else(short)?)),
            43 => fields.push((
                "supported versions".into(),
                versions(data).ok_or_else(short)?,
            )),
            _ => {}
        }
    }
    Ok(fields)
}

/// The host name of a `server_name` extension.
fn sni(data: &[u8]) -> Option<String> {
    let mut r = Reader { bytes: data };
    let mut list = Reader { bytes: r.vec16()? };
    let mut names = Vec::new();
    while !list.bytes.is_empty() && names.len() < MAX_LISTED {
        let kind = list.u8()?;
        let name = list.vec16()?;
        if kind == 0 {
            names.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    Some(names.join(", "))
}

fn versions(data: &[u8]) -> Option<String> {
    let mut r = Reader { bytes: data };
    let mut list = Reader { bytes: r.vec8()? };
    let mut out = Vec::new();
    while !list.bytes.is_empty() && out.len() < MAX_LISTED {
        let [hi, lo] = list.u16()?.to_be_bytes();
        out.push(version(hi, lo));
    }
    Some(out.join(", "))
}

fn alpn(data: &[u8]) -> Option<String> {
    let mut r = Reader { bytes: data };
    let mut list = Reader { bytes: r.vec16()? };
    let mut out = Vec::new();
    while !list.bytes.is_empty() && out.len() < MAX_LISTED {
        out.push(String::from_utf8_lossy(list.vec8()?).into_owned());
    }
    Some(out.join(", "))
}
