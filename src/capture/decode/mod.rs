//! Decoding of our own protocols in a capture, for the wire inspector's
//! "Messages" view: each direction's held bytes are read as the service
//! reads them (the HMAC challenge and answer, exec/files length-prefixed
//! messages, `files-classic`'s 136-byte `128sq` headers, a PROXY v1/v2
//! header, a TLS ClientHello's SNI and versions) and every message says
//! which segments (reads or writes) it came from, so a message split over
//! several segments and a segment holding several messages (sticky packets)
//! both show.
//!
//! Everything is bounded by what the capture holds and by the constants
//! below: a length a peer declares is only ever compared with the bytes
//! present, never allocated; a message whose bytes are not all held is
//! marked incomplete; past [`MAX_MESSAGES`] or [`MAX_DECODE_BYTES`] the
//! answer says `truncated`. Bytes that do not follow the protocol end that
//! direction's decoding with an `undecodable` item saying why; nothing here
//! panics on any input (the hostile-input tests feed it arbitrary bytes).
//!
//! Not here: which plan an instance's settings call for (the web layer
//! knows the settings, `web::capture_decode`), rendering, HTTP. Secrets are
//! never on the wire of these protocols in a form this could show: the HMAC
//! key never crosses it, the answer is a MAC and is shown as hex.

mod classic;
mod message;
mod proxy;
mod stream;
mod tls;

#[cfg(test)]
mod tests;

use serde::Serialize;
use serde_json::Value;

use super::{Dir, SegmentCopy};
use stream::Stream;

/// Bytes of one direction decoded at most; the rest is left out and the
/// answer says `truncated`.
pub const MAX_DECODE_BYTES: usize = 1 << 20;
/// Items in one answer at most, both directions together.
pub const MAX_MESSAGES: usize = 1000;
/// Body bytes shown per message (the transcript has them all).
pub const MAX_BODY_SHOWN: usize = 256;
/// A message header longer than this is shown as the start of its text,
/// not as JSON.
pub const MAX_HEADER_SHOWN: usize = 4096;
/// Segments named per message at most (with how many there are in all).
pub const MAX_SEGMENTS_LISTED: usize = 32;
/// The HMAC handshake's challenge, and our answer's length (SHA-256).
pub const CHALLENGE_LEN: usize = 32;

/// How to read a capture: chosen from the instance's kind and settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// `exec` (`framing = "header"`) and `files`: a 32-byte challenge, a
    /// 32-byte HMAC-SHA256 answer, then length-prefixed messages both ways.
    Messages,
    /// `files-classic`: 136-byte `128sq` headers, each followed by its file.
    Classic,
    /// The tutorials' own protocols (`echo` with `auth`, `exec`'s
    /// tutorial framings): a 32-byte challenge and an answer of
    /// `answer_len` bytes when it is not 0; then the client's bytes
    /// unframed, and the server's too unless `struct_lengths`, when each
    /// output follows its length as `struct.pack('i')` (4 bytes,
    /// little-endian here).
    Tutorial {
        answer_len: usize,
        struct_lengths: bool,
    },
    /// No framing: only a PROXY header or a TLS ClientHello at the start
    /// is decoded.
    Raw,
}

impl Plan {
    fn name(self) -> &'static str {
        match self {
            Plan::Messages => "hmac handshake + length-prefixed messages",
            Plan::Classic => "files-classic 128sq headers",
            Plan::Tutorial {
                struct_lengths: true,
                ..
            } => "tutorial framing: struct.pack('i') lengths from the server",
            Plan::Tutorial { .. } => "tutorial framing: unframed bytes",
            Plan::Raw => "unframed bytes",
        }
    }
}

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The server's random challenge.
    Challenge,
    /// The client's HMAC of the challenge.
    Answer,
    /// A length-prefixed message: prefix, JSON header, body.
    Message,
    /// A `128sq` header and its file.
    ClassicHeader,
    /// A PROXY protocol header.
    Proxy,
    /// A TLS ClientHello.
    ClientHello,
    /// Bytes with no framing to decode.
    Raw,
    /// Bytes that break the protocol: decoding of the direction stops.
    Undecodable,
}

/// A length prefix as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prefix {
    /// Its bytes in hex (`0000000b`).
    pub hex: String,
    /// What they say.
    pub value: i64,
    /// What the number counts, and how it is written.
    pub means: &'static str,
}

/// The start of a body (or of any payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Body {
    /// Bytes the message declares (or holds, without a declaration).
    pub len: u64,
    /// Bytes of it the capture holds.
    pub held: u64,
    /// The first [`MAX_BODY_SHOWN`] held bytes, in hex.
    pub hex: String,
}

/// One decoded item, as the API serves it.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// Its number, from 1, in the order the items happened.
    pub n: usize,
    pub dir: Dir,
    pub kind: Kind,
    /// A short name: `run request`, `stdout`, `HMAC answer`, ...
    pub label: String,
    /// Where its first byte is in its direction's stream.
    pub offset: u64,
    /// Its whole length as declared (prefix, header and body).
    pub len: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<Prefix>,
    /// The JSON header, when it is one and not over [`MAX_HEADER_SHOWN`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<Value>,
    /// Decoded fields of a binary header (`name`, `size`, `sni`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    /// The segments (by `seq`) its bytes came from, at most
    /// [`MAX_SEGMENTS_LISTED`].
    pub segments: Vec<u64>,
    /// How many segments it spans in all.
    pub segments_total: usize,
    /// Whether the capture holds all of it.
    pub complete: bool,
    /// Why it is undecodable, what was cut, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A segment that holds parts of several items: a sticky packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shared {
    pub seq: u64,
    pub dir: Dir,
    /// The items' numbers.
    pub messages: Vec<usize>,
}

/// A capture decoded.
#[derive(Debug, Clone, Serialize)]
pub struct Decoded {
    /// How it was read.
    pub plan: &'static str,
    pub messages: Vec<Message>,
    /// The segments holding two items or more.
    pub shared: Vec<Shared>,
    /// Whether items or bytes were left out ([`MAX_MESSAGES`],
    /// [`MAX_DECODE_BYTES`]).
    pub truncated: bool,
    /// What the reader should know (a direction whose start was evicted).
    pub notes: Vec<String>,
}

/// An item found in a direction's stream, before it is numbered: `start`
/// is an index into the stream's bytes.
#[derive(Debug, Clone)]
struct Item {
    kind: Kind,
    label: String,
    start: usize,
    len: u64,
    prefix: Option<Prefix>,
    header: Option<Value>,
    fields: Vec<(String, String)>,
    body: Option<Body>,
    note: Option<String>,
}

impl Item {
    fn new(kind: Kind, label: impl Into<String>, start: usize, len: u64) -> Item {
        Item {
            kind,
            label: label.into(),
            start,
            len,
            prefix: None,
            header: None,
            fields: Vec::new(),
            body: None,
            note: None,
        }
    }

    fn field(mut self, name: &str, value: impl Into<String>) -> Item {
        self.fields.push((name.to_owned(), value.into()));
        self
    }

    fn note(mut self, note: impl Into<String>) -> Item {
        self.note = Some(note.into());
        self
    }
}

/// Items found so far, bounded by [`MAX_MESSAGES`] across both directions.
#[derive(Debug, Default)]
struct Items {
    list: Vec<(Dir, Item)>,
    full: bool,
}

impl Items {
    /// Adds an item; false (and `full`) once the bound is reached.
    fn push(&mut self, dir: Dir, item: Item) -> bool {
        if self.list.len() >= MAX_MESSAGES {
            self.full = true;
            return false;
        }
        self.list.push((dir, item));
        true
    }

    fn is_full(&self) -> bool {
        self.full || self.list.len() >= MAX_MESSAGES
    }
}

/// Body preview of `bytes[start..]`, declared `len` long.
fn body(bytes: &[u8], start: usize, len: u64) -> Body {
    let rest = bytes.get(start..).unwrap_or(&[]);
    let held = usize::try_from(len).map_or(rest.len(), |l| l.min(rest.len()));
    Body {
        len,
        held: held as u64,
        hex: crate::wire::hex(&rest[..held.min(MAX_BODY_SHOWN)]),
    }
}

/// Decodes `segments` (a capture's, oldest first, both directions) by
/// `plan`.
pub fn decode(segments: &[SegmentCopy], plan: Plan) -> Decoded {
    let mut items = Items::default();
    let mut notes = Vec::new();
    let streams = [
        Stream::of(segments, Dir::In, MAX_DECODE_BYTES),
        Stream::of(segments, Dir::Out, MAX_DECODE_BYTES),
    ];
    let cut = streams.iter().any(|s| s.cut);
    // The server speaks first in every handshake: its items come first.
    for stream in streams.iter().rev() {
        let dir = stream.dir;
        if stream.gap > 0 {
            notes.push(format!(
                "the first {} bytes from the {} were evicted (capture_bytes): their messages' \
                 boundaries are unknown, so that side is shown undecoded",
                stream.gap,
                who(dir)
            ));
            raw(stream, 0, &mut items, "not decoded: its start was evicted");
            continue;
        }
        read_direction(stream, plan, &mut items);
    }
    number(&streams, items, plan, cut, notes)
}

fn who(dir: Dir) -> &'static str {
    match dir {
        Dir::In => "client",
        Dir::Out => "server",
    }
}

/// One direction by the plan.
fn read_direction(stream: &Stream, plan: Plan, items: &mut Items) {
    let bytes = &stream.bytes[..];
    let mut at = 0;
    if stream.dir == Dir::In {
        at = proxy::read(bytes, at, items);
        if let Some(end) = tls::read(bytes, at, items) {
            raw(stream, end, items, "TLS records: encrypted");
            return;
        }
    }
    let (handshake, answer_len) = match plan {
        Plan::Messages => (true, CHALLENGE_LEN),
        Plan::Tutorial { answer_len, .. } => (answer_len > 0, answer_len),
        Plan::Classic | Plan::Raw => (false, 0),
    };
    if handshake && at < bytes.len() {
        at = message::handshake(stream.dir, bytes, at, answer_len, items);
    }
    match plan {
        Plan::Messages => {
            at = message::read_all(stream.dir, bytes, at, items);
        }
        Plan::Classic if stream.dir == Dir::In => {
            at = classic::read_all(bytes, at, items);
        }
        Plan::Tutorial {
            struct_lengths: true,
            ..
        } if stream.dir == Dir::Out => {
            at = message::read_struct(bytes, at, items);
        }
        _ => {}
    }
    raw(stream, at, items, "no framing of ours");
}

/// The rest of a direction from `at`, as one raw item (if any is left).
fn raw(stream: &Stream, at: usize, items: &mut Items, why: &str) {
    let rest = stream.bytes.len().saturating_sub(at);
    if rest == 0 {
        return;
    }
    let mut item = Item::new(Kind::Raw, format!("{rest} bytes"), at, rest as u64).note(why);
    item.body = Some(body(&stream.bytes, at, rest as u64));
    items.push(stream.dir, item);
}

/// Orders the items as they happened, numbers them and names their
/// segments.
fn number(
    streams: &[Stream; 2],
    items: Items,
    plan: Plan,
    cut: bool,
    notes: Vec<String>,
) -> Decoded {
    let truncated = cut || items.is_full();
    let stream_of = |dir: Dir| match dir {
        Dir::In => &streams[0],
        Dir::Out => &streams[1],
    };
    let mut placed: Vec<(Dir, Item, stream::Covered)> = items
        .list
        .into_iter()
        .map(|(dir, item)| {
            let covered = stream_of(dir).seqs(item.start, item.len, MAX_SEGMENTS_LISTED);
            (dir, item, covered)
        })
        .collect();
    placed.sort_by_key(|(dir, item, covered)| {
        (covered.listed.first().copied(), *dir == Dir::In, item.start)
    });
    // A segment holding two items holds the end of one and the start of
    // the next: only an item's first and last segments can be shared, so
    // only those are counted (an item over a million segments costs two).
    let mut by_segment: std::collections::BTreeMap<(u64, bool), Vec<usize>> = Default::default();
    let mut messages = Vec::with_capacity(placed.len());
    for (i, (dir, item, covered)) in placed.into_iter().enumerate() {
        let n = i + 1;
        let ends = [covered.listed.first().copied(), covered.last];
        for seq in ends.into_iter().flatten() {
            let holds = by_segment.entry((seq, dir == Dir::In)).or_default();
            if holds.last() != Some(&n) {
                holds.push(n);
            }
        }
        let stream = stream_of(dir);
        let held = stream.bytes.len().saturating_sub(item.start) as u64;
        messages.push(Message {
            n,
            dir,
            kind: item.kind,
            label: item.label,
            offset: stream.base + item.start as u64,
            len: item.len,
            prefix: item.prefix,
            header: item.header,
            fields: item.fields,
            body: item.body,
            segments_total: covered.total,
            segments: covered.listed,
            complete: item.len <= held,
            note: item.note,
        });
    }
    let shared = by_segment
        .into_iter()
        .filter(|(_, ns)| ns.len() > 1)
        .map(|((seq, inbound), messages)| Shared {
            seq,
            dir: if inbound { Dir::In } else { Dir::Out },
            messages,
        })
        .collect();
    Decoded {
        plan: plan.name(),
        messages,
        shared,
        truncated,
        notes,
    }
}
