//! From a capture's frames to one [`Conversation`]: the streams in the
//! file, the one to replay, and each side's bytes in order.
//!
//! Two passes over the file (the frames borrow from it, so a pass costs no
//! copies): the first lists the streams, the second keeps the chosen one's
//! payloads. TCP is reassembled per direction by sequence number, with
//! wraparound: data already delivered (a retransmission, a duplicate) is
//! dropped, data ahead of a hole waits for it, and a hole the capture never
//! fills is an error rather than a silent splice. Segment boundaries and
//! times are the capture's: one segment per packet that brought new bytes.
//!
//! Bounds: at most [`MAX_STREAMS`] streams are tracked and
//! [`ReadOptions::max_segments`] segments kept; the bytes kept are copies
//! of one stream's payloads, so never more than the file itself.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use super::packet::{self, Decoded, Flags, Packet, Proto};
use super::read::{Frames, ReadError};

/// Most streams one capture may hold.
pub const MAX_STREAMS: usize = 10_000;

/// Which side sent a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// From the side that opened the connection (sent the SYN, or spoke first).
    Client,
    Server,
}

/// One read or write as the capture saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub dir: Dir,
    /// Microseconds since the stream's first packet.
    pub t_us: u64,
    pub bytes: Vec<u8>,
}

/// One TCP stream or UDP flow, as recorded: what to replay, and what the
/// server said back then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub proto: Proto,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// When the stream's first packet was captured, µs since the epoch.
    pub started_us: u64,
    /// Both sides' segments in capture order.
    pub segments: Vec<Segment>,
    /// When the client half-closed (sent a FIN), if it did.
    pub client_fin_us: Option<u64>,
}

impl Conversation {
    /// The client's segments, in order.
    pub fn client_segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().filter(|s| s.dir == Dir::Client)
    }

    /// The server's segments, in order.
    pub fn server_segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().filter(|s| s.dir == Dir::Server)
    }
}

/// What may be read, and which stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Largest capture file read.
    pub max_file_bytes: u64,
    /// Most segments (both sides) kept from the stream.
    pub max_segments: usize,
    /// The stream to replay, numbered as the error listing them does;
    /// `None` takes the only one that carries data.
    pub stream: Option<usize>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_file_bytes: 256 << 20,
            max_segments: 100_000,
            stream: None,
        }
    }
}

/// A stream as listed: who spoke first, how much it carried.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StreamInfo {
    pub index: usize,
    pub proto: Proto,
    /// The first packet's sender and receiver.
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub packets: u64,
    pub payload_bytes: u64,
}

impl std::fmt::Display for StreamInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "  {:>3}  {} {} -> {}  ({} packets, {} bytes of data)",
            self.index, self.proto, self.from, self.to, self.packets, self.payload_bytes
        )
    }
}

type Key = (Proto, SocketAddr, SocketAddr);

/// Assigns packets to streams, the same way on both passes.
#[derive(Default)]
struct Tracker {
    current: HashMap<Key, usize>,
    streams: Vec<StreamInfo>,
    /// Per stream: the client's SYN sequence number, and whether a FIN or
    /// RST was seen, to tell a new connection on the same ports.
    tcp: Vec<(Option<u32>, bool)>,
}

impl Tracker {
    fn assign(&mut self, p: &Packet<'_>) -> Result<usize, ReadError> {
        let key = if p.src <= p.dst {
            (p.proto, p.src, p.dst)
        } else {
            (p.proto, p.dst, p.src)
        };
        let pure_syn = p.flags.syn && !p.flags.ack;
        let reuse = self.current.get(&key).copied().filter(|&i| {
            let (syn, ended) = self.tcp[i];
            // A new SYN after the end, or with another initial sequence
            // number, is a new connection reusing the ports.
            !(pure_syn && (ended || syn.is_some_and(|s| s != p.seq)))
        });
        let index = match reuse {
            Some(i) => i,
            None => {
                if self.streams.len() >= MAX_STREAMS {
                    return Err(ReadError::TooManyStreams { max: MAX_STREAMS });
                }
                let i = self.streams.len();
                self.streams.push(StreamInfo {
                    index: i,
                    proto: p.proto,
                    from: p.src,
                    to: p.dst,
                    packets: 0,
                    payload_bytes: 0,
                });
                self.tcp.push((None, false));
                self.current.insert(key, i);
                i
            }
        };
        let info = &mut self.streams[index];
        info.packets += 1;
        info.payload_bytes += p.payload.len() as u64;
        let state = &mut self.tcp[index];
        if pure_syn {
            state.0.get_or_insert(p.seq);
        }
        state.1 |= p.flags.fin || p.flags.rst;
        Ok(index)
    }
}

/// Every stream in the capture, in order of first appearance.
///
/// # Errors
/// A malformed file, or more than [`MAX_STREAMS`] streams.
pub fn streams(data: &[u8]) -> Result<Vec<StreamInfo>, ReadError> {
    Ok(scan(data)?.tracker.streams)
}

struct Scan {
    tracker: Tracker,
    fragments: HashSet<(IpAddr, IpAddr, u8)>,
    unknown_links: Vec<u16>,
}

fn scan(data: &[u8]) -> Result<Scan, ReadError> {
    let mut scan = Scan {
        tracker: Tracker::default(),
        fragments: HashSet::new(),
        unknown_links: Vec::new(),
    };
    for frame in Frames::new(data)? {
        let frame = frame?;
        match packet::decode(frame.link, frame.data) {
            Decoded::Packet(p) => {
                scan.tracker.assign(&p)?;
            }
            Decoded::Fragment { a, b, proto } => {
                // Bounded like the streams: a hostile file may hold many.
                if scan.fragments.len() < MAX_STREAMS {
                    scan.fragments.insert((a.min(b), a.max(b), proto));
                }
            }
            Decoded::Other {
                unknown_link: Some(link),
            } => {
                if !scan.unknown_links.contains(&link) && scan.unknown_links.len() < 16 {
                    scan.unknown_links.push(link);
                }
            }
            Decoded::Other { unknown_link: None } => {}
        }
    }
    Ok(scan)
}

fn listing(streams: &[StreamInfo]) -> String {
    const SHOWN: usize = 20;
    let mut list: Vec<String> = streams.iter().take(SHOWN).map(|s| s.to_string()).collect();
    if streams.len() > SHOWN {
        list.push(format!("  ... and {} more", streams.len() - SHOWN));
    }
    list.join("\n")
}

/// Reads the one conversation to replay from a capture held in memory.
///
/// # Errors
/// A malformed file; no stream, or several and none chosen; a stream the
/// capture cut short, fragmented, or lost bytes of; too many segments.
pub fn conversation(data: &[u8], options: &ReadOptions) -> Result<Conversation, ReadError> {
    let scan = scan(data)?;
    let streams = &scan.tracker.streams;
    let chosen = match options.stream {
        Some(wanted) => streams.get(wanted).ok_or_else(|| ReadError::NoSuchStream {
            wanted,
            count: streams.len(),
            list: listing(streams),
        })?,
        None => {
            let with_data: Vec<_> = streams.iter().filter(|s| s.payload_bytes > 0).collect();
            match (with_data.as_slice(), streams.as_slice()) {
                ([one], _) => *one,
                ([], [one]) => one,
                ([], []) => {
                    let detail = if scan.unknown_links.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (frames of link types {:?} are not understood)",
                            scan.unknown_links
                        )
                    };
                    return Err(ReadError::NoStream { detail });
                }
                _ => {
                    return Err(ReadError::ManyStreams {
                        count: streams.len(),
                        list: listing(streams),
                    });
                }
            }
        }
    };
    let (ia, ib) = (chosen.from.ip(), chosen.to.ip());
    let ip_proto = match chosen.proto {
        Proto::Tcp => 6,
        Proto::Udp => 17,
    };
    if scan.fragments.contains(&(ia.min(ib), ia.max(ib), ip_proto)) {
        return Err(ReadError::Fragmented {
            a: ia.to_string(),
            b: ib.to_string(),
        });
    }
    collect(data, chosen, options.max_segments)
}

/// The second pass: the chosen stream's packets, reassembled.
fn collect(data: &[u8], chosen: &StreamInfo, max: usize) -> Result<Conversation, ReadError> {
    let mut tracker = Tracker::default();
    // Halves by sender: [0] is the first packet's sender.
    let mut halves = [Half::default(), Half::default()];
    let mut started_us = None;
    let mut syn_from = None;
    let mut synack_to = None;
    let mut first_data_from = None;
    let mut kept = 0usize;
    for frame in Frames::new(data)? {
        let frame = frame?;
        let Decoded::Packet(p) = packet::decode(frame.link, frame.data) else {
            continue;
        };
        if tracker.assign(&p)? != chosen.index {
            continue;
        }
        let t0 = *started_us.get_or_insert(frame.t_us);
        let t_us = frame.t_us.saturating_sub(t0);
        let side = usize::from(p.src != chosen.from);
        if p.cut && !p.payload.is_empty() {
            return Err(ReadError::Snapped {
                frame: frame.number,
            });
        }
        if p.flags.syn && !p.flags.ack {
            syn_from.get_or_insert(side);
        }
        if p.flags.syn && p.flags.ack {
            synack_to.get_or_insert(1 - side);
        }
        if !p.payload.is_empty() {
            first_data_from.get_or_insert(side);
        }
        let half = &mut halves[side];
        match p.proto {
            Proto::Udp => half.deliver_datagram(t_us, p.payload),
            Proto::Tcp => half.push(&p, t_us),
        }
        if p.flags.fin && half.fin_us.is_none() {
            half.fin_us = Some(t_us);
        }
        kept = halves.iter().map(Half::held).sum();
        if kept > max {
            return Err(ReadError::TooManySegments { max });
        }
    }
    debug_assert!(kept <= max);
    let client = syn_from.or(synack_to).or(first_data_from).unwrap_or(0);
    let [first, second] = halves;
    let (client_half, server_half) = if client == 0 {
        (first, second)
    } else {
        (second, first)
    };
    let (client_addr, server_addr) = if client == 0 {
        (chosen.from, chosen.to)
    } else {
        (chosen.to, chosen.from)
    };
    client_half.check_complete("client")?;
    server_half.check_complete("server")?;
    let client_fin_us = client_half.fin_us;
    Ok(Conversation {
        proto: chosen.proto,
        client: client_addr,
        server: server_addr,
        started_us: started_us.unwrap_or(0),
        segments: merge(client_half.delivered, server_half.delivered),
        client_fin_us,
    })
}

/// Both sides' segments by time; a client segment first on a tie, as a
/// request comes before its reply.
fn merge(client: Vec<(u64, Vec<u8>)>, server: Vec<(u64, Vec<u8>)>) -> Vec<Segment> {
    let mut out = Vec::with_capacity(client.len() + server.len());
    let mut client = client.into_iter().peekable();
    let mut server = server.into_iter().peekable();
    loop {
        let take_client = match (client.peek(), server.peek()) {
            (Some(c), Some(s)) => c.0 <= s.0,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        let (dir, (t_us, bytes)) = if take_client {
            (Dir::Client, client.next().expect("peeked"))
        } else {
            (Dir::Server, server.next().expect("peeked"))
        };
        out.push(Segment { dir, t_us, bytes });
    }
}

/// One direction of a TCP stream being put back in order.
#[derive(Default)]
struct Half {
    /// The stream offset and sequence number of the next byte expected,
    /// once the first packet of this direction has been seen.
    next: Option<(u64, u32)>,
    /// In order, each with its time: what is replayed or compared.
    delivered: Vec<(u64, Vec<u8>)>,
    /// Ahead of a hole, by stream offset, waiting for it to fill.
    pending: BTreeMap<u64, (u64, Vec<u8>)>,
    fin_us: Option<u64>,
}

impl Half {
    /// Keeps a datagram as it came. Times never go back within a side:
    /// a capture's timestamps may (clock steps, merged files).
    fn deliver_datagram(&mut self, t_us: u64, bytes: &[u8]) {
        let last_t = self.delivered.last().map_or(0, |d| d.0);
        self.delivered.push((t_us.max(last_t), bytes.to_vec()));
    }

    fn held(&self) -> usize {
        self.delivered.len() + self.pending.len()
    }

    fn push(&mut self, p: &Packet<'_>, t_us: u64) {
        let Flags { syn, rst, .. } = p.flags;
        // Data starts after the SYN, which takes one sequence number.
        let data_seq = p.seq.wrapping_add(u32::from(syn));
        let (next_off, next_seq) = match self.next {
            Some(n) => n,
            None => *self.next.insert((0, data_seq)),
        };
        // A reset's payload, if any, is a diagnostic, not stream data.
        if p.payload.is_empty() || rst {
            return;
        }
        // Signed distance from the next expected byte: sequence numbers
        // wrap at 2^32, and a window never spans 2^31.
        let delta = i64::from(data_seq.wrapping_sub(next_seq) as i32);
        let start = next_off as i64 + delta;
        let (start, bytes) = if start < 0 {
            // Before the first byte seen (the capture began mid-stream).
            let skip = usize::try_from(-start).unwrap_or(usize::MAX);
            (0, p.payload.get(skip..).unwrap_or_default())
        } else {
            (start as u64, p.payload)
        };
        if bytes.is_empty() {
            return;
        }
        let entry = self.pending.entry(start).or_insert((t_us, Vec::new()));
        // Two packets at one offset: keep the longer (a retransmission
        // that carries more).
        if bytes.len() > entry.1.len() {
            entry.1 = bytes.to_vec();
        }
        self.deliver();
    }

    /// Moves what is now contiguous from `pending` to `delivered`.
    fn deliver(&mut self) {
        let Some((mut off, mut seq)) = self.next else {
            return;
        };
        while let Some(entry) = self.pending.first_entry() {
            let start = *entry.key();
            if start > off {
                break;
            }
            let (t_us, bytes) = entry.remove();
            let end = start + bytes.len() as u64;
            if end <= off {
                continue; // all of it seen already
            }
            let fresh = bytes[usize::try_from(off - start).expect("within the segment")..].to_vec();
            let len = fresh.len() as u64;
            let last_t = self.delivered.last().map_or(0, |d| d.0);
            self.delivered.push((t_us.max(last_t), fresh));
            off += len;
            seq = seq.wrapping_add(len as u32);
        }
        self.next = Some((off, seq));
    }

    fn check_complete(&self, side: &'static str) -> Result<(), ReadError> {
        match (self.pending.first_key_value(), self.next) {
            (Some((&start, _)), Some((off, _))) => Err(ReadError::Gap {
                side,
                offset: off,
                len: start - off,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[path = "conversation_tests.rs"]
mod tests;
