//! One direction of a capture as one byte stream, with where each segment
//! sits in it, so an item found at some bytes can name the segments those
//! bytes came from. Bounded: at most the `max` first bytes held are
//! copied; the rest is cut (and said so).

use super::super::{Dir, SegmentCopy};

/// One direction's held bytes, in order.
#[derive(Debug)]
pub(super) struct Stream {
    pub(super) dir: Dir,
    /// The stream offset of `bytes[0]` (the evicted gap before it).
    pub(super) base: u64,
    pub(super) bytes: Vec<u8>,
    /// Each segment: its first index in `bytes`, its length there, its seq.
    spans: Vec<(usize, usize, u64)>,
    /// Bytes of this direction before the first one held.
    pub(super) gap: u64,
    /// Whether held bytes past `max` were left out.
    pub(super) cut: bool,
}

impl Stream {
    /// The `dir` side of `segments`, at most `max` bytes of it.
    pub(super) fn of(segments: &[SegmentCopy], dir: Dir, max: usize) -> Stream {
        let mut stream = Stream {
            dir,
            base: 0,
            bytes: Vec::new(),
            spans: Vec::new(),
            gap: 0,
            cut: false,
        };
        for s in segments.iter().filter(|s| s.dir == dir) {
            if stream.spans.is_empty() {
                stream.base = s.offset;
                stream.gap = s.offset;
            }
            let room = max - stream.bytes.len();
            if room == 0 {
                stream.cut = true;
                break;
            }
            let take = s.bytes.len().min(room);
            stream.cut |= take < s.bytes.len();
            stream.spans.push((stream.bytes.len(), take, s.seq));
            stream.bytes.extend_from_slice(&s.bytes[..take]);
        }
        stream
    }

    /// The segments holding `bytes[start..start + len]` (the part held; a
    /// zero-length item names the segment it sits at): the first `max`
    /// seqs, how many there are, and the last one. Two binary searches and
    /// at most `max` steps, however many segments the item spans.
    pub(super) fn seqs(&self, start: usize, len: u64, max: usize) -> Covered {
        let len = usize::try_from(len).unwrap_or(usize::MAX).max(1);
        let end = start
            .saturating_add(len)
            .min(self.bytes.len())
            .max(start + 1);
        let first = self.spans.partition_point(|&(at, n, _)| at + n <= start);
        let past = self.spans.partition_point(|&(at, _, _)| at < end);
        let spans = self.spans.get(first..past.max(first)).unwrap_or(&[]);
        Covered {
            listed: spans.iter().take(max).map(|&(_, _, seq)| seq).collect(),
            total: spans.len(),
            last: spans.last().map(|&(_, _, seq)| seq),
        }
    }
}

/// The segments an item came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Covered {
    /// The first ones, in order.
    pub(super) listed: Vec<u64>,
    /// How many in all.
    pub(super) total: usize,
    /// The last one.
    pub(super) last: Option<u64>,
}
