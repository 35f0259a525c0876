//! Capture files as a sequence of link-layer frames: pcapng (sections,
//! interfaces, enhanced, simple and obsolete packet blocks, either byte
//! order, `if_tsresol` and `if_tsoffset`) and classic pcap (both byte
//! orders, microsecond and nanosecond timestamps).
//!
//! Pure and bounded: the whole file is one byte slice the caller read
//! (with its own size cap), every length field is checked against what
//! remains before anything is sliced, and nothing here allocates in
//! proportion to a length the file claims. Frames borrow from the slice.
//! What is inside a frame (Ethernet, IP, TCP) is `packet.rs`'s business.

/// Why a capture cannot be replayed, worded for the person who gave it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is {len} bytes, more than the {max}-byte limit (see --max-bytes)")]
    TooLarge { len: u64, max: u64 },
    #[error("not a pcap or pcapng file (it starts with {magic})")]
    NotACapture { magic: String },
    #[error("truncated at byte {offset}: {what} needs {need} bytes, {left} remain")]
    Truncated {
        offset: usize,
        what: &'static str,
        need: u64,
        left: usize,
    },
    #[error("malformed {what} at byte {offset}: {why}")]
    Malformed {
        offset: usize,
        what: &'static str,
        why: String,
    },
    #[error(
        "IP fragments between {a} and {b}: reassembling fragments is not supported \
         (capture with a larger MTU, or on the loopback interface)"
    )]
    Fragmented { a: String, b: String },
    #[error(
        "frame {frame} was cut short by the capture's snap length, so its data is incomplete \
         (capture with tcpdump -s 0)"
    )]
    Snapped { frame: u64 },
    #[error("no TCP or UDP packet in the capture{detail}")]
    NoStream { detail: String },
    #[error("the capture holds {count} streams; pick one with --stream N:\n{list}")]
    ManyStreams { count: usize, list: String },
    #[error("there is no stream {wanted}; the capture holds {count}:\n{list}")]
    NoSuchStream {
        wanted: usize,
        count: usize,
        list: String,
    },
    #[error("the capture holds more than {max} streams")]
    TooManyStreams { max: usize },
    #[error("the stream has more than {max} segments (the limit)")]
    TooManySegments { max: usize },
    #[error(
        "the capture lost {len} bytes the {side} sent, at stream offset {offset}: \
         the stream cannot be replayed as recorded"
    )]
    Gap {
        side: &'static str,
        offset: u64,
        len: u64,
    },
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
}

/// One captured frame: its link type, when it was seen (µs since the
/// epoch, as the capture says), and the bytes captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Counted from 1, as Wireshark numbers frames.
    pub number: u64,
    pub link: u16,
    pub t_us: u64,
    pub data: &'a [u8],
    /// The captured length is shorter than the frame was on the wire.
    pub snapped: bool,
}

/// Byte order of a section (pcapng) or file (pcap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Little,
    Big,
}

impl Order {
    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Order::Little => u16::from_le_bytes(b),
            Order::Big => u16::from_be_bytes(b),
        }
    }
    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Order::Little => u32::from_le_bytes(b),
            Order::Big => u32::from_be_bytes(b),
        }
    }
}

/// A pcapng block: its type, its body, and the offset it starts at.
type Block<'a> = (u32, &'a [u8], usize);

/// A bounds-checked view of the file from `pos`, reading fixed fields.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.data.len() - self.pos
    }
    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], ReadError> {
        let left = self.left();
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= left)
            .ok_or(ReadError::Truncated {
                offset: self.pos,
                what,
                need: n,
                left,
            })?;
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ReadError> {
        let bytes = self.take(N as u64, what)?;
        Ok(bytes.try_into().expect("take returned exactly N bytes"))
    }
}

/// How a pcapng interface stamps time: units per second as a power of 10
/// or 2, and an offset in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Interface {
    link: u16,
    snaplen: u32,
    resolution: Resolution,
    offset_s: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    /// 10^-n seconds per unit.
    Decimal(u8),
    /// 2^-n seconds per unit.
    Binary(u8),
}

impl Resolution {
    fn from_option(v: u8) -> Self {
        if v & 0x80 == 0 {
            Resolution::Decimal(v)
        } else {
            Resolution::Binary(v & 0x7f)
        }
    }

    /// `units` as microseconds, saturating rather than overflowing.
    fn micros(self, units: u64) -> u64 {
        let units = u128::from(units);
        let us = match self {
            Resolution::Decimal(n) if n <= 6 => units * 10u128.pow(u32::from(6 - n)),
            // 10^38 is the largest power of ten a u128 holds; beyond it
            // every 64-bit count is less than a microsecond.
            Resolution::Decimal(n) if n - 6 <= 38 => units / 10u128.pow(u32::from(n - 6)),
            Resolution::Decimal(_) => 0,
            Resolution::Binary(n) => (units * 1_000_000) >> n.min(127),
        };
        u64::try_from(us).unwrap_or(u64::MAX)
    }
}

/// Most interfaces one pcapng section may declare (each costs a few bytes
/// here; a hostile file could otherwise declare millions).
pub const MAX_INTERFACES: usize = 4096;

/// The frames of a capture file, in file order.
pub struct Frames<'a> {
    cursor: Cursor<'a>,
    format: Format,
    /// The file's (pcap) or the current section's (pcapng) byte order.
    order: Order,
    /// The current pcapng section's interfaces.
    interfaces: Vec<Interface>,
    number: u64,
    /// The last timestamp seen, for pcapng simple packets, which have none.
    last_us: u64,
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Pcap { nanos: bool, link: u16 },
    Pcapng,
}

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_MAGIC: u32 = 0x1A2B_3C4D;

impl<'a> Frames<'a> {
    /// Recognises the file's format from its first bytes.
    ///
    /// # Errors
    /// [`ReadError::Empty`], [`ReadError::NotACapture`], or a malformed header.
    pub fn new(data: &'a [u8]) -> Result<Self, ReadError> {
        if data.is_empty() {
            return Err(ReadError::Empty);
        }
        let mut cursor = Cursor { data, pos: 0 };
        let Some(magic) = data.get(..4) else {
            return Err(ReadError::NotACapture {
                magic: crate::wire::hex(data),
            });
        };
        let magic: [u8; 4] = magic.try_into().expect("a 4-byte slice");
        // (byte order, nanosecond timestamps)
        let classic = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => Some((Order::Little, false)),
            [0xa1, 0xb2, 0xc3, 0xd4] => Some((Order::Big, false)),
            [0x4d, 0x3c, 0xb2, 0xa1] => Some((Order::Little, true)),
            [0xa1, 0xb2, 0x3c, 0x4d] => Some((Order::Big, true)),
            _ => None,
        };
        if let Some((order, nanos)) = classic {
            let header = cursor.take(24, "the pcap file header")?;
            // The top bits of the link field carry FCS flags.
            let link = (order.u32(header[20..24].try_into().expect("4 bytes")) & 0xffff) as u16;
            return Ok(Frames {
                cursor,
                format: Format::Pcap { nanos, link },
                order,
                interfaces: Vec::new(),
                number: 0,
                last_us: 0,
            });
        }
        if u32::from_le_bytes(magic) != PCAPNG_SHB {
            return Err(ReadError::NotACapture {
                magic: crate::wire::hex(&magic),
            });
        }
        // The byte order is set by the first section header, read as the
        // first block by `next`.
        Ok(Frames {
            cursor,
            format: Format::Pcapng,
            order: Order::Little,
            interfaces: Vec::new(),
            number: 0,
            last_us: 0,
        })
    }

    fn next_pcap(&mut self, nanos: bool, link: u16) -> Result<Option<Frame<'a>>, ReadError> {
        let order = self.order;
        if self.cursor.left() == 0 {
            return Ok(None);
        }
        let header = self.cursor.take(16, "a pcap record header")?;
        let field = |i: usize| order.u32(header[i..i + 4].try_into().expect("4 bytes"));
        let (secs, frac, incl, orig) = (field(0), field(4), field(8), field(12));
        if orig < incl {
            // A record cannot have captured more than was on the wire.
            return Err(ReadError::Malformed {
                offset: self.cursor.pos - 16,
                what: "pcap record header",
                why: format!("it captured {incl} bytes of a {orig}-byte packet"),
            });
        }
        let data = self.cursor.take(u64::from(incl), "a pcap record")?;
        let frac_us = if nanos { frac / 1000 } else { frac };
        let t_us = u64::from(secs) * 1_000_000 + u64::from(frac_us);
        self.number += 1;
        Ok(Some(Frame {
            number: self.number,
            link,
            t_us,
            data,
            snapped: incl < orig,
        }))
    }

    /// The next pcapng block, checked: its type, its body and where it began.
    fn next_block(&mut self) -> Result<Option<Block<'a>>, ReadError> {
        if self.cursor.left() == 0 {
            return Ok(None);
        }
        let start = self.cursor.pos;
        let kind_bytes: [u8; 4] = self.cursor.array("a block header")?;
        let len_bytes: [u8; 4] = self.cursor.array("a block header")?;
        let order = if u32::from_le_bytes(kind_bytes) == PCAPNG_SHB {
            // A new section: its byte-order magic decides how to read
            // everything in it, the length just read included.
            let magic: [u8; 4] = self.cursor.array("a section header")?;
            let order = match magic {
                [0x4d, 0x3c, 0x2b, 0x1a] => Order::Little,
                [0x1a, 0x2b, 0x3c, 0x4d] => Order::Big,
                _ => {
                    return Err(ReadError::Malformed {
                        offset: start + 8,
                        what: "section header",
                        why: format!("byte-order magic {}", crate::wire::hex(&magic)),
                    });
                }
            };
            debug_assert_eq!(order.u32(magic), PCAPNG_MAGIC);
            self.cursor.pos -= 4;
            self.order = order;
            // Interface numbers count from 0 again in each section.
            self.interfaces.clear();
            order
        } else {
            self.order
        };
        let kind = order.u32(kind_bytes);
        let total = order.u32(len_bytes);
        if total < 12 || total % 4 != 0 {
            return Err(ReadError::Malformed {
                offset: start,
                what: "block",
                why: format!("length {total} (must be a multiple of 4, at least 12)"),
            });
        }
        // Checked whole, so the error names the length the file claims.
        let left = self.cursor.data.len() - start;
        if u64::from(total) > left as u64 {
            return Err(ReadError::Truncated {
                offset: start,
                what: "a block",
                need: u64::from(total),
                left,
            });
        }
        let body = self.cursor.take(u64::from(total) - 12, "a block")?;
        let trailer: [u8; 4] = self.cursor.array("a block trailer")?;
        if order.u32(trailer) != total {
            return Err(ReadError::Malformed {
                offset: start,
                what: "block",
                why: format!(
                    "its length is {total} at the start but {} at the end",
                    order.u32(trailer)
                ),
            });
        }
        Ok(Some((kind, body, start)))
    }

    fn next_pcapng(&mut self) -> Result<Option<Frame<'a>>, ReadError> {
        loop {
            let Some((kind, body, start)) = self.next_block()? else {
                return Ok(None);
            };
            let (order, interfaces) = (self.order, &mut self.interfaces);
            let mut body = Cursor { data: body, pos: 0 };
            let malformed = |what, why| malformed_at(start, what, why);
            let truncated = |e| short_block(start, e);
            match kind {
                // Interface description.
                1 => {
                    let head = body.take(8, "interface block").map_err(truncated)?;
                    let link = order.u16(head[0..2].try_into().expect("2 bytes"));
                    let snaplen = order.u32(head[4..8].try_into().expect("4 bytes"));
                    let (resolution, offset_s) =
                        interface_options(&mut body, order).map_err(truncated)?;
                    if interfaces.len() >= MAX_INTERFACES {
                        return Err(malformed(
                            "interface block",
                            format!("more than {MAX_INTERFACES} interfaces in one section"),
                        ));
                    }
                    interfaces.push(Interface {
                        link,
                        snaplen,
                        resolution,
                        offset_s,
                    });
                }
                // Enhanced packet (6) and the obsolete packet block (2).
                2 | 6 => return self.packet_block(kind, &mut body, start).map(Some),
                // Simple packet: interface 0, no timestamp, the captured
                // length is what the block and the snap length allow.
                3 => {
                    let head = body.take(4, "simple packet block").map_err(truncated)?;
                    let origlen = order.u32(head.try_into().expect("4 bytes"));
                    let iface = interfaces.first().ok_or_else(|| {
                        malformed(
                            "simple packet block",
                            "no interface declared before it".to_owned(),
                        )
                    })?;
                    let mut caplen = u64::from(origlen).min(body.left() as u64);
                    if iface.snaplen != 0 {
                        caplen = caplen.min(u64::from(iface.snaplen));
                    }
                    let data = body.take(caplen, "simple packet block")?;
                    self.number += 1;
                    return Ok(Some(Frame {
                        number: self.number,
                        link: iface.link,
                        t_us: self.last_us,
                        data,
                        snapped: caplen < u64::from(origlen),
                    }));
                }
                // Section headers were handled by next_block; name
                // resolution, statistics, secrets and custom blocks carry
                // nothing to replay.
                _ => {}
            }
        }
    }

    /// An enhanced packet block (6) or an obsolete packet block (2): its
    /// frame, timed by its interface's resolution and offset.
    fn packet_block(
        &mut self,
        kind: u32,
        body: &mut Cursor<'a>,
        start: usize,
    ) -> Result<Frame<'a>, ReadError> {
        let order = self.order;
        let malformed = |what, why| malformed_at(start, what, why);
        let truncated = |e| short_block(start, e);
        let what = if kind == 6 {
            "enhanced packet block"
        } else {
            "packet block"
        };
        let head = body.take(20, what).map_err(truncated)?;
        let word = |i: usize| order.u32(head[i..i + 4].try_into().expect("4 bytes"));
        let id = if kind == 6 {
            word(0)
        } else {
            u32::from(order.u16(head[0..2].try_into().expect("2 bytes")))
        };
        let units = (u64::from(word(4)) << 32) | u64::from(word(8));
        let (caplen, origlen) = (word(12), word(16));
        if origlen < caplen {
            let why = format!("it captured {caplen} bytes of a {origlen}-byte packet");
            return Err(malformed(what, why));
        }
        let data = body.take(u64::from(caplen), what).map_err(truncated)?;
        let interfaces = &self.interfaces;
        let iface = interfaces
            .get(usize::try_from(id).unwrap_or(usize::MAX))
            .ok_or_else(|| {
                malformed(
                    what,
                    format!(
                        "interface {id}, but the section declares {}",
                        interfaces.len()
                    ),
                )
            })?;
        let t_us = iface
            .resolution
            .micros(units)
            .saturating_add_signed(iface.offset_s.saturating_mul(1_000_000));
        self.last_us = t_us;
        self.number += 1;
        Ok(Frame {
            number: self.number,
            link: iface.link,
            t_us,
            data,
            snapped: caplen < origlen,
        })
    }
}

/// `if_tsresol` (9) and `if_tsoffset` (14) from an interface block's options.
fn interface_options(body: &mut Cursor<'_>, order: Order) -> Result<(Resolution, i64), ReadError> {
    let mut resolution = Resolution::Decimal(6);
    let mut offset_s = 0i64;
    while body.left() >= 4 {
        let head: [u8; 4] = body.array("an option")?;
        let code = order.u16([head[0], head[1]]);
        let len = order.u16([head[2], head[3]]);
        if code == 0 {
            break;
        }
        let value = body.take(u64::from(len), "an option")?;
        // Values are padded to 32 bits; a last option may omit the padding.
        let pad = (4 - usize::from(len) % 4) % 4;
        body.take(pad.min(body.left()) as u64, "option padding")?;
        match (code, value) {
            (9, [v]) => resolution = Resolution::from_option(*v),
            (14, v) if v.len() == 8 => {
                let bytes: [u8; 8] = v.try_into().expect("8 bytes");
                offset_s = match order {
                    Order::Little => i64::from_le_bytes(bytes),
                    Order::Big => i64::from_be_bytes(bytes),
                };
            }
            _ => {}
        }
    }
    Ok((resolution, offset_s))
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = match self.format {
            Format::Pcap { nanos, link } => self.next_pcap(nanos, link),
            Format::Pcapng => self.next_pcapng(),
        };
        match next {
            Ok(frame) => frame.map(Ok),
            Err(e) => {
                // An error ends the file: nothing after it can be trusted.
                self.cursor.pos = self.cursor.data.len();
                Some(Err(e))
            }
        }
    }
}

/// A block at `start` that is not what its type says.
fn malformed_at(start: usize, what: &'static str, why: String) -> ReadError {
    ReadError::Malformed {
        offset: start,
        what,
        why,
    }
}

/// A field that runs past the end of the block at `start`: the block is
/// malformed (its length is wrong), not the file truncated.
fn short_block(start: usize, e: ReadError) -> ReadError {
    match e {
        ReadError::Truncated { what, need, .. } => malformed_at(
            start,
            what,
            format!("needs {need} bytes more than its block holds"),
        ),
        other => other,
    }
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
