//! A PROXY protocol header (v1 text or v2 binary) at the start of the
//! client's bytes, read with the same bounded decoder `accept_proxy`
//! uses (`wire::proxy_protocol`): a v1 line is at most 107 bytes, a v2
//! header at most 536.

use super::{Item, Items, Kind, body};
use crate::capture::Dir;
use crate::wire::proxy_protocol::{self, Addresses, ProxyHeaderError, V2_SIGNATURE, Version};

/// A header at `at`, if the bytes there start one; returns where the next
/// item starts (`at` when there is none).
pub(super) fn read(bytes: &[u8], at: usize, items: &mut Items) -> usize {
    let rest = bytes.get(at..).unwrap_or(&[]);
    let looks_like = rest.starts_with(b"PROXY ") || rest.starts_with(&V2_SIGNATURE);
    if !looks_like {
        return at;
    }
    match proxy_protocol::decode(rest) {
        Ok(Some((header, len))) => {
            let version = match header.version {
                Version::V1 => "v1",
                Version::V2 => "v2",
            };
            let mut item = Item::new(
                Kind::Proxy,
                format!("PROXY {version} header"),
                at,
                len as u64,
            )
            .field("version", version);
            item = match header.addresses {
                Addresses::Tcp { src, dst } => item
                    .field("client (source)", src.to_string())
                    .field("proxied to (destination)", dst.to_string()),
                Addresses::Unknown => item.field("addresses", "UNKNOWN / LOCAL (none given)"),
            };
            item.body = Some(body(bytes, at, len as u64));
            items.push(Dir::In, item);
            at + len
        }
        Ok(None) => {
            let mut item = Item::new(
                Kind::Proxy,
                "PROXY header (cut short)",
                at,
                rest.len() as u64,
            )
            .note("the capture ends inside the header");
            item.body = Some(body(bytes, at, rest.len() as u64));
            items.push(Dir::In, item);
            bytes.len()
        }
        Err(ProxyHeaderError::NotProxy) => at,
        Err(e) => {
            let mut item = Item::new(Kind::Undecodable, "bad PROXY header", at, rest.len() as u64)
                .note(e.to_string());
            item.body = Some(body(bytes, at, rest.len() as u64));
            items.push(Dir::In, item);
            bytes.len()
        }
    }
}
